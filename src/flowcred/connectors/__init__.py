"""Live connection tests, one module per family, found by the catalog's ``test.kind``.

See :mod:`flowcred.connectors.base` for the contract.
"""
