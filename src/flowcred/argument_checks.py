"""Type checks of the arguments of the Python API, so a wrong type is a FlowcredError.

Why: ``broker.credentials.create(name=5, ...)`` or ``secret="..."`` used to fail deep inside with
a bare ``TypeError`` or ``AttributeError`` (and a traceback naming internals). A caller of a
credential broker should get the same error tree whatever the surface: these checks turn a
wrongly typed argument into :class:`~flowcred.errors.InvalidCredential` naming the field (never
its value), before anything is registered, stored or audited.

Contract: :func:`check_arguments` is called as the first line of each public method of
:class:`flowcred.credentials.Credentials` with the method and ``locals()``. The expected types are
read from the method's own annotations (one source of truth; computed once per method), and only
the forms used there are understood: plain classes, ``X | None``, ``int | str``, ``Mapping[...]``
and ``Any``. ``bool`` is never accepted where an ``int`` is expected. The sentinel ``UNSET`` of the
store is accepted wherever it is the declared default.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from flowcred.errors import FieldProblem, InvalidCredential

# What a problem says the field must be, per accepted class.
_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    Mapping: "a mapping (dict) of field names to values",
}


def _is_instance(value: object, cls: type) -> bool:
    if cls is int or cls is float:
        return isinstance(value, cls) and not isinstance(value, bool)
    return isinstance(value, cls)


def _classes(annotation: object) -> tuple[type, ...] | None:
    """The classes an annotation admits, or None when it admits anything."""
    if annotation is Any or annotation is object:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        out: list[type] = []
        for arg in typing.get_args(annotation):
            sub = _classes(arg)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    if origin is not None:
        return _classes(origin)
    if annotation is None or annotation is type(None):
        return (type(None),)
    if isinstance(annotation, type):
        return (annotation,)
    return None


def _describe(classes: tuple[type, ...]) -> str:
    words = [_WORDS.get(c, c.__name__) for c in classes if c is not type(None)]
    text = " or ".join(words) if words else "None"
    return f"must be {text}" + (" (or None)" if type(None) in classes else "")


@cache
def _plan(function: Callable[..., Any]) -> tuple[tuple[str, tuple[type, ...], object], ...]:
    hints = typing.get_type_hints(function)
    plan = []
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self" or name not in hints:
            continue
        classes = _classes(hints[name])
        if classes is None:
            continue
        plan.append((name, classes, parameter.default))
    return tuple(plan)


def check_arguments(function: Callable[..., Any], arguments: Mapping[str, Any]) -> None:
    """Raise InvalidCredential naming every argument of ``function`` whose value has the wrong
    type (the values themselves are never shown)."""
    problems = []
    for name, classes, default in _plan(function):
        if name not in arguments:
            continue
        value = arguments[name]
        if value is default:  # a declared default (e.g. the store's UNSET) is always fine
            continue
        if not any(_is_instance(value, cls) for cls in classes):
            problems.append(FieldProblem(name, _describe(classes)))
    if problems:
        raise InvalidCredential(problems)
