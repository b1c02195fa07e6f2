"""Item 13: the failed-key limiter throttles failures, never a valid key."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import BAD_KEY


def test_25_bad_keys_then_a_good_key_from_the_same_address_is_served(api_env: Any) -> None:
    with api_env.new_client(client=("127.0.0.9", 40001)) as client:
        statuses = [
            client.get("/api/types", headers={"X-API-Key": BAD_KEY}).status_code for _ in range(25)
        ]
        assert statuses[:20] == [401] * 20
        assert set(statuses[20:]) == {429}
        assert client.get("/api/types", headers=api_env.admin()).status_code == 200
        # ... and the failures stay throttled.
        assert client.get("/api/types", headers={"X-API-Key": BAD_KEY}).status_code == 429
        assert client.get("/api/types").status_code == 429
