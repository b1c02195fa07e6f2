"""Keep secret values out of reprs, displays and log records.

Three layers, from the narrowest to the widest:

* :class:`Secret` wraps one value so that it prints as ``[secure]`` wherever it goes: ``repr``,
  ``str``, f-strings, ``%`` formatting, and the repr of any container holding it. The value leaves
  only through :meth:`Secret.reveal`, so a leak is always a visible line of code.
* :class:`SecretRegistry` remembers every secret value the process has decrypted or received,
  together with the encoded forms it is likely to take in text (base64, URL and JSON escaping),
  and masks all of them in arbitrary text with :meth:`SecretRegistry.redact`.
* :func:`install_log_redaction` makes every log record of the process pass through a registry, so
  that no handler, present or added later, can write a registered value. :class:`RedactingFilter`
  does the same for one handler, for applications that prefer to wire logging explicitly.

Usage::

    from flowcred.redaction import Secret, install_log_redaction, register_secret

    install_log_redaction()            # once, at start-up
    token = Secret(fetch_token())
    register_secret(token.reveal())    # every log record now masks it, in any encoding
    log.info("got token %s", token)    # -> "got token [secure]"
    log.info("raw %s", token.reveal()) # -> "raw ***"

Cost model, which is the reason this module exists: a naive redactor (Airflow's) recompiles one
regular expression of all secrets on each registration, so registration is O(n) in the number of
secrets and every log line is scanned against an ever larger alternation. Here registration costs
O(len(secret)) and :meth:`SecretRegistry.redact` costs O(len(text)), neither growing with the
number of registered secrets; see :class:`SecretRegistry` for how.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, NoReturn, Self, SupportsIndex, cast, final
from urllib.parse import quote, quote_plus

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SECURE_PLACEHOLDER",
    "RedactingFilter",
    "Secret",
    "SecretRegistry",
    "default_registry",
    "install_log_redaction",
    "mask",
    "register_secret",
    "uninstall_log_redaction",
]

#: What a :class:`Secret` and :func:`mask` display instead of a value.
SECURE_PLACEHOLDER = "[secure]"

#: What :meth:`SecretRegistry.redact` puts in place of a registered value.
REDACTED = "***"

#: Values shorter than this are not registered: masking every three-letter string that happens to
#: be someone's password would shred every log line while protecting nothing worth protecting.
MIN_SECRET_LENGTH = 5

# The index is keyed by 4-character grams. A form (always at least MIN_SECRET_LENGTH long) is
# indexed by the grams starting at each of its first _STRIDE offsets, so the scan only needs to look
# at every _STRIDE-th position of the text: any occurrence starting at p puts one of its indexed
# grams on a scanned position (p or p + 1). This halves the work of the common no-secret case.
_GRAM = 4
_STRIDE = MIN_SECRET_LENGTH - _GRAM + 1

# One slot of the index: (offset of the gram inside the form, length of the form, forms).
_Slot = tuple[int, int, set[str]]


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


def _forms_of(value: str) -> frozenset[str]:
    """Return the value and the encodings it is likely to appear in, if long enough to mask.

    Base64 forms cover the standard and URL-safe alphabets, padded and unpadded, plus the prefix
    of characters that depend on the value alone: when the value sits at a 3-byte boundary inside
    a longer base64 stream (basic-auth headers, concatenated blobs), the last character before the
    padding mixes in the following bytes, so only that prefix is found.
    """
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        # The repr form covers secrets logged inside containers, whose repr escapes quotes and
        # backslashes.
        repr(value)[1:-1],
    }
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        # A value with lone surrogates has no UTF-8 bytes, so no byte-level encoding of it exists.
        pass
    else:
        forms.add(quote(value, safe=""))
        forms.add(quote_plus(value))
        stable = len(raw) * 8 // 6
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = encoded.decode("ascii")
            forms.update((text, text.rstrip("="), text[:stable]))
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


class SecretRegistry:
    """The set of secret values to mask in text, with their encoded forms.

    :meth:`register` adds a value and its derived forms (see :meth:`register`); :meth:`redact`
    replaces every occurrence of every form with ``***``. Where forms overlap or nest, the union
    of all occurrences is masked, so no fragment of any of them survives.

    How it stays fast with many secrets: every form is indexed in a dict under the 4-character
    grams at its first two offsets, in slots of equal (offset, length). :meth:`redact` reads the
    gram at every second position of the text (a dict lookup each) and, only where a gram is
    known, checks the text slice of each slot's length against that slot's set. Registration is
    a handful of dict and set insertions per form, O(len(value)); redaction is O(len(text)) times
    the number of distinct form lengths that share a gram, which depends on the shapes of the
    secrets, not on how many there are. Tokens with a common prefix (``ghp_``, ``AKIA``, JWT
    headers) share a gram but still cost one set lookup per length.

    Thread safety: writers serialise on a lock; :meth:`redact` and :meth:`contains_secret` take
    no lock. Each published change is a single dict item assignment, a set insertion or removal,
    or a replacement of an immutable tuple, each atomic for readers, and a slot's set is filled
    before the slot is published, so a concurrent reader sees a form either fully or not at all.

    Memory bound: at most ``max_entries`` forms are kept (about ten per value). Beyond that the
    oldest registrations are dropped first, whole, so a long-lived process that keeps receiving
    fresh tokens cannot grow without limit; registering a value again makes it the newest. A
    dropped value is no longer masked, so size the bound well above the number of secrets that
    are live at one time.

    Example::

        >>> registry = SecretRegistry()
        >>> registry.register("s3cr3t-value")
        >>> registry.redact("password=s3cr3t-value, b64=czNjcjN0LXZhbHVl")
        'password=***, b64=***'
    """

    def __init__(self, *, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._lock = threading.Lock()
        # Registered values, oldest first, each with the forms it contributed.
        self._values: OrderedDict[str, frozenset[str]] = OrderedDict()
        # How many registered values contributed each form; a form leaves the index at zero.
        self._form_refs: dict[str, int] = {}
        self._index: dict[str, tuple[_Slot, ...]] = {}

    def __len__(self) -> int:
        """Return the number of registered values, not counting their derived forms."""
        return len(self._values)

    @property
    def max_entries(self) -> int:
        """The number of forms beyond which the oldest registrations are dropped."""
        return self._max_entries

    def register(self, value: str | Secret) -> None:
        """Mask ``value`` from now on, together with its derived forms.

        Derived forms, each added only where it differs from the value: standard and URL-safe
        base64 of the UTF-8 bytes (padded, unpadded, and the prefix that depends on the value
        alone), percent-encoding (``quote(value, safe="")`` and ``quote_plus``), the JSON string
        escape (ASCII-only and not) and the Python repr escape. Values shorter than
        :data:`MIN_SECRET_LENGTH` are ignored on purpose (see there). A :class:`Secret` is
        accepted and registered by its value.

        Raises ``TypeError`` for anything but a ``str`` or :class:`Secret`.
        """
        if isinstance(value, Secret):
            value = value.reveal()
        elif not isinstance(value, str):
            raise TypeError(f"can only register a str or Secret, not {type(value).__name__}")
        if len(value) < MIN_SECRET_LENGTH:
            return
        # Fast path for a value already known, which is what every repeated resolve of the same
        # credential registers: refresh its place in the eviction order and stop. OrderedDict's
        # move_to_end is a single C call, atomic under the GIL, so no lock is needed here.
        try:
            self._values.move_to_end(value)
            return
        except KeyError:
            pass
        # Encoding happens outside the lock: it is the only part proportional to the value.
        forms = _forms_of(value)
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
            self._values[value] = forms
            for form in forms:
                refs = self._form_refs.get(form, 0)
                self._form_refs[form] = refs + 1
                if refs == 0:
                    self._index_form(form)
            self._enforce_bound()

    def register_many(self, values: Iterable[str | Secret]) -> None:
        """Register each of ``values`` as :meth:`register` does."""
        for value in values:
            self.register(value)

    def redact(self, text: str) -> str:
        """Return ``text`` with every occurrence of every registered form replaced by ``***``.

        Overlapping occurrences are masked together as one ``***``; adjacent ones each get their
        own. Text without any registered form is returned as the same object.
        """
        spans = self._find(text, first_only=False)
        if not spans:
            return text
        spans.sort()
        pieces: list[str] = []
        position = 0
        start, end = spans[0]
        for next_start, next_end in spans[1:]:
            if next_start < end:
                end = max(end, next_end)
                continue
            pieces += (text[position:start], REDACTED)
            position = end
            start, end = next_start, next_end
        pieces += (text[position:start], REDACTED, text[end:])
        return "".join(pieces)

    def contains_secret(self, text: str) -> bool:
        """Return whether ``text`` contains any registered form."""
        return bool(self._find(text, first_only=True))

    def _find(self, text: str, *, first_only: bool) -> list[tuple[int, int]]:
        """Return the (start, end) spans of registered forms in ``text``, in no particular order."""
        index = self._index
        if not index:
            return []
        # A comprehension over every second position is the fastest pure-Python scan measured
        # (about twice as fast as visiting every position, and faster than map/slice pipelines).
        candidates = [
            i for i in range(0, len(text) - _GRAM + 1, _STRIDE) if text[i : i + _GRAM] in index
        ]
        spans: list[tuple[int, int]] = []
        for i in candidates:
            # The gram may have been dropped by a concurrent writer since the scan saw it.
            for offset, length, forms in index.get(text[i : i + _GRAM], ()):
                start = i - offset
                if start >= 0 and text[start : start + length] in forms:
                    spans.append((start, start + length))
                    if first_only:
                        return spans
        return spans

    def _index_form(self, form: str) -> None:
        """Publish ``form`` in the index; the caller holds the lock."""
        length = len(form)
        for offset in range(_STRIDE):
            gram = form[offset : offset + _GRAM]
            slots = self._index.get(gram, ())
            for slot_offset, slot_length, forms in slots:
                if slot_offset == offset and slot_length == length:
                    forms.add(form)
                    break
            else:
                # The new slot's set already holds the form when the tuple is published. Longest
                # slots come first, which keeps the scan's result order stable for debugging.
                new_slots = sorted((*slots, (offset, length, {form})), key=lambda s: -s[1])
                self._index[gram] = tuple(new_slots)

    def _unindex_form(self, form: str) -> None:
        """Withdraw ``form`` from the index; the caller holds the lock."""
        length = len(form)
        for offset in range(_STRIDE):
            gram = form[offset : offset + _GRAM]
            slots = self._index.get(gram, ())
            for slot in slots:
                if slot[0] == offset and slot[1] == length:
                    slot[2].discard(form)
                    if not slot[2]:
                        remaining = tuple(s for s in slots if s is not slot)
                        if remaining:
                            self._index[gram] = remaining
                        else:
                            del self._index[gram]
                    break

    def _enforce_bound(self) -> None:
        """Drop the oldest registrations until at most ``max_entries`` forms remain.

        The newest registration is always kept, even when it alone exceeds a tiny bound.
        """
        while len(self._form_refs) > self._max_entries and len(self._values) > 1:
            _, forms = self._values.popitem(last=False)
            for form in forms:
                refs = self._form_refs[form] - 1
                if refs:
                    self._form_refs[form] = refs
                else:
                    del self._form_refs[form]
                    self._unindex_form(form)


# Logging is configured per process, so the registry that log redaction reads is per process
# too: this is the one sanctioned module-level global of flowcred. Everything else receives its
# registry explicitly, and tests pass their own.
_DEFAULT_REGISTRY = SecretRegistry()


def default_registry() -> SecretRegistry:
    """Return the process-wide registry that :func:`install_log_redaction` uses by default."""
    return _DEFAULT_REGISTRY


def register_secret(value: str | Secret) -> None:
    """Register ``value`` in the process-wide registry (see :meth:`SecretRegistry.register`)."""
    _DEFAULT_REGISTRY.register(value)


# --- Logging -----------------------------------------------------------------------------------

# Formats tracebacks exactly as logging.Formatter does by default.
_TRACEBACK_FORMATTER = logging.Formatter()


class _RedactedText(str):
    """A string whose repr is itself, so redacted arguments print without extra quoting."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def _redact_args(args: Any, registry: SecretRegistry) -> Any:
    """Return redacted stand-ins for the arguments of a record whose message failed to format.

    ``Handler.handleError`` prints the raw ``msg`` and ``args`` of such a record to stderr, which
    would otherwise bypass every redaction.
    """
    if isinstance(args, Mapping):
        return {key: _RedactedText(registry.redact(_safe_repr(v))) for key, v in args.items()}
    if isinstance(args, tuple):
        return tuple(_RedactedText(registry.redact(_safe_repr(v))) for v in args)
    return args


