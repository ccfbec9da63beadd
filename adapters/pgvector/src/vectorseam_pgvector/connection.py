"""Connections: one pool per store, retries with backoff for transient failures, clear errors.

Why it looks like this:

* The first connection is made directly (not through the pool) so a wrong password or database is
  reported at once with the server's reason; a pool would only retry in the background and end in a
  bare "timeout".
* Every operation runs as a function of a connection inside :meth:`Connector.run`, which retries the
  whole function on errors that a new attempt can cure (lost connection, server starting or shutting
  down, too many connections, serialization failure, deadlock). All store operations are idempotent
  or run in one transaction, so a retried attempt never half-applies anything.
* The retry loop and its backoff (exponential, with jitter so that many clients recovering together
  do not reconnect in lock-step) are vectorseam's shared :class:`~vectorseam.retrying.RetryPolicy`,
  built from the ``retries``/``retry_backoff`` options; this module only classifies the failures.
* When the attempts are used up the caller gets a :class:`~vectorseam.errors.StoreUnavailableError`
  naming the backend and ``host:port`` (never the password) and nothing of the client's internals.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from vectorseam.errors import ConfigError, StoreUnavailableError, VectorseamError
from vectorseam_pgvector.options import PgVectorOptions

T = TypeVar("T")


class PgVectorError(VectorseamError):
    """PostgreSQL rejected an operation for a reason another attempt would not cure."""


# SQLSTATEs worth another attempt: connection exceptions (class 08), shutdown / starting up,
# too many connections, serialization failure, deadlock.
_TRANSIENT_STATES = {"57P01", "57P02", "57P03", "53300", "40001", "40P01"}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return False  # statement_timeout: another attempt would time out again
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in _TRANSIENT_STATES
    return isinstance(exc, psycopg.InterfaceError)  # e.g. "the connection is closed"


class Endpoint:
    """Where the store connects, for messages: ``host:port/dbname``, without credentials."""

    def __init__(self, dsn: str) -> None:
        try:
            params = pg_conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            # The DSN itself may hold a password, so it is not echoed.
            raise ConfigError(
                "pgvector option 'dsn' is not a valid PostgreSQL connection string; expected "
                "e.g. postgresql://user:password@host:5432/dbname"
            ) from None
        self.password = str(params.get("password") or "")
        self.host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost")
        self.port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or params.get("user") or "")

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def scrub(self, message: str) -> str:
        """The first line of a client message, with the password removed should it appear."""
        line = message.strip().splitlines()[0] if message.strip() else "no reason given"
        return line.replace(self.password, "***") if self.password else line


class Connector:
    def __init__(
        self,
        options: PgVectorOptions,
        configure: Callable[[psycopg.Connection[Any]], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options
        self._dsn = options.dsn.get_secret_value()
        self.endpoint = Endpoint(self._dsn)
        self._retry = options.retry_policy
        self._sleep = sleep
        self._configure = configure
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._kwargs: dict[str, Any] = {"connect_timeout": max(1, math.ceil(options.connect_timeout))}
        if options.statement_timeout > 0:
            self._kwargs["options"] = f"-c statement_timeout={int(options.statement_timeout * 1000)}"

    # -- connecting -------------------------------------------------------------------------------
    def open_pool(self) -> None:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._dsn,
            kwargs=dict(self._kwargs),
            min_size=self.options.pool_min,
            max_size=self.options.pool_max,
            open=False,
            configure=self._configure,
            check=ConnectionPool.check_connection,
            timeout=self.options.pool_timeout,
            name=f"vectorseam-pgvector-{self.endpoint}",
        )
        try:
            pool.open(wait=self.options.pool_min > 0, timeout=max(self.options.pool_timeout, 1.0))
        except PoolTimeout:
            failed = True
        else:
            failed = False
        if failed:  # raised outside the except block: the client's internals are no use to the caller
            pool.close()
            raise StoreUnavailableError(
                f"the pgvector store (PostgreSQL at {self.endpoint}) is unavailable while opening the "
                f"connection pool: {self._diagnose()}"
            )
        self._pool = pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- running ----------------------------------------------------------------------------------
    def run(self, what: str, fn: Callable[[psycopg.Connection[Any]], T], pooled: bool = True) -> T:
        """Run ``fn`` on a connection (committed on success, rolled back on error), retrying.

        ``pooled=False`` uses a direct connection of its own, for set-up before the pool exists.
        Retries follow the options' :class:`~vectorseam.retrying.RetryPolicy`; each attempt turns
        what went wrong into either a :class:`PgVectorError` (permanent, raised at once) or an
        :class:`_Unreachable` carrying a reason safe to show, which is retried while transient.
        """
        pool = self._pool
        if pooled and pool is None:
            raise StoreUnavailableError(f"the pgvector store at {self.endpoint} is closed")
        made = 0

        def attempt() -> T:
            nonlocal made
            made += 1
            try:
                if pooled and pool is not None:
                    with pool.connection() as conn:
                        return fn(conn)
                with self._connect() as direct:
                    return fn(direct)
            except _ConnectFailed as failed:
                raise _Unreachable(self.endpoint.scrub(str(failed.error)), failed.transient) from None
            except PoolTimeout:
                raise _Unreachable(self._diagnose(), transient=True) from None
            except psycopg.errors.QueryCanceled as exc:
                raise PgVectorError(
                    f"the pgvector store at {self.endpoint} cancelled {what}: {self.endpoint.scrub(str(exc))} "
                    f"(statement_timeout is {self.options.statement_timeout:g} s; raise it or narrow the request)"
                ) from exc
            except psycopg.Error as exc:
                if not is_transient(exc):
                    raise PgVectorError(
                        f"the pgvector store at {self.endpoint} failed while {what}: {self.endpoint.scrub(str(exc))}"
                    ) from exc
                raise _Unreachable(self.endpoint.scrub(str(exc)), transient=True) from None

        try:
            return self._retry.call(attempt, is_transient=_Unreachable.retryable, sleep=self._sleep)
        except _Unreachable as unreachable:
            reason = unreachable.reason
        # Raised outside any except block: the client's internals are of no use to the caller, and
        # psycopg's connection errors carry the connection parameters, password included.
        tries = f" after {made} attempts" if made > 1 else ""
        raise StoreUnavailableError(
            f"the pgvector store (PostgreSQL at {self.endpoint}) is unavailable{tries} while {what}: {reason}. "
            "Check that the server is running and reachable and that the 'dsn' option (host, port, user, "
            "password, dbname) is right"
        )

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._dsn, **self._kwargs)
        except psycopg.OperationalError as exc:
            raise _ConnectFailed(exc) from None

    def _diagnose(self) -> str:
        """Why the pool has no connection to give: one direct connection attempt, for its error message."""
        try:
            with psycopg.connect(self._dsn, **self._kwargs):
                return (
                    f"no pooled connection became free within {self.options.pool_timeout:g} s "
                    f"(pool_max={self.options.pool_max})"
                )
        except psycopg.Error as exc:
            return self.endpoint.scrub(str(exc))


class _Unreachable(Exception):
    """One attempt found the server unreachable; ``reason`` is the client's message, scrubbed."""

    def __init__(self, reason: str, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient

    @staticmethod
    def retryable(exc: Exception) -> bool:
        return isinstance(exc, _Unreachable) and exc.transient


class _ConnectFailed(Exception):
    """A connection attempt failed; ``transient`` tells whether another attempt may succeed.

    libpq reports every connection failure without an SQLSTATE, so the server's refusal (FATAL:
    wrong password, unknown database or role) is told apart from a network failure or a server that
    is starting or shutting down by its message.
    """

    _PASSING = ("starting up", "shutting down", "too many clients", "recovery", "connection slots")

    def __init__(self, error: psycopg.OperationalError) -> None:
        super().__init__(str(error))
        self.error = error
        message = str(error)
        self.transient = "FATAL:" not in message or any(p in message for p in self._PASSING)
