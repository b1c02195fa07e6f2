"""``flowcred credentials test REF`` / ``--all`` and the live-test marker of ``flowcred types``."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator

import pytest
from tests.cli._helpers import add_api_key, cli
from tests.connectors.loopback_http import Loopback, loopback_server

from flowcred.catalog import default_catalog
from flowcred.connectors import base as connector_base
from flowcred.connectors.base import ConnectionTest, TestTarget
from flowcred.connectors.runner import kind_of


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def _three(server: Loopback) -> None:
    url = f"{server.url}/header?name=X-API-Key&want=all-good-key-1"
    add_api_key("good", "--set", f"test_url={url}", secret="all-good-key-1")
    add_api_key("bad", "--set", f"test_url={url}", secret="all-bad-key-22")
    add_api_key("untestable", secret="no-url-key-333")  # no test_url: skipped


def test_all_prints_a_summary_table_and_fails_when_one_fails(server: Loopback) -> None:
    _three(server)
    code, out, _ = cli("credentials", "test", "--all")
    assert code == 1
    assert "1 passed, 1 failed, 1 skipped" in out
    for handle, label in (("good", "ok"), ("bad", "failed"), ("untestable", "skipped")):
        [row] = [line for line in out.splitlines() if f" {handle} " in line]
        assert f" {label} " in row, row
    assert "no test_url" in out and "rejected with HTTP 401" in out
    assert "all-bad-key-22" not in out and "all-good-key-1" not in out
    listed = {c["handle"]: c["status"] for c in json.loads(cli("credentials", "list", "--json")[1])}
    assert listed == {"good": "active", "bad": "error", "untestable": "active"}


def test_all_json_is_one_entry_per_credential(server: Loopback) -> None:
    _three(server)
    code, out, _ = cli("credentials", "test", "--all", "--json")
    assert code == 1
    entries = {e["handle"]: e for e in json.loads(out)}
    assert entries["good"]["ok"] is True and entries["good"]["status"] == 200
    assert entries["bad"]["ok"] is False and entries["bad"]["result"] == "failed"
    assert entries["untestable"] == {
        **entries["untestable"],
        "ok": None,
        "result": "skipped",
        "message": "no test_url",
    }
    assert all(e["latencyMs"] >= 0 for e in (entries["good"], entries["bad"]))


def test_all_passes_when_every_test_passes(server: Loopback) -> None:
    url = f"{server.url}/header?name=X-API-Key&want=all-good-key-1"
    add_api_key("good", "--set", f"test_url={url}", secret="all-good-key-1")
    code, out, _ = cli("credentials", "test", "--all", "--tenant", "default")
    assert code == 0 and "1 passed, 0 failed, 0 skipped" in out


def test_a_reference_and_all_are_exclusive() -> None:
    code, _, err = cli("credentials", "test", "good", "--all")
    assert code == 2 and "--all" in err


class _NotLive(ConnectionTest):
    live_tested = False

    def check(self, target: TestTarget, timeout: float) -> str:
        return "unused"


def test_types_marks_how_each_type_is_tested(monkeypatch: pytest.MonkeyPatch) -> None:
    kind = kind_of(default_catalog().get("redis"))
    assert kind is not None
    importlib.import_module("flowcred.connectors.families")  # register the real ones first
    monkeypatch.setitem(connector_base._REGISTRY, kind, _NotLive)
    code, out, _ = cli("types", "--json")
    assert code == 0
    marks = {t["name"]: t["liveTest"] for t in json.loads(out)}
    assert marks["api_key"] == "live-tested"
    assert marks["redis"] == "not live-tested"  # its test kind is served by the stand-in
    assert marks["github"] == "no test (oauth2)"
    assert marks["postgres"] == "live-tested"
    assert marks["redshift"] == "live-tested family (postgres)"  # postgres code, not Redshift
    assert marks["stripe"] == "live-tested family (http)"
    code, out, _ = cli("types")
    assert "not live-tested" in out and "live-tested" in out
    code, out, _ = cli("types", "redis")
    assert "connection test: not live-tested" in out
