"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for ``bench/api_load.py``.

The load generator must cost far less CPU than the server it measures, or it measures itself.
``httpx.AsyncClient`` (httpcore 1.0.9, 50 pooled connections) spends a whole core scanning its
pool and re-trying a missing optional import (``sniffio``) per request: it tops out near 200
req/s on this machine while the server idles. This client keeps one connection per simulated
client, sends one request at a time on it, reads the status line, headers and a
``Content-Length`` body, and nothing else (a few % of a core at the server's full rate).
"""

from __future__ import annotations

import asyncio


class ProtocolError(Exception):
    """The server's answer was not a framed HTTP/1.1 response this client understands."""


class Connection:
    """One keep-alive connection to ``host:port``; reconnects after an error or a close."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body`` to ``path``; returns (status, response body). Raises on any failure
        (the connection is then dropped and the next call opens a new one)."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._post(path, body, headers)
        except BaseException:
            await self.close()
            raise

    async def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

        head = await reader.readuntil(b"\r\n\r\n")
        status_line, _, rest = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line[:80]!r}")
        length = None
        close = False
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                raise ProtocolError("chunked responses are not supported")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ProtocolError("response without Content-Length")
        payload = await reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return int(parts[1]), payload

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
