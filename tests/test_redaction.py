"""Tests of flowcred.redaction: masked Secret reprs, the secret registry and log redaction.

Every masking test plants a secret, asserts that it is gone, and asserts that the text around it
survived, so neither a no-op nor a redactor that blanks everything can pass.
"""

from __future__ import annotations

import base64
import copy
import hmac
import io
import json
import logging
import pickle
import random
import string
import sys
import threading
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from flowcred.redaction import (
    MIN_SECRET_LENGTH,
    REDACTED,
    RedactingFilter,
    Secret,
    SecretRegistry,
    default_registry,
    install_log_redaction,
    mask,
    register_secret,
    uninstall_log_redaction,
)

SECRET = "hunter2-Sup3r$ecret"


# --- Secret --------------------------------------------------------------------------------------


class TestSecret:
    def test_every_text_conversion_prints_secure(self) -> None:
        s = Secret(SECRET)
        rendered = [
            repr(s),
            str(s),
            format(s),
            format(s, ">30"),
            f"{s}",
            f"{s!r}",
            f"{s!s}",
            f"{s:^40}",
            "%s" % s,  # noqa: UP031 - %-formatting is what logging does, so it is under test.
            "%r" % s,  # noqa: UP031
            "{}".format(s),  # noqa: UP032
            "{!r}".format(s),  # noqa: UP032
        ]
        assert rendered == ["[secure]"] * len(rendered)

    def test_containers_print_secure(self) -> None:
        s = Secret(SECRET)
        text = repr({"password": s, "list": [s], "tuple": (s,)})
        assert SECRET not in text
        assert text == "{'password': [secure], 'list': [[secure]], 'tuple': ([secure],)}"

    def test_exception_message_prints_secure(self) -> None:
        err = ValueError("login failed with", Secret(SECRET))
        assert SECRET not in str(err)
        assert "[secure]" in str(err)

    def test_reveal_returns_value(self) -> None:
        assert Secret(SECRET).reveal() == SECRET

    def test_rejects_non_str(self) -> None:
        with pytest.raises(TypeError):
            Secret(b"bytes")  # type: ignore[arg-type]

    def test_equality(self) -> None:
        assert Secret(SECRET) == Secret(SECRET)
        assert Secret(SECRET) != Secret(SECRET + "x")
        assert Secret("é-unicode") == Secret("é-unicode")
        # A Secret never equals the bare string: comparing must be a deliberate reveal().
        assert Secret(SECRET) != SECRET
        assert Secret(SECRET).__eq__(SECRET) is NotImplemented

    def test_equality_uses_constant_time_compare(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[tuple[bytes, bytes]] = []

        def spy(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return a == b

        monkeypatch.setattr(hmac, "compare_digest", spy)
        assert Secret("abcdef") == Secret("abcdef")
        assert calls == [(b"abcdef", b"abcdef")]

    def test_lone_surrogate_compares(self) -> None:
        assert Secret("a\udc80bcde") == Secret("a\udc80bcde")

    def test_truthiness_and_no_len_no_hash(self) -> None:
        assert Secret(SECRET)
        assert not Secret("")
        with pytest.raises(TypeError):
            len(Secret(SECRET))  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            hash(Secret(SECRET))

    @pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
    def test_pickling_refused(self, protocol: int) -> None:
        with pytest.raises(TypeError, match="Secret values cannot be pickled"):
            pickle.dumps(Secret(SECRET), protocol=protocol)
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps({"nested": [Secret(SECRET)]}, protocol=protocol)

    def test_copies_are_the_same_object(self) -> None:
        s = Secret(SECRET)
        assert copy.copy(s) is s
        assert copy.deepcopy(s) is s
        assert copy.deepcopy({"k": s})["k"] is s

    def test_immutable(self) -> None:
        s = Secret(SECRET)
        with pytest.raises(AttributeError):
            s._value = "other"
        with pytest.raises(AttributeError):
            del s._value
        with pytest.raises(AttributeError):
            s.extra = 1
        assert s.reveal() == SECRET


@pytest.mark.parametrize(
    ("value", "shown"), [(SECRET, "[secure]"), ("x", "[secure]"), ("", ""), (None, "")]
)
def test_mask(value: str | None, shown: str) -> None:
    assert mask(value) == shown


# --- SecretRegistry ------------------------------------------------------------------------------


def registry_with(*values: str) -> SecretRegistry:
    registry = SecretRegistry()
    registry.register_many(values)
    return registry


def assert_masked(registry: SecretRegistry, planted: str, secret_text: str) -> None:
    """Plant ``secret_text`` between two markers and check only it disappears."""
    text = f"before<{planted}>after"
    result = registry.redact(text)
    assert secret_text not in result
    assert result == f"before<{REDACTED}>after"


class TestRegistryForms:
    def test_raw(self) -> None:
        assert_masked(registry_with(SECRET), SECRET, SECRET)

    @pytest.mark.parametrize(
        "value",
        [
            "k>>?~~~secret?>",  # 15 bytes: base64 without padding, with + and / in it.
            "Zz~~~>>>??secret",  # 16 bytes: two padding characters.
            "ab?>~d9??>x",  # 11 bytes: one padding character.
        ],
    )
    @pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
    def test_base64_padded_and_unpadded(self, value: str, encode: object) -> None:
        assert callable(encode)
        encoded = encode(value.encode()).decode()
        assert encoded != value
        registry = registry_with(value)
        assert_masked(registry, encoded, encoded)
        assert_masked(registry, encoded.rstrip("="), encoded.rstrip("="))

    def test_standard_and_urlsafe_base64_differ_for_this_value(self) -> None:
        # Guards the parametrisation above: both alphabets are really exercised.
        raw = b"k>>?~~~secret?>"
        assert base64.b64encode(raw) != base64.urlsafe_b64encode(raw)

    def test_base64_inside_a_longer_stream(self) -> None:
        # "alice1:" is 7 bytes, not a multiple of 3; "alice:" is 6, so the secret is aligned.
        value = "abcd3fgh1jk"
        header = base64.b64encode(f"alice:{value}".encode()).decode()
        registry = registry_with(value)
        result = registry.redact(f"Authorization: Basic {header}")
        prefix = base64.b64encode(b"alice:").decode()
        assert result.startswith(f"Authorization: Basic {prefix}{REDACTED}")
        # Only the last character, which mixes in bits beyond the value, may remain.
        assert len(result) <= len(f"Authorization: Basic {prefix}{REDACTED}") + 2

    def test_url_encoded(self) -> None:
        value = "p@ss word/with&=+?"
        registry = registry_with(value)
        assert quote(value, safe="") != quote_plus(value)
        assert_masked(registry, quote(value, safe=""), quote(value, safe=""))
        assert_masked(registry, quote_plus(value), quote_plus(value))
        url = f"https://api.example.com/cb?token={quote_plus(value)}&next=1"
        assert registry.redact(url) == f"https://api.example.com/cb?token={REDACTED}&next=1"

    def test_json_escaped(self) -> None:
        value = 'quote"back\\slash\ttab'
        registry = registry_with(value)
        body = json.dumps({"password": value, "user": "alice"})
        assert value not in body
        assert registry.redact(body) == f'{{"password": "{REDACTED}", "user": "alice"}}'

    def test_json_escaped_unicode_both_ways(self) -> None:
        value = "пароль-ключ"
        registry = registry_with(value)
        for body in (json.dumps({"p": value}), json.dumps({"p": value}, ensure_ascii=False)):
            assert registry.redact(body) == f'{{"p": "{REDACTED}"}}'

    def test_repr_escaped_inside_a_container(self) -> None:
        value = "it's\\a\"secret"
        registry = registry_with(value)
        text = repr({"password": value})
        assert registry.redact(text) == f"{{'password': '{REDACTED}'}}"

    def test_secret_wrapper_can_be_registered(self) -> None:
        registry = SecretRegistry()
        registry.register(Secret(SECRET))
        assert_masked(registry, SECRET, SECRET)

    def test_register_rejects_non_str(self) -> None:
        with pytest.raises(TypeError):
            SecretRegistry().register(12345678)  # type: ignore[arg-type]


class TestRegistryMatching:
    def test_short_values_are_not_registered(self) -> None:
        short = "x" * (MIN_SECRET_LENGTH - 1)
        registry = registry_with(short, "", "abc")
        assert len(registry) == 0
        assert registry.redact(f"id {short} abc") == f"id {short} abc"

    def test_minimum_length_value_is_registered(self) -> None:
        value = "k" * MIN_SECRET_LENGTH
        assert_masked(registry_with(value), value, value)

    @pytest.mark.parametrize("offset", range(8))
    def test_every_offset_in_the_text(self, offset: int) -> None:
        # The scan reads every second position; odd and even starts must both be found.
        value = "Zq9#x"
        text = "." * offset + value + "." * (7 - offset)
        result = registry_with(value).redact(text)
        assert result == "." * offset + REDACTED + "." * (7 - offset)

    def test_whole_text_start_and_end(self) -> None:
        registry = registry_with(SECRET)
        assert registry.redact(SECRET) == REDACTED
        assert registry.redact(f"{SECRET} mid {SECRET}") == f"{REDACTED} mid {REDACTED}"

    def test_no_secret_returns_same_object(self) -> None:
        text = "nothing to see here, credential 42 refreshed"
        assert registry_with(SECRET).redact(text) is text
        assert SecretRegistry().redact(text) is text

    def test_overlapping_secrets_all_masked(self) -> None:
        registry = registry_with("abcdefgh", "efghijkl")
        result = registry.redact("<<abcdefghijkl>>")
        assert result == f"<<{REDACTED}>>"

    def test_nested_secret_longest_wins(self) -> None:
        registry = registry_with("secret1", "secret1-long-tail", "t1-lo")
        assert registry.redact("x secret1-long-tail y") == f"x {REDACTED} y"
        assert registry.redact("x secret1 y") == f"x {REDACTED} y"

    def test_adjacent_secrets_both_masked(self) -> None:
        registry = registry_with("first-secret", "second-secret")
        result = registry.redact("[first-secretsecond-secret]")
        assert "first" not in result
        assert "second" not in result
        assert result == f"[{REDACTED}{REDACTED}]"

    def test_repeated_occurrences(self) -> None:
        registry = registry_with("tok3n-value")
        assert registry.redact("tok3n-value" * 3) == REDACTED * 3
        assert registry.redact("a tok3n-value b tok3n-value c") == f"a {REDACTED} b {REDACTED} c"

    @pytest.mark.parametrize(
        "value",
        ["пароль-секрет", "🔑key🔑value🔑", "mot-de-passe-é", "e\u0301-combining", "密码是秘密的"],
    )
    def test_unicode_secrets(self, value: str) -> None:
        registry = registry_with(value)
        assert_masked(registry, value, value)
        assert_masked(registry, quote(value, safe=""), quote(value, safe=""))
        encoded = base64.b64encode(value.encode()).decode()
        assert_masked(registry, encoded, encoded)
        # Unicode around the secret survives too.
        assert registry.redact(f"ключ={value}✓") == f"ключ={REDACTED}✓"

    def test_contains_secret(self) -> None:
        registry = registry_with(SECRET)
        assert registry.contains_secret(f"x{SECRET}x")
        assert registry.contains_secret(base64.b64encode(SECRET.encode()).decode())
        assert not registry.contains_secret("hunter2-Sup3r$ecre")
        assert not SecretRegistry().contains_secret(SECRET)

    def test_len_counts_values_once(self) -> None:
        registry = SecretRegistry()
        registry.register_many([SECRET, SECRET, "another-secret", "abc"])
        assert len(registry) == 2


class TestRegistryScaleAndBounds:
    def test_ten_thousand_secrets_all_masked(self) -> None:
        rng = random.Random(1234)
        alphabet = string.ascii_letters + string.digits
        # Many real tokens share a prefix; a third here do, to load one index bucket heavily.
        secrets = [
            ("ghp_" if i % 3 == 0 else "")
            + "".join(rng.choices(alphabet, k=rng.randint(MIN_SECRET_LENGTH, 40)))
            for i in range(10_000)
        ]
        registry = registry_with(*secrets)
        assert len(registry) == len(set(secrets))
        text = " | ".join(secrets)
        result = registry.redact(text)
        assert result.split(" | ") == [REDACTED] * len(secrets)
        encoded = " ; ".join(base64.b64encode(s.encode()).decode() for s in secrets[::97])
        assert registry.redact(encoded).split(" ; ") == [REDACTED] * len(secrets[::97])
        # A near miss of a bucketed prefix is left alone.
        assert registry.redact("ghp_notregistered!") == "ghp_notregistered!"

    def test_oldest_registrations_dropped_beyond_max_entries(self) -> None:
        # Each of these 13-character values has four forms: itself and three base64 variants.
        values = ["aaaafirst0001", "bbbbsecond002", "ccccthird0003", "ddddfourth004"]
        first_b64 = base64.b64encode(values[0].encode()).decode()
        registry = SecretRegistry(max_entries=12)
        registry.register_many(values[:3])
        assert registry.redact(first_b64) == REDACTED
        assert len(registry) == 3
        registry.register(values[3])
        assert len(registry) == 3
        assert registry.redact(values[0]) == values[0]
        assert registry.redact(first_b64) == first_b64
        assert registry.redact(f"{values[3]} {values[1]}") == f"{REDACTED} {REDACTED}"

    def test_reregistering_makes_a_value_newest(self) -> None:
        registry = SecretRegistry(max_entries=8)
        registry.register_many(["alphanumeric1", "alphanumeric2", "alphanumeric1"])
        registry.register("alphanumeric3")
        assert registry.redact("alphanumeric1") == REDACTED
        assert registry.redact("alphanumeric2") == "alphanumeric2"

    def test_shared_form_survives_eviction_of_one_owner(self) -> None:
        # quote_plus("abc def") is "abc+def", the second value itself: 6 + 5 forms, 10 distinct.
        registry = SecretRegistry(max_entries=10)
        registry.register("abc def")
        registry.register("abc+def")
        assert registry.redact("abc%20def") == REDACTED
        registry.register("alphanumeric1")
        assert len(registry) == 2
        assert registry.redact("abc def abc%20def") == "abc def abc%20def"
        assert registry.redact("x abc+def x") == f"x {REDACTED} x"

    def test_newest_registration_kept_even_above_a_tiny_bound(self) -> None:
        registry = SecretRegistry(max_entries=1)
        registry.register("needs encoding!")
        assert registry.redact(quote("needs encoding!", safe="")) == REDACTED

    def test_max_entries_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="max_entries"):
            SecretRegistry(max_entries=0)

    def test_register_while_redacting_from_other_threads(self) -> None:
        registry = registry_with(SECRET)
        text = f"start {SECRET} end " * 20
        expected = f"start {REDACTED} end " * 20
        errors: list[BaseException] = []
        mismatches: list[str] = []
        stop = threading.Event()

        def writer(n: int) -> None:
            try:
                registry.register_many(f"thread{n}-secret-{i:05d}" for i in range(500))
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            try:
                # Bounded: spinning readers starve the writers of the GIL on a 2-core machine.
                for _ in range(2_000):
                    if stop.is_set():
                        break
                    result = registry.redact(text)
                    if result != expected:
                        mismatches.append(result)
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=reader) for _ in range(2)]
        writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in readers:
            thread.join()
        assert errors == []
        assert mismatches == []
        assert len(registry) == 1 + 4 * 500
        planted = " ".join(f"thread{n}-secret-{i:05d}" for n in range(4) for i in (0, 499))
        assert registry.redact(planted) == " ".join([REDACTED] * 8)


