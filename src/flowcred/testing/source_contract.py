"""The contract every secret source must pass, shipped so plugins can run it too.

In the manner of keyring's ``testing/backend.py``: subclass :class:`SecretSourceContract` in a
``Test...`` class and implement two methods; pytest collects the inherited cases::

    class TestVault(SecretSourceContract):
        def make_source(self, secrets):           # provision them in the real backend
            for name, value in secrets.items():
                vault.put(name, value)
            return VaultKvSource(vault.url, token=vault.token)

        def make_broken_source(self):             # unreachable, or access denied
            return VaultKvSource(vault.url, token="wrong")

``secret_name(label)`` turns a plain label into a name the source understands (Vault wants
``path#key``); override it when the default (the label itself) does not fit. ``add_cleanup``
registers a function run after each case. The cases: a found value comes back exactly; an
absent name is ``None``; difficult values (newlines, quotes, backslashes, emoji, JSON text,
surrounding spaces) survive; a broken source raises
:class:`~flowcred.errors.SecretSourceError` (never ``None``); no value appears in any
``repr``/``str`` of the results; and a value found through a
:class:`~flowcred.sources.chain.SourceChain` is registered for log redaction, while a miss
names where it looked.
"""

from __future__ import annotations

import logging
import secrets as _random
from collections.abc import Callable, Iterator

import pytest

from flowcred.errors import SecretNotFound, SecretSourceError
from flowcred.redaction import Secret, default_registry, install_log_redaction
from flowcred.sources.base import SecretSource
from flowcred.sources.chain import SourceChain

DIFFICULT_VALUES = (
    "first line\nsecond line\nthird",
    "quotes \" and ' and ` and \\ backslash",
    "emoji \U0001f511 and accents \u00e9\u00fc\u00df and CJK \u79d8\u5bc6",
    '{"json": "text", "n": 1}',
    "  surrounded by spaces  ",
    "tab\tand = and ; and # and % and $HOME",
)


def canary(label: str = "canary") -> str:
    """A unique value that can only appear in output if the source leaked it."""
    return f"{label}-{_random.token_hex(12)}"


class _Fixed(SecretSource):
    """A source holding one value: the chain cases' second source."""

    name = "fixed"

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def get(self, secret_name: str) -> Secret | None:
        value = self._values.get(secret_name)
        return Secret(value) if value is not None else None


class SecretSourceContract:
    """Base class of a source's contract tests (not collected itself: no ``Test`` prefix)."""

    def make_source(self, secrets: dict[str, str]) -> SecretSource:
        """A source holding exactly ``secrets`` (name -> value), provisioned in its backend."""
        raise NotImplementedError

    def make_broken_source(self) -> SecretSource:
        """A source that cannot answer (its backend unreachable or access denied), at least
        for ``secret_name("alpha_token")``."""
        raise NotImplementedError

    #: False for a source that has no backend to lose (the process environment): the two
    #: broken-source cases are then skipped, saying why.
    broken_source_possible = True

    def _broken(self) -> SecretSource:
        if not self.broken_source_possible:
            pytest.skip(f"{type(self).__name__}: this source has no backend that can fail")
        source = self.make_broken_source()
        self.add_cleanup(source.close)
        return source

    def secret_name(self, label: str) -> str:
        """The name this source uses for a secret labelled ``label``."""
        return label

    def add_cleanup(self, cleanup: Callable[[], object]) -> None:
        self._cleanups.append(cleanup)

    @pytest.fixture(autouse=True)
    def _contract_cleanups(self) -> Iterator[None]:
        self._cleanups: list[Callable[[], object]] = []
        yield
        for cleanup in reversed(self._cleanups):
            cleanup()

    def _source(self, secrets: dict[str, str]) -> SecretSource:
        source = self.make_source(secrets)
        self.add_cleanup(source.close)
        return source

    # -- the cases -------------------------------------------------------------------------

    def test_found_value_is_returned_exactly(self) -> None:
        name, value = self.secret_name("alpha_token"), canary("alpha")
        found = self._source({name: value}).get(name)
        assert isinstance(found, Secret)
        assert found.reveal() == value

    def test_each_name_gets_its_own_value(self) -> None:
        values = {self.secret_name(f"multi_{i}"): canary(f"multi{i}") for i in range(3)}
        source = self._source(values)
        for name, value in values.items():
            found = source.get(name)
            assert found is not None and found.reveal() == value

    def test_absent_name_is_none(self) -> None:
        source = self._source({self.secret_name("present_one"): canary("present")})
        assert source.get(self.secret_name("absent_one")) is None

    @pytest.mark.parametrize("index", range(len(DIFFICULT_VALUES)))
    def test_difficult_values_survive(self, index: int) -> None:
        name, value = self.secret_name(f"difficult_{index}"), DIFFICULT_VALUES[index]
        found = self._source({name: value}).get(name)
        assert found is not None and found.reveal() == value

    def test_broken_source_raises_never_none(self) -> None:
        source = self._broken()
        with pytest.raises(SecretSourceError) as caught:
            source.get(self.secret_name("alpha_token"))
        assert caught.value.source == source.name

    def test_values_never_in_repr_or_str(self) -> None:
        name, value = self.secret_name("hidden_token"), canary("hidden")
        source = self._source({name: value})
        found = source.get(name)
        chain = SourceChain([source])
        sourced = chain.get(name)
        for shown in (found, sourced, source, chain):
            assert value not in repr(shown)
            assert value not in str(shown)
        assert value not in f"{found} {sourced!r} {sourced.value}"

    def test_chain_registers_values_for_redaction(self, caplog: pytest.LogCaptureFixture) -> None:
        name, value = self.secret_name("logged_token"), canary("logged")
        sourced = SourceChain([self._source({name: value})]).get(name)
        assert sourced.value.reveal() == value
        assert default_registry().contains_secret(f"token={value}")
        install_log_redaction()  # what flowcred.open does at start-up
        with caplog.at_level(logging.INFO, logger="flowcred.contract"):
            logging.getLogger("flowcred.contract").info("leaked %s", value)
        assert value not in caplog.text

    def test_chain_moves_on_after_none(self) -> None:
        name, value = self.secret_name("fallback_token"), canary("fallback")
        empty = self._source({self.secret_name("other_one"): canary("other")})
        found = SourceChain([empty, _Fixed({name: value})]).get(name)
        assert (found.source, found.value.reveal()) == ("fixed", value)

    def test_chain_stops_at_a_broken_source(self) -> None:
        name, value = self.secret_name("alpha_token"), canary("fallback")
        broken = self._broken()
        with pytest.raises(SecretSourceError):
            SourceChain([broken, _Fixed({name: value})]).get(name)

    def test_chain_miss_names_where_it_looked(self) -> None:
        source = self._source({self.secret_name("present_two"): canary("present")})
        absent = self.secret_name("absent_two")
        with pytest.raises(SecretNotFound) as caught:
            SourceChain([source]).get(absent)
        assert source.describe(absent) in str(caught.value)
