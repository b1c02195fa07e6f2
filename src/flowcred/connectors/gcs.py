"""Cloud Storage: the service-account key -> token -> get the bucket (or list one bucket).

Uses the JSON API (``GET /storage/v1/b/{bucket}``, or ``GET /storage/v1/b?project=...`` when no
bucket is configured) rather than google-cloud-storage, for the same reason as BigQuery: one
call does not need the client's dependency tree. 403 means the account may not see the bucket
(``storage.buckets.get``); 404 that the bucket does not exist.
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.google_token import access_token, api_failure, key_file
from flowcred.connectors.provider_api import base_url, path_part, send, short

DEFAULT_BASE_URL = "https://storage.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"


@register("gcs")
class GcsTest(ConnectionTest):
    live_tested = False  # no Cloud Storage on the CI machines (REST calls)

    def check(self, target: TestTarget, timeout: float) -> str:
        keys = key_file(target)
        bucket = str(target.config.get("bucket") or "")
        project = str(target.config.get("project_id") or keys.get("project_id") or "")
        if not bucket and not project:
            raise ConnectionTestError("give a bucket or a project_id to test against")
        token = access_token(keys, (SCOPE,), timeout)
        root = f"{base_url(target, DEFAULT_BASE_URL)}/storage/v1/b"
        if bucket:
            url, params = f"{root}/{path_part(bucket)}", {"fields": "name"}
            done = f"bucket '{short(bucket, 60)}' is visible"
        else:
            url, params = root, {"project": project, "maxResults": "1", "fields": "items/name"}
            done = f"buckets of project '{short(project, 60)}' are listable"
        response = send(
            "GET",
            url,
            timeout=timeout,
            what="Cloud Storage",
            headers={"Authorization": f"Bearer {token}"},
            params=params,
        )
        if response.status_code != 200:
            raise api_failure("Cloud Storage", response)
        return done
