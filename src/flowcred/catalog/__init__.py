"""The catalog of credential types: what each type's fields are and how it applies to a request.

Types are data, one YAML file per type in ``catalog/data/``; see :mod:`flowcred.catalog.schema`
for the file format and :mod:`flowcred.catalog.registry` for loading and lookup.
"""

from flowcred.catalog.categories import CATEGORIES, ConnectorCategory
from flowcred.catalog.registry import Catalog, default_catalog, load_catalog
from flowcred.catalog.request_placement import Placement, place
from flowcred.catalog.schema import (
    SECRET_VALUE_FIELD,
    CredentialFamily,
    CredentialType,
    FieldFormat,
    FieldKind,
    FieldSpec,
    PlacementStyle,
    RequestPlacement,
)

__all__ = [
    "CATEGORIES",
    "SECRET_VALUE_FIELD",
    "Catalog",
    "ConnectorCategory",
    "CredentialFamily",
    "CredentialType",
    "FieldFormat",
    "FieldKind",
    "FieldSpec",
    "Placement",
    "PlacementStyle",
    "RequestPlacement",
    "default_catalog",
    "load_catalog",
    "place",
]
