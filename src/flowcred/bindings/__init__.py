"""Bindings and deployment-time validation of flow definitions.

``config`` reads a Credential Provider ``bindings:`` map; ``validate`` checks flows of the three
seed dialects before deployment.
"""