def test_default_registry_is_process_wide() -> None:
    value = "process-wide-secret-for-test"
    assert default_registry() is default_registry()
    register_secret(value)
    assert default_registry().redact(f"x {value} x") == f"x {REDACTED} x"


# --- Logging -------------------------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[SecretRegistry]:
    """A fresh registry, installed as the process's log redaction for one test."""
    registry = registry_with(SECRET)
    previous = logging.getLogRecordFactory()
    # Opening a broker installs redaction for the whole process; an earlier test may have done
    # so. Leave the process as this test found it.
    was_redacting = type(previous).__name__ == "_RedactingRecordFactory"
    install_log_redaction(registry)
    yield registry
    uninstall_log_redaction()
    if was_redacting:
        install_log_redaction(default_registry())
    else:
        assert logging.getLogRecordFactory() is previous


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """A real StreamHandler with a Formatter on the root logger, writing to a StringIO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def child_logger() -> logging.Logger:
    logger = logging.getLogger("flowcred.tests.redaction.child")
    assert logger.propagate
    return logger


@pytest.mark.usefixtures("registry")
class TestLogRedaction:
    def test_child_logger_arg_masked_in_root_handler(self, root_stream: io.StringIO) -> None:
        child_logger().warning("token for %s is %s (expires soon)", "alice", SECRET)
        output = root_stream.getvalue()
        assert SECRET not in output
        expected = f"WARNING flowcred.tests.redaction.child: token for alice is {REDACTED}"
        assert output == f"{expected} (expires soon)\n"

    def test_secret_in_message_template_masked(self, root_stream: io.StringIO) -> None:
        child_logger().warning(f"inline {SECRET} text")
        assert root_stream.getvalue().endswith(f": inline {REDACTED} text\n")

    def test_exception_traceback_masked(self, root_stream: io.StringIO) -> None:
        try:
            raise ValueError(f"bad token {SECRET}")
        except ValueError:
            child_logger().exception("refresh failed for %s", "alice")
        output = root_stream.getvalue()
        assert SECRET not in output
        assert "refresh failed for alice" in output
        assert "Traceback (most recent call last):" in output
        assert f"ValueError: bad token {REDACTED}" in output

    def test_stack_info_masked(self, registry: SecretRegistry, root_stream: io.StringIO) -> None:
        # The stack text quotes this source line, so register a word that appears on it.
        registry.register("stack_info=True")
        child_logger().warning("with stack", stack_info=True)
        output = root_stream.getvalue()
        assert "stack_info=True" not in output
        assert "Stack (most recent call last):" in output
        assert "with stack" in output

    def test_caplog_masked(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.INFO, logger="flowcred.tests.redaction.child"):
            child_logger().info("secret is %s!", SECRET)
        assert SECRET not in caplog.text
        assert f"secret is {REDACTED}!" in caplog.text
        assert caplog.messages == [f"secret is {REDACTED}!"]

    def test_handler_added_after_install(self) -> None:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        logger = logging.getLogger("flowcred.tests.redaction.late")
        logger.addHandler(handler)
        try:
            logger.warning("late %s handler", SECRET)
        finally:
            logger.removeHandler(handler)
        assert stream.getvalue() == f"late {REDACTED} handler\n"

    def test_secret_registered_after_record_created(self, registry: SecretRegistry) -> None:
        record = child_logger().makeRecord(
            "n", logging.INFO, "f", 1, "v=%s", ("later-secret",), None
        )
        registry.register("later-secret")
        assert record.getMessage() == f"v={REDACTED}"
        # The template and arguments stay intact for filters that group by template.
        assert record.msg == "v=%s"

    def test_unformattable_record_prints_masked_arguments(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # pytest's own handlers fail the test on a bad record, so this logger stays off the root.
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        logger = logging.getLogger("flowcred.tests.redaction.isolated")
        logger.propagate = False
        logger.addHandler(handler)
        try:
            assert logging.raiseExceptions
            logger.warning("%s and %s", SECRET)
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
        err = capsys.readouterr().err
        assert SECRET not in err
        assert "--- Logging error ---" in err
        # Each argument is shown by its redacted repr, quotes included.
        assert f"Arguments: ('{REDACTED}',)" in err
        assert stream.getvalue() == ""

    def test_pickled_record_carries_redacted_text(self) -> None:
        try:
            raise RuntimeError(f"boom {SECRET}")
        except RuntimeError:
            record = child_logger().makeRecord(
                "n", logging.ERROR, "f", 1, "tok %s", (SECRET,), sys.exc_info()
            )
        clone = pickle.loads(pickle.dumps(record))
        assert type(clone) is logging.LogRecord
        assert clone.msg == f"tok {REDACTED}"
        assert clone.args is None
        assert clone.exc_text is not None
        assert SECRET not in clone.exc_text
        assert f"RuntimeError: boom {REDACTED}" in clone.exc_text

    def test_copied_record_stays_redacting(self) -> None:
        record = child_logger().makeRecord("n", logging.INFO, "f", 1, "%s", (SECRET,), None)
        assert copy.copy(record).getMessage() == REDACTED

    def test_install_is_idempotent(self, registry: SecretRegistry) -> None:
        factory = logging.getLogRecordFactory()
        install_log_redaction(registry)
        assert logging.getLogRecordFactory() is factory


class TaggedRecord(logging.LogRecord):
    """A custom record class, as installed by applications with their own record factory."""

    tag = "tagged"


def test_custom_record_factory_is_wrapped(root_stream: io.StringIO) -> None:
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(TaggedRecord)
    try:
        install_log_redaction(registry_with(SECRET))
        try:
            child_logger().warning("custom %s", SECRET)
            record = child_logger().makeRecord("n", logging.INFO, "f", 1, "%s", (SECRET,), None)
            clone = pickle.loads(pickle.dumps(record))
        finally:
            uninstall_log_redaction()
    finally:
        logging.setLogRecordFactory(previous)
    assert root_stream.getvalue().endswith(f": custom {REDACTED}\n")
    assert isinstance(record, TaggedRecord)
    assert record.tag == "tagged"
    assert type(clone) is TaggedRecord
    assert clone.getMessage() == REDACTED


def test_uninstall_stops_redaction(root_stream: io.StringIO) -> None:
    install_log_redaction(registry_with(SECRET))
    uninstall_log_redaction()
    uninstall_log_redaction()
    # The planted secret must appear again, which proves the fixture-based tests really depend on
    # the installation.
    child_logger().warning("plain %s", SECRET)
    assert root_stream.getvalue().endswith(f": plain {SECRET}\n")


class TestRedactingFilter:
    def make_handler(self, registry: SecretRegistry) -> tuple[logging.Handler, io.StringIO]:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(RedactingFilter(registry))
        return handler, stream

    def test_rewrites_record(self) -> None:
        handler, stream = self.make_handler(registry_with(SECRET))
        logger = logging.getLogger("flowcred.tests.redaction.filter")
        logger.addHandler(handler)
        try:
            logger.warning("filter %s here", SECRET)
            try:
                raise KeyError(SECRET)
            except KeyError:
                logger.exception("lookup failed")
        finally:
            logger.removeHandler(handler)
        output = stream.getvalue()
        assert SECRET not in output
        assert output.startswith(f"filter {REDACTED} here\nlookup failed\nTraceback")
        assert f"KeyError: '{REDACTED}'" in output

    def test_sets_msg_and_clears_args(self) -> None:
        record = logging.LogRecord("n", logging.INFO, "f", 1, "a %s b", (SECRET,), None)
        assert RedactingFilter(registry_with(SECRET)).filter(record) is True
        assert (record.msg, record.args) == (f"a {REDACTED} b", None)

    def test_never_raises_on_unformattable_record(self) -> None:
        record = logging.LogRecord("n", logging.INFO, "f", 1, "%d items", (SECRET,), None)
        assert RedactingFilter(registry_with(SECRET)).filter(record) is True
        assert SECRET not in repr(record.args)
        assert record.msg == "%d items"

    def test_defaults_to_process_registry(self) -> None:
        value = "filter-default-registry-secret"
        register_secret(value)
        record = logging.LogRecord("n", logging.INFO, "f", 1, "x %s", (value,), None)
        RedactingFilter().filter(record)
        assert record.msg == f"x {REDACTED}"


# --- Byte budgets and the pinned / transient classes (issue 8 item 4) ---------------------------


def _distinct(prefix: str, count: int, width: int = 40) -> list[str]:
    """``count`` distinct values of ``width`` characters, none a substring of another."""
    return [f"{prefix}-{i:08d}-".ljust(width, "x") + "|" for i in range(count)]


class TestRegistryByteBudget:
    def test_byte_accounting_counts_every_derived_form(self) -> None:
        registry = SecretRegistry()
        assert registry.nbytes == 0
        registry.register(SECRET)
        forms = [
            SECRET,
            base64.b64encode(SECRET.encode()).decode(),
            base64.urlsafe_b64encode(SECRET.encode()).decode(),
            quote(SECRET, safe=""),
        ]
        # Each derived form is counted, not only the value.
        assert registry.nbytes >= sum(len(form) for form in forms)
        assert registry.nbytes == registry.transient_bytes
        assert registry.pinned_bytes == 0

    def test_transient_flood_is_bounded_by_bytes(self) -> None:
        registry = SecretRegistry(max_transient_bytes=100_000)
        values = _distinct("flood", 2_000)
        for value in values:
            registry.register(value)
            assert registry.transient_bytes <= 100_000
        assert registry.nbytes <= 100_000
        # The newest are the ones kept, and they are still masked in every form.
        assert registry.redact(values[-1]) == REDACTED
        assert registry.redact(base64.b64encode(values[-1].encode()).decode()) == REDACTED
        assert registry.redact(values[0]) == values[0]

    def test_eviction_gives_the_bytes_back(self) -> None:
        registry = SecretRegistry(max_transient_bytes=50_000)
        registry.register_many(_distinct("a", 500))
        level = registry.transient_bytes
        registry.register_many(_distinct("b", 500))
        # Same shapes, same footprint: the bound is not a one-way ratchet.
        assert registry.transient_bytes <= 50_000
        assert abs(registry.transient_bytes - level) < 2_000

    def test_transient_flood_never_evicts_pinned_secrets(self) -> None:
        registry = SecretRegistry(max_transient_bytes=50_000, max_pinned_bytes=1_000_000)
        stored = _distinct("stored", 50)
        for value in stored:
            registry.register(value, pinned=True)
        pinned_level = registry.pinned_bytes
        registry.register_many(_distinct("rejected", 5_000))
        assert registry.pinned_bytes == pinned_level
        assert registry.transient_bytes <= 50_000
        text = " ".join(stored)
        assert registry.redact(text) == " ".join([REDACTED] * len(stored))

    def test_count_bound_never_lets_transient_evict_pinned(self) -> None:
        # max_entries counts forms of both classes; a transient newcomer may only push out
        # other transient values, never a pinned one.
        registry = SecretRegistry(max_entries=40)
        stored = _distinct("stored", 5)
        registry.register_many(stored, pinned=True)
        registry.register_many(_distinct("rejected", 200))
        assert registry.redact(" ".join(stored)) == " ".join([REDACTED] * 5)

    def test_pinned_budget_evicts_oldest_pinned_only(self) -> None:
        registry = SecretRegistry(max_transient_bytes=1_000_000, max_pinned_bytes=50_000)
        transient = _distinct("transient", 20)
        registry.register_many(transient)
        stored = _distinct("stored", 1_000)
        for value in stored:
            registry.pin(value)
            assert registry.pinned_bytes <= 50_000
        assert registry.redact(stored[-1]) == REDACTED
        assert registry.redact(stored[0]) == stored[0]
        assert registry.redact(" ".join(transient)) == " ".join([REDACTED] * 20)

    def test_pinning_a_transient_value_moves_its_bytes(self) -> None:
        registry = SecretRegistry()
        registry.register(SECRET)
        cost = registry.transient_bytes
        registry.pin(SECRET)
        assert (registry.transient_bytes, registry.pinned_bytes) == (0, cost)
        assert len(registry) == 1
        # A later transient registration of the same value does not demote it.
        registry.register(SECRET)
        assert (registry.transient_bytes, registry.pinned_bytes) == (0, cost)

    def test_one_value_above_the_budget_is_still_masked(self) -> None:
        registry = SecretRegistry(max_transient_bytes=1_000)
        registry.register_many(_distinct("small", 3))
        big = "B" * 5_000
        registry.register(big)
        assert registry.redact(big) == REDACTED
        # Everything else of its class made room, so the overshoot is that one value alone.
        assert len(registry) == 1

    def test_budgets_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="max_transient_bytes"):
            SecretRegistry(max_transient_bytes=0)
        with pytest.raises(ValueError, match="max_pinned_bytes"):
            SecretRegistry(max_pinned_bytes=0)

    def test_register_secret_can_pin(self) -> None:
        value = "process-wide-pinned-secret-for-test"
        register_secret(value, pinned=True)
        assert default_registry().redact(value) == REDACTED
        assert default_registry().pinned_bytes > 0