def _redact_attachments(record: logging.LogRecord, registry: SecretRegistry) -> None:
    """Redact the traceback and stack text of ``record``, formatting the traceback if needed.

    ``Formatter.format`` reuses ``exc_text`` when it is set and only formats ``exc_info`` when it
    is not, so setting a redacted ``exc_text`` first covers exception messages in tracebacks.
    """
    if record.exc_info and not record.exc_text:
        record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = registry.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = registry.redact(record.stack_info)


def _redact_message_failure(record: logging.LogRecord, registry: SecretRegistry) -> None:
    """Make the raw message parts of a record that cannot be formatted safe to print."""
    record.msg = registry.redact(str(record.msg))
    record.args = _redact_args(record.args, registry)


class _Installation:
    """The state of :func:`install_log_redaction`: which factory is ours and what it reads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.factory: _RedactingRecordFactory | None = None
        self.registry: SecretRegistry | None = None


_INSTALLATION = _Installation()


class _RedactingLogRecord(logging.LogRecord):
    """A log record whose message, traceback and stack text come out redacted.

    The message stays lazy (``msg`` and ``args`` are kept) so filters and handlers that read the
    template, such as error trackers grouping by it, keep working; only what is formatted from
    them is masked. Records of other classes are given a subclass of their own class with this
    one mixed in (see :func:`_redacting_class`).
    """

    __slots__ = ()

    # The class this record had before redaction was mixed in; copies that leave the process are
    # rebuilt as this class, already redacted.
    _flowcred_base: ClassVar[type[logging.LogRecord]] = logging.LogRecord

    def getMessage(self) -> str:
        registry = _INSTALLATION.registry
        if registry is None:
            return super().getMessage()
        # Formatter.format calls getMessage() before it looks at exc_text and stack_info, so
        # redacting them here covers every formatter.
        _redact_attachments(self, registry)
        try:
            message = super().getMessage()
        except Exception:
            _redact_message_failure(self, registry)
            raise
        return registry.redact(message)

    def __copy__(self) -> Self:
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        # A pickled record is read by another process whose registry does not know our secrets,
        # so it travels as a plain record holding only redacted text, as QueueHandler.prepare
        # would leave it.
        state = dict(self.__dict__)
        try:
            state["msg"] = self.getMessage()
            state["args"] = None
        except Exception:
            state["msg"], state["args"] = self.msg, self.args
        state["exc_text"], state["stack_info"], state["exc_info"] = (
            self.exc_text,
            self.stack_info,
            None,
        )
        return (_rebuild_record, (self._flowcred_base, state))


def _rebuild_record(cls: type[logging.LogRecord], state: dict[str, Any]) -> logging.LogRecord:
    """Recreate a record of class ``cls`` from its attributes (the pickle counterpart above)."""
    record = cls.__new__(cls)
    record.__dict__.update(state)
    return record


_REDACTING_CLASSES: dict[type[logging.LogRecord], type[_RedactingLogRecord]] = {
    logging.LogRecord: _RedactingLogRecord
}


def _redacting_class(base: type[logging.LogRecord]) -> type[_RedactingLogRecord]:
    """Return the subclass of ``base`` with :class:`_RedactingLogRecord` mixed in, cached."""
    cls = _REDACTING_CLASSES.get(base)
    if cls is None:
        cls = cast(
            "type[_RedactingLogRecord]",
            type(
                f"Redacting{base.__name__}",
                (_RedactingLogRecord, base),
                {"__slots__": (), "_flowcred_base": base, "__module__": __name__},
            ),
        )
        _REDACTING_CLASSES[base] = cls
    return cls


class _RedactingRecordFactory:
    """Wraps the previous record factory and makes each record it builds a redacting one."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        registry = _INSTALLATION.registry
        if registry is None or isinstance(record, _RedactingLogRecord):
            return record
        try:
            record.__class__ = _redacting_class(type(record))
        except TypeError:
            # A record class whose layout forbids the swap (for example one with __slots__ and no
            # __dict__) is redacted eagerly instead; it loses only the lazy template.
            _redact_eagerly(record, registry)
        return record


