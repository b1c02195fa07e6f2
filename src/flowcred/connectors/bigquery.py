"""BigQuery: the service-account key -> token -> list at most one dataset of the project.

Uses the REST API (``GET /bigquery/v2/projects/{project}/datasets?maxResults=1``) rather than
google-cloud-bigquery, which pulls in grpc and protobuf (tens of MB) for one call. The call
needs ``bigquery.datasets.list`` on the project, which any BigQuery role grants, so a 403 means
the service account has no BigQuery role there (or the API is disabled).
"""

from __future__ import annotations

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.google_token import access_token, api_failure, key_file
from flowcred.connectors.provider_api import base_url, json_object, path_part, send, short

DEFAULT_BASE_URL = "https://bigquery.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/bigquery.readonly"


@register("bigquery")
class BigQueryTest(ConnectionTest):
    live_tested = False  # no BigQuery on the CI machines (REST calls, token endpoint included)

    def check(self, target: TestTarget, timeout: float) -> str:
        keys = key_file(target)
        project = str(target.config.get("project_id") or keys.get("project_id") or "")
        if not project:
            raise ConnectionTestError("project_id is missing")
        token = access_token(keys, (SCOPE,), timeout)
        root = base_url(target, DEFAULT_BASE_URL)
        url = f"{root}/bigquery/v2/projects/{path_part(project)}/datasets"
        response = send(
            "GET",
            url,
            timeout=timeout,
            what="BigQuery",
            headers={"Authorization": f"Bearer {token}"},
            params={"maxResults": "1"},
        )
        if response.status_code != 200:
            raise api_failure("BigQuery", response)
        json_object(response)
        return f"BigQuery lists datasets of project '{short(project, 60)}'"
