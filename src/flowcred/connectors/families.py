"""Importing this module registers every family's connection test (one import per module)."""

# ruff: noqa: F401

from flowcred.connectors import http