def _redact_eagerly(record: logging.LogRecord, registry: SecretRegistry) -> None:
    """Replace the message parts of ``record`` by their redacted text, never raising."""
    _redact_attachments(record, registry)
    try:
        message = record.getMessage()
    except Exception:
        # The handler will fail to format it too, and print msg and args; those are now safe.
        _redact_message_failure(record, registry)
    else:
        record.msg = registry.redact(message)
        record.args = None


def install_log_redaction(registry: SecretRegistry | None = None) -> None:
    """Redact every log record of the process through ``registry`` (default: the process-wide one).

    Installs a wrapper around the current log record factory, so the guarantee does not depend
    on which loggers, handlers or formatters exist: every record built from now on, by any logger
    (children that propagate included) and read by any handler (including ones added later, and
    pytest's caplog), returns the redacted message from ``getMessage()``, carries a redacted
    ``exc_text`` when it has ``exc_info`` (the traceback is formatted in the standard way at that
    point, so a custom ``Formatter.formatException`` is bypassed) and a redacted ``stack_info``.
    ``msg`` and ``args`` themselves are left intact for filters that group by template; a
    handler that serialises them directly (rather than formatting the record) should also get a
    :class:`RedactingFilter`. Attributes passed through ``extra`` are not covered.

    Idempotent: calling it again switches the registry used, and re-wraps the factory only if
    a plain record class replaced ours since. Records keep working if another library wraps the
    factory afterwards.
    """
    with _INSTALLATION.lock:
        _INSTALLATION.registry = registry if registry is not None else _DEFAULT_REGISTRY
        current = logging.getLogRecordFactory()
        # A plain LogRecord class set after our installation replaced our wrapper outright (a
        # class cannot be chaining to it), so wrap it again. A function set on top is taken to
        # chain to ours, as the logging cookbook's factory pattern does, and is left alone so that
        # repeated installs do not stack wrappers.
        replaced = _INSTALLATION.factory is not None and isinstance(current, type)
        if _INSTALLATION.factory is None or replaced:
            factory = _RedactingRecordFactory(current)
            _INSTALLATION.factory = factory
            logging.setLogRecordFactory(factory)


def uninstall_log_redaction() -> None:
    """Stop redacting log records; meant for tests.

    Restores the previous factory when ours is still the current one. If another factory was
    installed on top of ours, ours stays in the chain but passes records through untouched.
    """
    with _INSTALLATION.lock:
        factory = _INSTALLATION.factory
        _INSTALLATION.registry = None
        _INSTALLATION.factory = None
        if factory is not None and logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(factory.previous)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record it sees into its redacted form.

    Attach it to a handler to redact only what that handler writes, without a process-wide hook::

        handler.addFilter(RedactingFilter(registry))

    It replaces ``msg`` by the redacted formatted message and clears ``args`` (so the template is
    lost to later filters), and sets a redacted ``exc_text`` and ``stack_info``. It lets every
    record through and never raises, even for records whose message cannot be formatted.
    Records are shared between handlers, so the rewrite is seen by handlers that run later.
    """

    def __init__(self, registry: SecretRegistry | None = None, name: str = "") -> None:
        super().__init__(name)
        self.registry = registry if registry is not None else _DEFAULT_REGISTRY

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_eagerly(record, self.registry)
        return True
