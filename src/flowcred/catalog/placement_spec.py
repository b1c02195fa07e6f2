"""How a credential type declares its request placement (which fields a rule reads).

Split from :mod:`flowcred.catalog.schema`, which re-exports :class:`RequestPlacement`; applying a
placement to a request is :mod:`flowcred.catalog.request_placement`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from flowcred.catalog.field_formats import check_http_token

PlacementStyle = Literal["none", "api_key", "bearer", "basic", "fields"]


class RequestPlacement(BaseModel):
    """How a credential type applies to an outgoing HTTP request.

    ``style`` picks the rule; the ``*_field`` attributes name the type's fields the rule reads:

    * ``none`` and ``fields``: nothing is placed (``fields`` types hand their typed fields to a
      driver instead); no field names may be given.
    * ``api_key``: ``secret_field`` (the key), and optionally ``name_field``, ``location_field``
      and ``prefix_field``. The value sent is ``prefix + key`` with the prefix used verbatim.
    * ``bearer``: ``secret_field`` (the token), optionally ``header_field`` and ``prefix_field``.
    * ``basic``: ``username_field`` and ``password_field`` (each may be a config or secret field).

    When a field is not named, or the credential leaves it empty and the field has no default,
    the constants below apply: ``key_name``, ``location``, ``header_name`` and ``prefix`` (which,
    when unset, means ``""`` for ``api_key`` and ``"Bearer "`` for ``bearer``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    style: PlacementStyle = "none"
    secret_field: str | None = None
    name_field: str | None = None
    location_field: str | None = None
    prefix_field: str | None = None
    header_field: str | None = None
    username_field: str | None = None
    password_field: str | None = None
    key_name: str = "X-API-Key"
    location: Literal["header", "query", "cookie"] = "header"
    header_name: str = "Authorization"
    prefix: str | None = None

    @model_validator(mode="after")
    def _check_style(self) -> RequestPlacement:
        named = self.field_names()
        if self.style in ("none", "fields") and named:
            raise ValueError(f"request style {self.style} takes no field names")
        if self.style in ("api_key", "bearer") and self.secret_field is None:
            raise ValueError(f"request style {self.style} needs secret_field")
        if self.style == "basic" and (self.username_field is None or self.password_field is None):
            raise ValueError("request style basic needs username_field and password_field")
        allowed = _STYLE_FIELDS[self.style]
        extra = [attr for attr, value in self._named_attrs() if value and attr not in allowed]
        if extra:
            raise ValueError(f"request style {self.style} does not use " + ", ".join(extra))
        for attr, constant in (("key_name", self.key_name), ("header_name", self.header_name)):
            if check_http_token(constant) is not None:
                raise ValueError(f"request.{attr} must be an HTTP token (RFC 9110)")
        return self

    def _named_attrs(self) -> list[tuple[str, str | None]]:
        return [
            ("secret_field", self.secret_field),
            ("name_field", self.name_field),
            ("location_field", self.location_field),
            ("prefix_field", self.prefix_field),
            ("header_field", self.header_field),
            ("username_field", self.username_field),
            ("password_field", self.password_field),
        ]

    def field_names(self) -> list[str]:
        """The names of every field this placement reads, in declaration order of the attributes."""
        return [value for _, value in self._named_attrs() if value is not None]

    @property
    def default_prefix(self) -> str:
        """The prefix used when no prefix field supplies one."""
        if self.prefix is not None:
            return self.prefix
        return "Bearer " if self.style == "bearer" else ""


_STYLE_FIELDS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "fields": frozenset(),
    "api_key": frozenset({"secret_field", "name_field", "location_field", "prefix_field"}),
    "bearer": frozenset({"secret_field", "header_field", "prefix_field"}),
    "basic": frozenset({"username_field", "password_field"}),
}
LOCATIONS = frozenset({"header", "query", "cookie"})
