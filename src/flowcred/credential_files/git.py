"""Git HTTPS credentials for ``git_sync``: ``{"token", "username"?}``.

``username`` defaults to ``x-access-token`` (what GitHub and most forges accept with a token).
The token travels in an ``Authorization: Basic`` header, never in a URL, where it would end up
in ``.git/config``, process listings and error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flowcred.credential_files.http import BasicAuth
from flowcred.credential_files.json_fields import JsonObject
from flowcred.credential_files.material import file_material
from flowcred.redaction import Secret
from flowcred.runtime.material import CredentialMaterial

DEFAULT_GIT_USERNAME = "x-access-token"


@dataclass(frozen=True, slots=True)
class GitCredentials:
    token: Secret
    username: str = DEFAULT_GIT_USERNAME
    path: str = field(default="", compare=False)

    def authorization(self) -> Secret:
        """``Basic base64(username:token)``, for ``git -c http.extraHeader=...``."""
        return Secret(BasicAuth(self.username, self.token).header_value())

    def to_material(self, handle: str | None = None) -> CredentialMaterial:
        return file_material(
            type_name="git",
            path=self.path,
            handle=handle,
            headers={"Authorization": self.authorization()},
            fields={"username": self.username, "token": self.token},
        )


def parse_git(obj: JsonObject) -> GitCredentials:
    return GitCredentials(
        token=obj.secret("token"),
        username=obj.optional_string("username") or DEFAULT_GIT_USERNAME,
        path=obj.path,
    )
