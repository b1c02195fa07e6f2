"""The SSRF guard of connection tests: link-local and cloud-metadata destinations are refused
after DNS resolution and after every redirect; allow / deny lists change that; a redirect to
another host never gets the credential."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from tests.connectors.loopback_http import Loopback, loopback_server

from flowcred.catalog import default_catalog
from flowcred.connectors.base import TestTarget
from flowcred.connectors.destinations import DestinationPolicy, HostResolver
from flowcred.connectors.runner import run_test
from flowcred.errors import DestinationRefused
from flowcred.redaction import Secret
from flowcred.settings import load_settings


def resolving_to(*addresses: str) -> HostResolver:
    def resolve(host: str, port: int | None) -> Sequence[str]:
        return list(addresses)

    return resolve


@pytest.fixture
def server() -> Iterator[Loopback]:
    with loopback_server() as state:
        yield state


def api_key_target(url: str, key: str = "ssrf-canary-7781") -> TestTarget:
    config, secret = default_catalog().get("api_key").validate({"test_url": url}, {"api_key": key})
    return TestTarget("api_key", config, {k: Secret(v) for k, v in secret.items()})


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("169.254.169.254", "link-local"),
        ("169.254.1.9", "link-local"),
        ("fe80::1", "link-local"),
        ("[fe80::1]", "link-local"),
        ("fd00:ec2::254", "cloud-metadata"),
        ("::ffff:169.254.169.254", "link-local"),
        ("metadata.google.internal", "cloud metadata"),
        ("METADATA.google.internal.", "cloud metadata"),
    ],
)
def test_default_refusals(host: str, reason: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        DestinationPolicy().check_host(host, 80)
    assert reason in str(refused.value)


def test_a_name_resolving_to_link_local_is_refused_after_resolution() -> None:
    policy = DestinationPolicy(resolver=resolving_to("169.254.169.254"))
    with pytest.raises(DestinationRefused, match=r"resolves to 169\.254\.169\.254"):
        policy.check_host("innocent.example.com", 443)


def test_every_resolved_address_is_checked() -> None:
    policy = DestinationPolicy(resolver=resolving_to("93.184.216.34", "fe80::5"))
    with pytest.raises(DestinationRefused, match="fe80::5"):
        policy.check_host("dual.example.com", 443)


def test_ordinary_and_loopback_destinations_pass() -> None:
    policy = DestinationPolicy(resolver=resolving_to("93.184.216.34"))
    assert [str(a) for a in policy.check_host("api.example.com", 443)] == ["93.184.216.34"]
    assert [str(a) for a in DestinationPolicy().check_host("127.0.0.1", 5432)] == ["127.0.0.1"]


def test_deny_list_refuses_cidrs_and_domains() -> None:
    policy = DestinationPolicy.from_lists(
        deny=["10.0.0.0/8", ".corp.example", "db.shop.example"],
        resolver=resolving_to("10.1.2.3"),
    )
    with pytest.raises(DestinationRefused, match="deny list"):
        policy.check_host("anything.example", 80)
    with pytest.raises(DestinationRefused, match="deny list"):
        policy.check_host("vault.corp.example", 80)
    with pytest.raises(DestinationRefused, match="deny list"):
        policy.check_host("DB.shop.example", 80)


def test_allow_list_admits_a_default_refusal_and_deny_wins_over_allow() -> None:
    link_local = resolving_to("169.254.10.7")
    allowed = DestinationPolicy.from_lists(allow=["169.254.10.0/24"], resolver=link_local)
    assert [str(a) for a in allowed.check_host("device.lan", 80)] == ["169.254.10.7"]
    by_name = DestinationPolicy.from_lists(allow=["device.lan"], resolver=link_local)
    assert by_name.check_host("device.lan", 80)
    # Only the allowed part of link-local space is admitted.
    with pytest.raises(DestinationRefused):
        allowed.check_host("169.254.169.254", 80)
    both = DestinationPolicy.from_lists(
        deny=["169.254.10.7/32"],
        allow=["169.254.10.0/24"],
        resolver=link_local,
    )
    with pytest.raises(DestinationRefused, match="deny list"):
        both.check_host("device.lan", 80)


def test_lists_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRED_TEST_DENY", "127.0.0.0/8, .internal.example")
    monkeypatch.setenv("FLOWCRED_TEST_ALLOW", "169.254.5.0/24")
    policy = DestinationPolicy.from_settings(load_settings())
    with pytest.raises(DestinationRefused, match="deny list"):
        policy.check_host("127.0.0.1", 80)
    assert policy.check_host("169.254.5.5", 80)


def test_a_bad_list_entry_is_named() -> None:
    with pytest.raises(ValueError, match="http://x/y"):
        DestinationPolicy.from_lists(deny=["http://x/y"])


def test_a_test_to_the_metadata_address_is_refused_before_connecting() -> None:
    result = run_test(api_key_target("http://169.254.169.254/latest/meta-data/"), timeout=5)
    assert not result.ok
    assert result.message.startswith("destination '169.254.169.254' refused")
    assert result.latency_ms < 1000


def test_the_deny_list_applies_to_a_real_test(server: Loopback) -> None:
    policy = DestinationPolicy.from_lists(deny=["127.0.0.0/8"])
    result = run_test(api_key_target(f"{server.url}/header?want=x"), timeout=5, policy=policy)
    assert not result.ok and "deny list" in result.message
    assert server.seen == []


def test_a_redirect_to_the_metadata_address_is_refused(server: Loopback) -> None:
    url = f"{server.url}/redirect?to=http://169.254.169.254/latest/meta-data/"
    result = run_test(api_key_target(url), timeout=5)
    assert not result.ok
    assert "169.254.169.254" in result.message and "refused" in result.message
    assert len(server.seen) == 1


def test_a_redirect_to_another_host_is_not_followed_with_the_credential(server: Loopback) -> None:
    with loopback_server() as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost") + "/header?want=x"
        result = run_test(api_key_target(f"{server.url}/redirect?to={elsewhere}"), timeout=5)
        assert not result.ok
        assert "redirected (HTTP 302) to another host (localhost)" in result.message
        assert other.seen == []


def test_a_same_origin_redirect_is_followed_and_checked(server: Loopback) -> None:
    url = f"{server.url}/redirect?to=/header%3Fname%3DX-API-Key%26want%3Dssrf-canary-7781"
    result = run_test(api_key_target(url), timeout=5)
    assert result.ok, result.message
    assert [s["path"] for s in server.seen] == ["/redirect", "/header"]
    assert server.seen[-1]["headers"]["X-API-Key"] == "ssrf-canary-7781"


def _target(type_name: str, config: dict[str, object], secret: dict[str, str]) -> TestTarget:
    checked_config, checked_secret = default_catalog().get(type_name).validate(config, secret)
    return TestTarget(type_name, checked_config, {k: Secret(v) for k, v in checked_secret.items()})


def test_every_element_of_a_list_valued_destination_is_checked() -> None:
    target = _target(
        "elasticsearch",
        {"urls": ["http://127.0.0.1:9", "http://169.254.169.254:9200"], "username": "elastic"},
        {"password": "ssrf-canary-list"},
    )
    result = run_test(target, timeout=5)
    assert not result.ok
    assert result.message.startswith("destination '169.254.169.254' refused")
    assert "ssrf-canary-list" not in result.message


def test_a_destination_inside_a_secret_connection_string_is_checked() -> None:
    target = _target(
        "mongodb",
        {},
        {"connection_string": "mongodb://app:ssrf-canary-uri@169.254.169.254:27017/db"},
    )
    result = run_test(target, timeout=5)
    assert not result.ok
    assert result.message.startswith("destination '169.254.169.254' refused")
    assert "ssrf-canary-uri" not in result.message
