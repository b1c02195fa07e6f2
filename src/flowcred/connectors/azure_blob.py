"""Azure Blob Storage: the official azure-storage-blob client, ``get_account_information``
(or the container's properties when a container is configured and only a SAS is given).

The account URL is ``https://<account_name>.blob.core.windows.net`` unless ``blob_endpoint``
overrides it (Azurite, sovereign clouds, a private endpoint). A refused key is HTTP 403
``AuthenticationFailed`` (``ClientAuthenticationError``); azure-core's retries are off so an
unreachable endpoint fails within the timeout.
"""

from __future__ import annotations

from typing import Any

from flowcred.connectors.base import ConnectionTest, ConnectionTestError, TestTarget, register
from flowcred.connectors.failures import network_reason
from flowcred.connectors.optional_drivers import load_driver
from flowcred.connectors.provider_api import base_url


@register("azure_blob")
class AzureBlobTest(ConnectionTest):
    live_tested = False  # no Azure storage (nor Azurite) on the CI machines

    def check(self, target: TestTarget, timeout: float) -> str:
        blob = load_driver("azure.storage.blob", "azure-storage-blob")
        core_errors = load_driver("azure.core.exceptions", "azure-core")
        account = str(target.config.get("account_name") or "")
        url = base_url(target, f"https://{account}.blob.core.windows.net", field="blob_endpoint")
        key = target.reveal("account_key")
        credential: Any = (
            {"account_name": account, "account_key": key} if key else target.reveal("sas_token")
        )
        try:
            client = blob.BlobServiceClient(
                account_url=url,
                credential=credential,
                retry_total=0,
                connection_timeout=timeout,
                read_timeout=timeout,
            )
        except ValueError:
            raise ConnectionTestError("the Azure Storage account URL is not valid") from None
        container = target.config.get("container")
        try:
            if container and not key:
                client.get_container_client(str(container)).get_container_properties()
                done = f"container '{container}' is readable"
            else:
                info = client.get_account_information()
                done = f"account accepted the credential ({info.get('account_kind', '?')})"
        except core_errors.ClientAuthenticationError as exc:
            if type(exc).__name__ == "AzureSigningError":
                # Raised before sending: the SDK could not base64-decode the key to sign with.
                raise ConnectionTestError("account_key is not a valid base64 storage key") from None
            raise ConnectionTestError(
                "Azure Storage refused the credential (HTTP 403 AuthenticationFailed)"
            ) from None
        except core_errors.ResourceNotFoundError:
            raise ConnectionTestError("Azure Storage has no such account or container") from None
        except (core_errors.ServiceRequestError, core_errors.ServiceResponseError) as exc:
            reason = network_reason(exc) or "connection failed"
            raise ConnectionTestError(f"cannot reach Azure Storage: {reason}") from None
        except core_errors.HttpResponseError as exc:
            raise ConnectionTestError(
                f"Azure Storage answered HTTP {getattr(exc, 'status_code', '?')}"
            ) from None
        finally:
            client.close()
        return done
