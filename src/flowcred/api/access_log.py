"""Access-log lines without query strings: a key pasted as ``?api_key=...`` must not be logged.

uvicorn's access log prints the request line with its query string verbatim, and anything can
be in a query string (a caller pasting its API key or a token there is common enough). This
module keeps the path and replaces a query string with ``?[redacted]``:

* :class:`RedactQueryString` is a logging filter that rewrites the request path of uvicorn's
  access records (``(client, method, path, http_version, status)`` arguments);
* :func:`install` puts it on the ``uvicorn.access`` logger (idempotent), which covers an app
  served by any uvicorn, and :func:`uvicorn_log_config` is uvicorn's default logging
  configuration with the filter on the access handler, for ``flowcred serve``.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "?[redacted]"


def redact_target(target: str) -> str:
    """``/path?query`` → ``/path?[redacted]``; a target without a query is unchanged."""
    path, sep, _query = target.partition("?")
    return path + REDACTED if sep else target


class RedactQueryString(logging.Filter):
    """Rewrite the request target of an access record so no query string is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def install() -> None:
    """Put the filter on uvicorn's access logger once per process."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQueryString) for f in logger.filters):
        logger.addFilter(RedactQueryString())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, with the filter on its access handler (which
    dictConfig would otherwise rebuild without it)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": RedactQueryString}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    return config
