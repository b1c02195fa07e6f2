"""The :class:`Secret` wrapper and :func:`mask`: secret values that never print themselves.

Part of :mod:`flowcred.redaction`, which re-exports every public name; import from there.
"""

from __future__ import annotations

import hmac
from typing import Any, ClassVar, NoReturn, Self, SupportsIndex, final

__all__ = ["SECURE_PLACEHOLDER", "Secret", "mask"]

#: What a :class:`Secret` and :func:`mask` display instead of a value.
SECURE_PLACEHOLDER = "[secure]"


@final
class Secret:
    """An immutable secret string that never prints its value.

    ``repr``, ``str`` and every format spec give ``[secure]``, so a secret inside a dict, a list,
    an exception message or an f-string is masked by its type, not by the discipline of whoever
    formats it. :meth:`reveal` is the only way to the value.

    Equality with another :class:`Secret` runs in constant time (``hmac.compare_digest``), so
    comparing a presented secret against a stored one leaks no prefix length through timing.
    Secrets are unhashable (a hash is a function of the value, and sets of secrets have no use
    here), have no ``len`` (the length of a password is information), are truthy when non-empty,
    and refuse to be pickled, so a value never leaves the process silently through pickle, a
    multiprocessing queue or a cache. ``copy`` and ``deepcopy`` return the same object, which is
    safe because it is immutable.

    Example::

        >>> s = Secret("hunter22")
        >>> s, f"{s}", "%s" % s
        ([secure], '[secure]', '[secure]')
        >>> s.reveal()
        'hunter22'
    """

    __slots__ = ("_value",)
    _value: str

    # Defining __eq__ already clears __hash__; saying so keeps the intent visible to readers.
    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the wrapped value; every call site is a place where the secret leaves."""
        return self._value

    def __repr__(self) -> str:
        return SECURE_PLACEHOLDER

    def __str__(self) -> str:
        return SECURE_PLACEHOLDER

    def __format__(self, format_spec: str) -> str:
        return SECURE_PLACEHOLDER

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # The surrogatepass handler lets values with lone surrogates compare instead of raising.
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"),
            other._value.encode("utf-8", "surrogatepass"),
        )

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError("Secret values cannot be pickled")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


def mask(value: str | None) -> str:
    """Return the display form of a secret for CLI and API output.

    ``[secure]`` for any non-empty value and ``""`` for an empty or missing one, so a user can
    tell "set" from "unset". Unlike tools that show the last four characters, nothing of the value
    is shown: four characters of a short token are a large part of it.
    """
    return SECURE_PLACEHOLDER if value else ""
