"""Read flow files of the three seed dialects, keeping every value's line and column.

Flows are YAML or JSON (JSON is read by the same YAML composer: it is YAML's flow style), composed
into PyYAML's node graph with libyaml when available, so every key and value keeps its
``start_mark``. Nothing is constructed into Python objects beyond the scalars the validator
asks for, which is both faster and the only way to point a finding at a line.

Dialects (:func:`detect`):

* ``flowgen``: a mapping with ``flow: {name, tasks: [{<task_type>: {...}}]}`` and/or ``worker:``;
* ``flow_studio``: a mapping with ``nodes: [{type, config: {credentialId, ...}}]`` (a node
  graph whose nodes hold integer ``credentialId`` references);
* ``credential_provider``: a mapping with ``nodes: [{id, requires, credential, scopes}]`` (nodes
  naming a credential *handle* resolved through a ``bindings:`` map), or ``flow: {nodes: ...}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

FLOWGEN = "flowgen"
FLOW_STUDIO = "flow_studio"
CREDENTIAL_PROVIDER = "credential_provider"
DIALECTS = (FLOWGEN, FLOW_STUDIO, CREDENTIAL_PROVIDER)

_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_FLOAT = "tag:yaml.org,2002:float"


class FlowSyntaxError(Exception):
    """The text is not YAML/JSON; ``line``/``column`` are 1-based, ``problem`` names no value."""

    def __init__(self, line: int, column: int, problem: str) -> None:
        super().__init__(f"line {line} column {column}: {problem}")
        self.line = line
        self.column = column
        self.problem = problem


def compose(text: str) -> Node | None:
    """The node graph of one YAML/JSON document (None when empty).

    Raises :class:`FlowSyntaxError` with the position and libyaml's problem text (which
    describes the syntax, e.g. "could not find expected ':'", not the document's content).
    """
    if "\\u" in text and text.lstrip()[:1] in ("{", "["):  # JSON only
        text = _SURROGATE_PAIR.sub(_astral_escape, text)
    try:
        node: Node | None = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 0
        column = mark.column + 1 if mark is not None else 0
        raise FlowSyntaxError(line, column, _problem_text(exc.problem)) from None
    except yaml.YAMLError:
        raise FlowSyntaxError(0, 0, "not valid YAML") from None
    return node


# JSON writes a character outside the BMP as a UTF-16 surrogate pair ("\ud83d\ude00", what
# json.dumps does by default); YAML refuses surrogate escapes but has "\U0001f600". Columns after
# such an escape shift left by two on that line, nothing else moves.
_SURROGATE_PAIR = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE
)


def _astral_escape(match: re.Match[str]) -> str:
    high, low = int(match.group(2), 16), int(match.group(3), 16)
    code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
    return f"{match.group(1)}\\U{code:08x}"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _problem_text(problem: str | None) -> str:
    # libyaml problems are fixed phrases; any quoted fragment (a character it found) is dropped
    # so a syntax error in a line holding a token cannot echo part of it.
    return _QUOTED.sub("…", problem or "syntax error")


@dataclass(frozen=True, slots=True)
class Pos:
    """A 1-based line and column."""

    line: int
    column: int


def pos(node: Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def is_map(node: Node | None) -> bool:
    return isinstance(node, MappingNode)


def is_seq(node: Node | None) -> bool:
    return isinstance(node, SequenceNode)


def is_scalar(node: Node | None) -> bool:
    return isinstance(node, ScalarNode)


def pairs(node: Node | None) -> Iterator[tuple[ScalarNode, Node]]:
    """The (key, value) pairs of a mapping whose keys are scalars (others are skipped)."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                yield key, value


def get(node: Node | None, key: str) -> Node | None:
    """The value under ``key`` of a mapping node, or None."""
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key and isinstance(v, Node):
                return v
    return None


def items(node: Node | None) -> list[Node]:
    """The items of a sequence node ([] for anything else)."""
    return list(node.value) if isinstance(node, SequenceNode) else []


def scalar(node: Node | None) -> Any:
    """A scalar node's value as YAML resolves it (int, bool, None, float or str); else None."""
    if not isinstance(node, ScalarNode):
        return None
    text: str = node.value
    if node.tag == _INT:
        try:
            return int(text.replace("_", ""), 0) if text[:2] in ("0x", "0o") else int(text)
        except ValueError:
            return text
    if node.tag == _BOOL:
        return text.lower() in ("true", "yes", "on", "y")
    if node.tag == _NULL:
        return None
    if node.tag == _FLOAT:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def text_of(node: Node | None) -> str | None:
    """A scalar's value when it is a non-empty string, else None."""
    value = scalar(node)
    return value if isinstance(value, str) and value else None


def string_list(node: Node | None) -> list[tuple[str, Pos]]:
    """A sequence of strings (or one string) with each item's position."""
    if isinstance(node, ScalarNode):
        value = text_of(node)
        return [(value, pos(node))] if value else []
    out = []
    for item in items(node):
        value = text_of(item)
        if value:
            out.append((value, pos(item)))
    return out


def detect(root: Node | None) -> str | None:
    """Which dialect ``root`` is written in, or None when it is none of the three."""
    if not isinstance(root, MappingNode):
        return None
    flow = get(root, "flow")
    if get(root, "worker") is not None or is_seq(get(flow, "tasks")):
        return FLOWGEN
    nodes = get(root, "nodes")
    if nodes is None:
        nodes = get(flow, "nodes")
    if not is_seq(nodes):
        return None
    for node in items(nodes):
        if get(node, "credential") is not None or get(node, "requires") is not None:
            return CREDENTIAL_PROVIDER
        if get(get(node, "config"), "credentialId") is not None:
            return FLOW_STUDIO
    return FLOW_STUDIO if get(root, "tenantId") is not None else None
