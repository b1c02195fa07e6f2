"""Log redaction: the process-wide record-factory hook and :class:`RedactingFilter`.

Part of :mod:`flowcred.redaction`, which re-exports every public name; import from there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, SupportsIndex, cast

from flowcred.redaction.registry import SecretRegistry, default_registry

__all__ = ["RedactingFilter", "install_log_redaction", "uninstall_log_redaction"]


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
        _INSTALLATION.registry = registry if registry is not None else default_registry()
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
        self.registry = registry if registry is not None else default_registry()

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_eagerly(record, self.registry)
        return True
