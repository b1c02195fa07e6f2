"""Helpers for testing flowcred and deployments of it.

They ship inside the package, rather than living in ``tests/``, so that an operator can run the
same checks against their own deployment that flowcred's test suite runs against itself: plant
:func:`~flowcred.testing.canary.make_canary` values as secrets, drive the system, and hand every
output to a :class:`~flowcred.testing.canary.CanaryScanner`.
"""

from flowcred.testing.canary import CanaryHit, CanaryScanner, make_canary

__all__ = ["CanaryHit", "CanaryScanner", "make_canary"]
