"""Runtime test fixtures: the scripted loopback token endpoint (see _token_endpoint.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _token_endpoint import ScriptedEndpoint, endpoint

__all__ = ["ScriptedEndpoint", "endpoint"]
