"""The Credential Provider ``bindings:`` map: which credential a handle stands for.

::

    bindings:
      google_sales:
        kind: google.oauth2                  # a catalog type (or a spec kind, see resolve.py)
        client_id_secret: gcp_client_id      # <field>_secret: the NAME of a secret in the sources
        client_secret_secret: gcp_client_secret
        refresh_token_secret: gcp_refresh_token
        scopes: [https://www.googleapis.com/auth/spreadsheets]   # <field>: a literal value
        sources: [vault, env]                # optional: only these sources, in this order
    default: google_sales                    # optional: the environment default

A binding never holds a secret value, only secret *names*; literals are config. Each binding keeps
the line it starts on, so validation findings can point at it. Selection precedence (the spec's):
the node's alias, then the flow's default, then the environment default
(:meth:`BindingsConfig.select`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from flowcred.errors import BindingNotFound, ConfigurationError

SECRET_SUFFIX = "_secret"
_RESERVED = frozenset({"kind", "sources"})


@dataclass(frozen=True, slots=True)
class Binding:
    """One handle: its kind, its secret references (field -> secret name) and literals."""

    handle: str
    kind: str
    secret_refs: Mapping[str, str]
    literals: Mapping[str, Any]
    sources: tuple[str, ...] | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class BindingsConfig:
    """A loaded ``bindings:`` map. ``path`` is where it came from (None for text)."""

    bindings: Mapping[str, Binding]
    default: str | None = None
    path: str | None = None
    default_line: int = 0
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __contains__(self, handle: object) -> bool:
        return handle in self.bindings

    def get(self, handle: str) -> Binding:
        """The binding called ``handle``; :class:`~flowcred.errors.BindingNotFound` if none."""
        found = self.bindings.get(handle)
        if found is None:
            raise BindingNotFound(handle)
        return found

    def select(
        self,
        node_alias: str | None = None,
        flow_default: str | None = None,
        env_default: str | None = None,
    ) -> Binding:
        """The binding a node uses: its own alias, else the flow's default, else the
        environment's default (``env_default``, else this file's ``default:``).

        The first name *given* wins; if it has no binding that is
        :class:`~flowcred.errors.BindingNotFound` (DAG330) rather than a fall-through to a
        default, which would hand the node another credential than the one it asked for.
        """
        for name in (node_alias, flow_default, env_default, self.default):
            if name:
                return self.get(name)
        raise BindingNotFound("(no node alias, flow default or environment default)")


def load_bindings(source: str | os.PathLike[str]) -> BindingsConfig:
    """Load a bindings map from a file path or from YAML text.

    A :class:`~pathlib.Path` (or a str naming an existing file) is read; any other str is
    parsed as YAML. Raises :class:`~flowcred.errors.ConfigurationError` with the file and line
    of the problem (never a value: a binding holds names, but a pasted secret must not echo).
    """
    path: str | None = None
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and ":" not in source
    ):
        path = os.fspath(source)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read bindings file {path}: {type(exc).__name__}"
            ) from None
    else:
        text = str(source)
    return parse_bindings(text, path=path)


def parse_bindings(text: str, *, path: str | None = None) -> BindingsConfig:
    where = path or "<bindings>"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise ConfigurationError(f"bindings file {where}:{at} not valid YAML") from None
    if data is None:
        return BindingsConfig(bindings=MappingProxyType({}), path=path)
    if not isinstance(data, dict) or not isinstance(data.get("bindings", {}), dict):
        raise ConfigurationError(f"bindings file {where}: expected a 'bindings:' mapping")
    lines = _key_lines(root)
    bindings: dict[str, Binding] = {}
    for handle, body in (data.get("bindings") or {}).items():
        line = lines.get(("bindings", str(handle)), 0)
        bindings[str(handle)] = _binding(str(handle), body, f"{where} line {line}", line)
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigurationError(f"bindings file {where}: 'default' must be a binding name")
    return BindingsConfig(
        bindings=MappingProxyType(bindings),
        default=default,
        path=path,
        default_line=lines.get(("default",), 0),
        lines=MappingProxyType({k[1]: v for k, v in lines.items() if len(k) == 2}),
    )


def _binding(handle: str, body: object, where: str, line: int) -> Binding:
    if not isinstance(body, dict):
        raise ConfigurationError(f"{where}: binding {handle!r} must be a mapping")
    kind = body.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise ConfigurationError(f"{where}: binding {handle!r} needs a 'kind'")
    sources = body.get("sources")
    if sources is not None and (
        not isinstance(sources, list) or not all(isinstance(s, str) for s in sources)
    ):
        raise ConfigurationError(f"{where}: binding {handle!r}: 'sources' must be a list of names")
    refs: dict[str, str] = {}
    literals: dict[str, Any] = {}
    for key, value in body.items():
        key = str(key)
        if key in _RESERVED:
            continue
        if key.endswith(SECRET_SUFFIX) and len(key) > len(SECRET_SUFFIX):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(
                    f"{where}: binding {handle!r}: {key} must name a secret (a string)"
                )
            refs[key[: -len(SECRET_SUFFIX)]] = value
        else:
            literals[key] = value
    both = sorted(set(refs) & set(literals))
    if both:
        raise ConfigurationError(
            f"{where}: binding {handle!r}: {', '.join(both)} given both as a literal and as "
            "a secret reference"
        )
    return Binding(
        handle=handle,
        kind=kind.strip(),
        secret_refs=MappingProxyType(refs),
        literals=MappingProxyType(literals),
        sources=tuple(sources) if sources is not None else None,
        line=line,
    )


def _key_lines(root: yaml.Node | None) -> dict[tuple[str, ...], int]:
    """1-based lines of top-level keys and of each ``bindings`` entry's key."""
    lines: dict[tuple[str, ...], int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        lines[(key.value,)] = key.start_mark.line + 1
        if key.value == "bindings" and isinstance(value, yaml.MappingNode):
            for handle, _body in value.value:
                if isinstance(handle, yaml.ScalarNode):
                    lines[("bindings", handle.value)] = handle.start_mark.line + 1
    return lines


__all__ = ["Binding", "BindingsConfig", "load_bindings", "parse_bindings"]
