"""What every route module declares alike: the collection path parameter, the service-state and caller
dependencies, and the error responses the OpenAPI document lists (each one :class:`ErrorResponse`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path

from vectorseam.service.auth import Caller
from vectorseam.service.models import ErrorResponse
from vectorseam.service.state import ServiceState, get_state, require

CollectionName = Annotated[str, Path(min_length=1, max_length=63, description="collection name (or alias)")]
StateDep = Annotated[ServiceState, Depends(get_state)]
ReadCaller = Annotated[Caller, require("read")]
AdminCaller = Annotated[Caller, require("admin")]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route that answers these error statuses."""
    return {code: {"model": ErrorResponse} for code in codes}


ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
