"""The one error body every status uses, from the route handlers and from the middleware alike.

OpenAI's envelope (so OpenAI clients show the message) plus the request id, which is also in the
``X-Request-ID`` header and on every log line of that request: a caller can quote it, and an operator
finds the traceback under it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

from vectorseam.service.logs import request_id_var

MAX_MESSAGE_CHARS = 2000  # messages quote the offending input; a huge input must not come back whole


def error_content(kind: str, message: str, request_id: str | None, param: str | None = None) -> dict[str, Any]:
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + f"... ({len(message) - MAX_MESSAGE_CHARS} more characters)"
    return {"error": {"message": message, "type": kind, "param": param, "code": None}, "request_id": request_id}


def error_bytes(kind: str, message: str, request_id: str) -> bytes:
    return json.dumps(error_content(kind, message, request_id)).encode()


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None,
                   param: str | None = None) -> JSONResponse:
    """An error answered from inside the app, where the middleware has set the request id."""
    return JSONResponse(status_code=status, headers=headers,
                        content=error_content(kind, message, request_id_var.get(), param))
