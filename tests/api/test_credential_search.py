"""``GET /api/credentials?search=``: part of the name or handle, as plain text."""

from __future__ import annotations

from typing import Any


def test_search_matches_name_or_handle_case_insensitively_without_wildcards(
    api_env: Any,
) -> None:
    api_env.seed("acme", name="Stripe live")
    api_env.seed("acme", name="stripe_test")
    api_env.seed("acme", name="GitHub 100% bot")
    headers = api_env.headers("viewer", "acme")

    def names(term: str) -> list[str]:
        answer = api_env.client.get("/api/credentials", params={"search": term}, headers=headers)
        assert answer.status_code == 200, answer.text
        return sorted(item["name"] for item in answer.json()["items"])

    assert names("STRIPE") == ["Stripe live", "stripe_test"]
    assert names("stripe-live") == ["Stripe live"]  # the handle
    assert names("e_t") == ["stripe_test"]  # "_" is a character, not a wildcard
    assert names("100%") == ["GitHub 100% bot"]
    assert names("%") == ["GitHub 100% bot"]
    assert names("nothing") == []
