"""Structured JSON logs, one object per line, each carrying the request id of the request it belongs to.

Nothing secret is logged: API keys are identified by their configured name, request bodies and
query strings are never logged, and headers are not logged at all.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
LOGGER_NAME = "vectorseam.service"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # with service.workers > 1: which worker process wrote the line
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and key != "request_id":
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    """Route our logs and uvicorn's through one JSON handler on stderr (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # our middleware writes the access log, with the request id and route; uvicorn's would repeat it
    logging.getLogger("uvicorn.access").disabled = True


class _StampRequestId(logging.Filter):
    """Copies the request id onto each record when it is made, in the request's own context: a handler
    that formats later or on another thread (a queue, a test's capture) would find the variable unset."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


_STAMP = _StampRequestId()


def get_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if _STAMP not in logger.filters:
        logger.addFilter(_STAMP)
    return logger
