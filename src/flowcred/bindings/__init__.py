"""Bindings and deployment-time validation of flow definitions.

``config`` reads a Credential Provider ``bindings:`` map; :func:`validate` checks flows of the
three seed dialects before deployment and returns a :class:`Report` of :class:`Finding` s.

The validator lives in ``flow_validation`` (not ``validate``: a submodule of that name would
replace the ``validate`` function on this package as soon as it is imported). It is imported on
first use, so ``flowcred.bindings.config`` stays importable from the runtime without pulling in
the broker's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flowcred.bindings.findings import Finding, Report

if TYPE_CHECKING:
    from flowcred.bindings.flow_validation import validate


def __getattr__(name: str) -> Any:
    if name == "validate":
        from flowcred.bindings.flow_validation import validate

        return validate
    raise AttributeError(name)


__all__ = ["Finding", "Report", "validate"]
