"""What the routes share: the client (the facade every route calls), limits, keys, metrics and jobs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from vectorseam.client import VectorSeam
from vectorseam.config import ServiceSettings
from vectorseam.errors import ValidationError
from vectorseam.service.auth import ANONYMOUS, Caller, KeyRing, Scope
from vectorseam.service.instrumented import store_metrics
from vectorseam.service.jobs import JobRunner
from vectorseam.service.metrics import Metrics


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class ServiceState:
    client: VectorSeam
    settings: ServiceSettings
    metrics: Metrics = field(default_factory=Metrics)
    ready: threading.Event = field(default_factory=threading.Event)
    warmup_error: str | None = None

    def __post_init__(self) -> None:
        self.keys = KeyRing(self.settings.api_keys)
        # Time every store call the client makes and count the store's failures (the facade's hook).
        self.stop_observing = self.client.observe_store(store_metrics(self.metrics))
        self.jobs = JobRunner(self.metrics)

    def resolve(self, name: str) -> str:
        """The collection a name means: an alias (``vectorseam alias set``) resolves to its target."""
        return self.client.resolve(name)

    # --- limits from the configuration, narrower than the schema's hard ceilings ---------------

    def check_k(self, k: int) -> None:
        if k > self.settings.max_k:
            raise ValidationError(f"k={k} is over this server's limit of {self.settings.max_k} "
                                  "(service.max_k)")

    def check_text(self, text: str, field_name: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise ValidationError(
                f"{field_name}: {len(text)} characters, over this server's limit of "
                f"{self.settings.max_text_chars} (service.max_text_chars); split the text"
            )

    def check_batch(self, n: int, what: str) -> None:
        if n > self.settings.max_batch:
            raise ValidationError(
                f"{n} {what} in one request; this server takes at most {self.settings.max_batch} "
                "(service.max_batch): send several requests"
            )


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


def require(scope: Scope) -> Any:
    """A dependency that admits callers whose key has ``scope`` (admin keys have every scope)."""

    def dependency(
        request: Request,
        state: Annotated[ServiceState, Depends(get_state)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> Caller:
        if state.keys.open:
            caller = ANONYMOUS
        else:
            presented = bearer.credentials if bearer is not None else header
            if not presented:
                raise AuthError(401, "missing API key: send 'Authorization: Bearer <key>' "
                                     "or 'X-API-Key: <key>'")
            found = state.keys.identify(presented)
            if found is None:
                raise AuthError(401, "invalid API key")
            caller = found
        request.scope.setdefault("state", {})["caller"] = caller.name
        if not caller.allows(scope):
            raise AuthError(403, f"the key {caller.name!r} has the {caller.scope!r} scope; "
                                 f"this route needs {scope!r}")
        return caller

    return Depends(dependency)
