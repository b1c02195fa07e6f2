"""Load the credential types from their YAML files and look them up by name or alias.

Each ``*.yaml`` file in ``catalog/data/`` declares one type, and its file name (without
``.yaml``) is the type's name. Adding a connector is adding a file; no code changes::

    catalog = default_catalog()
    catalog.get("bearer").name        # "bearer_token"
    [t.name for t in catalog.by_family("messaging")]
    [t.name for t in catalog.by_category("databases")]

Any problem with a file stops the load with a :class:`~flowcred.errors.ConfigurationError`
that names the file, so a broken catalog fails start-up instead of a request.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from flowcred.catalog.categories import ConnectorCategory
from flowcred.catalog.schema import CredentialFamily, CredentialType
from flowcred.errors import ConfigurationError, UnknownCredentialType

# The C loader is several times faster; fall back to the pure-Python one when libyaml is absent.
_YamlLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:
    _YamlLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built.
    _YamlLoader = yaml.SafeLoader

_SUFFIX = ".yaml"


def _normalize_name(name: str) -> str:
    """Fold a type name for lookup: case, surrounding space and dashes do not matter."""
    return name.strip().lower().replace("-", "_")


class Catalog:
    """The set of known credential types, addressable by canonical name or alias.

    Iteration yields the types sorted by name. Lookups ignore case and treat ``-`` as ``_``.
    A catalog is immutable once built; build it with :func:`load_catalog`.
    """

    __slots__ = ("_by_name", "_lookup", "_sources")

    def __init__(self, types: Iterable[tuple[CredentialType, str]]) -> None:
        """Build a catalog from ``(type, source)`` pairs; ``source`` names the file it came from.

        Raises :class:`~flowcred.errors.ConfigurationError` naming both sources when two types
        share a name or an alias.
        """
        by_name: dict[str, CredentialType] = {}
        lookup: dict[str, CredentialType] = {}
        sources: dict[str, str] = {}
        for ctype, source in types:
            for key in (ctype.name, *ctype.aliases):
                folded = _normalize_name(key)
                if folded in lookup:
                    other = sources[lookup[folded].name]
                    raise ConfigurationError(
                        f"credential type name or alias {key!r} is declared by both {other} "
                        f"and {source}"
                    )
                lookup[folded] = ctype
            by_name[ctype.name] = ctype
            sources[ctype.name] = source
        self._by_name = dict(sorted(by_name.items()))
        self._lookup = lookup
        self._sources = sources

    def get(self, name: str) -> CredentialType:
        """Return the type called ``name`` or having it as an alias.

        Raises :class:`~flowcred.errors.UnknownCredentialType` when there is none.
        """
        ctype = self._lookup.get(_normalize_name(name)) if isinstance(name, str) else None
        if ctype is None:
            raise UnknownCredentialType(name)
        return ctype

    def names(self) -> list[str]:
        """The canonical type names, sorted."""
        return list(self._by_name)

    def by_family(self, family: CredentialFamily) -> list[CredentialType]:
        """The types of one family (``custom``, ``oauth2``, ...), sorted by name."""
        return [ctype for ctype in self._by_name.values() if ctype.family == family]

    def by_category(self, category: ConnectorCategory) -> list[CredentialType]:
        """The types of one category (``databases``, ``message_brokers``, ...), sorted by name."""
        return [ctype for ctype in self._by_name.values() if ctype.category == category]

    def source_of(self, name: str) -> str:
        """The file a type was loaded from. Raises ``UnknownCredentialType`` like :meth:`get`."""
        return self._sources[self.get(name).name]

    def __iter__(self) -> Iterator[CredentialType]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize_name(name) in self._lookup

    def __repr__(self) -> str:
        return f"Catalog({len(self._by_name)} types)"


def _format_validation_error(exc: ValidationError) -> str:
    """Summarise a pydantic error by location and message, without the offending input."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        location = ".".join(str(item) for item in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _load_file(path: Traversable, source: str) -> CredentialType:
    """Read and validate one type file. Raises ``ConfigurationError`` naming ``source``."""
    expected_name = path.name.removesuffix(_SUFFIX)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read credential type file {source}: {exc}") from exc
    try:
        data: Any = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"credential type file {source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"credential type file {source} must hold a mapping")
    data.setdefault("name", expected_name)
    if data["name"] != expected_name:
        raise ConfigurationError(
            f"credential type file {source} declares name {data['name']!r}; "
            f"the file must be called {data['name']}{_SUFFIX}"
        )
    try:
        return CredentialType.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(
            f"credential type file {source} is invalid: {_format_validation_error(exc)}"
        ) from None


def load_catalog(directory: Path | None = None) -> Catalog:
    """Load every ``*.yaml`` type file from ``directory``, or from the package data by default.

    Files are read in name order. Raises :class:`~flowcred.errors.ConfigurationError` naming the
    file when one cannot be read, is not YAML, does not validate, or declares a name other than
    its file name; naming both files when two types share a name or alias; and when the
    directory is missing or holds no type files.
    """
    root: Traversable
    if directory is None:
        root = resources.files("flowcred.catalog").joinpath("data")
    else:
        root = directory
    if not root.is_dir():
        raise ConfigurationError(f"credential type directory {root} does not exist")
    paths = sorted(
        (entry for entry in root.iterdir() if entry.name.endswith(_SUFFIX) and entry.is_file()),
        key=lambda entry: entry.name,
    )
    if not paths:
        raise ConfigurationError(f"credential type directory {root} holds no {_SUFFIX} files")
    return Catalog((_load_file(path, str(path)), str(path)) for path in paths)


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog shipped with flowcred, loaded once per process and shared.

    Raises :class:`~flowcred.errors.ConfigurationError` as :func:`load_catalog` does.
    """
    return load_catalog()
