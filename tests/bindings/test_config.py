"""Loading a Credential Provider ``bindings:`` map, and the spec's selection precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcred.bindings.config import load_bindings
from flowcred.errors import BindingNotFound, ConfigurationError

SPEC_EXAMPLE = """\
# the Credential Provider spec's example, plus a literal and a source list
bindings:
  google_sales:
    kind: google.oauth2
    client_id_secret: gcp_client_id
    client_secret_secret: gcp_client_secret
    refresh_token_secret: gcp_refresh_token

  orders_api:
    kind: api_key
    api_key_secret: orders/api#key
    key_name: X-Api-Key
    prefix: "Token "
    sources: [vault, env]
default: orders_api
"""


def test_spec_example_loads_with_refs_literals_sources_and_lines() -> None:
    config = load_bindings(SPEC_EXAMPLE)
    google = config.get("google_sales")
    assert google.kind == "google.oauth2"
    assert dict(google.secret_refs) == {
        "client_id": "gcp_client_id",
        "client_secret": "gcp_client_secret",
        "refresh_token": "gcp_refresh_token",
    }
    assert dict(google.literals) == {}
    assert google.sources is None
    assert google.line == 3
    orders = config.get("orders_api")
    assert dict(orders.secret_refs) == {"api_key": "orders/api#key"}
    assert dict(orders.literals) == {"key_name": "X-Api-Key", "prefix": "Token "}
    assert orders.sources == ("vault", "env")
    assert orders.line == 9
    assert config.default == "orders_api" and config.default_line == 15


def test_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "bindings.yaml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    for given in (path, str(path)):
        config = load_bindings(given)
        assert config.path == str(path) and set(config.bindings) == {"google_sales", "orders_api"}


def test_selection_precedence_node_then_flow_then_environment() -> None:
    config = load_bindings(SPEC_EXAMPLE)
    assert config.select("google_sales", "orders_api", "orders_api").handle == "google_sales"
    assert config.select(None, "google_sales", "orders_api").handle == "google_sales"
    assert config.select(None, None, "google_sales").handle == "google_sales"
    assert config.select().handle == "orders_api"  # the file's environment default


def test_an_unbound_alias_is_not_replaced_by_a_default() -> None:
    config = load_bindings(SPEC_EXAMPLE)
    with pytest.raises(BindingNotFound) as caught:
        config.select("typo_sales", "google_sales", "orders_api")
    assert caught.value.ref == "typo_sales"


def test_no_name_at_all_is_binding_not_found() -> None:
    with pytest.raises(BindingNotFound):
        load_bindings("bindings: {}").select()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bindings:\n  a:\n    client_id_secret: x\n", r"line 2: binding 'a' needs a 'kind'"),
        ("bindings:\n  a:\n    kind: api_key\n    api_key_secret: 5\n", "must name a secret"),
        ("bindings:\n  a:\n    kind: api_key\n    sources: env\n", "list of names"),
        (
            "bindings:\n  a:\n    kind: api_key\n    api_key: x\n    api_key_secret: y\n",
            "both as a literal and as a secret reference",
        ),
        ("bindings: [a, b]\n", "expected a 'bindings:' mapping"),
    ],
)
def test_malformed_bindings_name_the_problem_and_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        load_bindings(text)


def test_invalid_yaml_gives_the_position_never_the_content() -> None:
    planted = "xoxb-planted-0123456789"
    with pytest.raises(ConfigurationError) as caught:
        load_bindings(f"bindings:\n  a:\n    kind: [unclosed {planted}\n")
    assert "line" in str(caught.value) and planted not in str(caught.value)


def test_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read bindings file"):
        load_bindings(tmp_path / "absent.yaml")
