"""Item 17: the access log never prints a query string (a key pasted as ``?api_key=``)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flowcred.api.access_log import RedactQueryString, redact_target, uvicorn_log_config

FLOWCRED = Path(sys.executable).with_name("flowcred")
PASTED = "fck_pastedpasted_" + "Q" * 43


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redact_target_keeps_the_path_only() -> None:
    assert redact_target("/api/types") == "/api/types"
    assert redact_target(f"/api/types?api_key={PASTED}") == "/api/types?[redacted]"


def test_uvicorn_access_formatter_prints_no_query_string() -> None:
    from uvicorn.logging import AccessFormatter

    config = uvicorn_log_config()
    assert config["handlers"]["access"]["filters"] == ["redact_query"]
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/health?api_key={PASTED}", "1.1", 200),
        None,
    )
    assert RedactQueryString().filter(record)
    line = AccessFormatter(config["formatters"]["access"]["fmt"], use_colors=False).format(record)
    assert PASTED not in line
    assert "GET /health?[redacted] HTTP/1.1" in line


def test_flowcred_serve_access_log_has_no_query_string(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRED_")}
    env["FLOWCRED_HOME"] = str(tmp_path / "home")
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(FLOWCRED), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):  # bounded: up to about 30 s for start-up
                assert proc.poll() is None, log.read_text()
                try:
                    httpx.get(f"{base}/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert httpx.get(f"{base}/health?api_key={PASTED}").status_code == 200
            assert httpx.get(f"{base}/api/types?api_key={PASTED}").status_code == 401
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = log.read_text()
    assert "GET /health?[redacted]" in text, text
    assert "GET /api/types?[redacted]" in text
    assert PASTED not in text
