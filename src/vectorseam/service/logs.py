"""Structured JSON logs, one object per line, each carrying the request id of the request it belongs to.

Nothing secret is logged: API keys are identified by their configured name, request bodies and
query strings are never logged, and headers are not logged at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
LOGGER_NAME = "vectorseam.service"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line. Written with orjson, the second's text kept from the last line: every
    request writes an access line, and after a search's scan has pushed the interpreter's working set out
    of the CPU caches, the standard library's encoder and ``strftime`` were most of the 0.1-0.15 ms the
    line cost (measured with a 100k-row scan before each line)."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out = self.head(record.created, record.msecs, record.levelname, record.name, record.getMessage(),
                        record.process)
        extras = ((key, value) for key, value in vars(record).items() if key not in _STANDARD)
        add_fields(out, getattr(record, "request_id", None), extras)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return dumps(out)

    def head(self, created: float, msecs: float, level: str, logger: str, message: str,
             pid: int | None) -> dict[str, Any]:
        """The fields every line starts with."""
        return {
            "ts": self._timestamp(created, msecs),
            "level": level.lower(),
            "logger": logger,
            "message": message,
            "pid": pid,  # with service.workers > 1: which worker process wrote the line
        }


def add_fields(out: dict[str, Any], request_id: str | None, extras: Iterable[tuple[str, Any]]) -> None:
    """The request id (the record's, else the current request's) and the extra fields after the head."""
    rid = request_id or request_id_var.get()
    if rid:
        out["request_id"] = rid
    for key, value in extras:
        if key not in out and key != "request_id":
            out[key] = value


def dumps(out: dict[str, Any]) -> str:
    try:
        return orjson.dumps(out, default=str).decode()
    except TypeError:  # what orjson cannot write (an integer past 64 bits, a key that is not text)
        return json.dumps(out, default=str, ensure_ascii=False)


class AccessLog:
    """Each request's access line (message ``request``, the fields as extras) on ``logger``.

    When the logger's lines can only go to the JSON handler :func:`configure_logging` set up (its one
    handler, no filters but the request-id stamp, not propagated, records made by ``LogRecord``), the line
    is written to that handler's stream here, the same bytes its formatter makes of the record; otherwise
    (a handler added, as tests and embedding apps do; a record factory, as Ray installs) it goes through
    ``logger.info`` as any other line. Why:
    a record through the logging machinery cost 0.1-0.15 ms a request once a search's scan had pushed
    the interpreter out of the CPU caches (measured with a 100k-row scan before each line), and a served
    search's next request waited for it: the client and this line shared the core the scan left free."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, fields: dict[str, Any]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._direct_handler()
        if handler is None:
            logger.info("request", extra=fields)
            return
        formatter = handler.formatter
        assert isinstance(formatter, JsonFormatter)
        created = time.time()
        out = formatter.head(created, (created - int(created)) * 1000, "INFO", logger.name, "request",
                             os.getpid() if logging.logProcesses else None)
        add_fields(out, fields.get("request_id"), fields.items())
        line = dumps(out) + handler.terminator
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(line)
                handler.flush()
            except Exception:  # as StreamHandler.emit: a broken stream is reported, never raised into the request
                handler.handleError(logger.makeRecord(logger.name, logging.INFO, "(access)", 0, "request", (), None,
                                                      extra=fields))

    def _direct_handler(self) -> logging.StreamHandler[Any] | None:
        logger = self.logger
        if logger.propagate or len(logger.handlers) != 1 or any(f is not _STAMP for f in logger.filters):
            return None
        if logging.getLogRecordFactory() is not logging.LogRecord:  # a factory may add fields (Ray adds one)
            return None
        handler = logger.handlers[0]
        if (type(handler) is not logging.StreamHandler or type(handler.formatter) is not JsonFormatter
                or handler.filters or handler.level > logging.INFO):
            return None
        return handler


def configure_logging(level: str = "info") -> None:
    """Route our logs and uvicorn's through one JSON handler on stderr (idempotent).

    A server process's records also skip what no line here shows (the calling function and line, the
    thread's and the process's names), as the logging HOWTO's "Optimization" section describes: finding
    the caller walks the stack, on every request's access line."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
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
