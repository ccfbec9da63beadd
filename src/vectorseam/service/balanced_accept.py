"""Connections shared evenly between ``serve --workers N``: a worker holding more connections accepts later.

Why: uvicorn's workers share one listening socket, and the first worker to wake accepts every
connection waiting (uvloop accepts until the queue is empty). A client that opens 8 keep-alive
connections at once, as a connection pool does, mostly got 7 or 8 of them in one worker: that worker
scanned the vectors for all of them while the other sat idle, and two workers served no more than one
(benchmarks/load_search.py, 8 in flight at 100k: 283 requests/s with 7 + 1 connections, 383 with
4 + 4, same machine and minutes apart).

How: in each worker, connections are accepted one at a time by a loop that waits until the listening
socket is readable, then ``STEP_S`` for every connection the worker already holds (at most
``MAX_STEPS``), then accepts if the connection is still there. Every worker wakes; the one holding the
fewest connections gets there first, so the connections end up shared as a least-connections load
balancer would share them, with no state shared between the workers. A new connection waits at most
``STEP_S * MAX_STEPS`` (1 ms), and only when every worker already holds that many. The accepted socket
is handed to uvicorn's own protocol (``loop.connect_accepted_socket``): requests are served exactly as
before. One worker (``serve`` without ``--workers``) keeps uvicorn's listener.

uvicorn has no hook for how a worker accepts, so :func:`install` replaces ``uvicorn.Server.startup`` in
the worker process (the multi-worker app factory calls it); a server given no sockets (one worker,
tests) runs uvicorn's original.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Sized
from typing import Any

STEP_S = 0.00025
MAX_STEPS = 4
_log = logging.getLogger("vectorseam.service")
_RETRY_AFTER_S = 0.05


class BalancedListener:
    """Accepts connections on ``sock`` for this worker; ``close``/``wait_closed`` as an asyncio server."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Callable[[], Any],
                 connections: Sized, ssl: Any = None, backlog: int = 2048) -> None:
        self.loop, self.sock, self.protocol, self.connections, self.ssl = loop, sock, protocol, connections, ssl
        sock.setblocking(False)
        sock.listen(backlog)  # uvicorn binds the shared socket; the listener (asyncio's or this) listens
        self._task = loop.create_task(self._accept_forever())

    def delay(self) -> float:
        """How long this worker lets the others go first: ``STEP_S`` per connection it holds."""
        return STEP_S * min(len(self.connections), MAX_STEPS)

    async def _readable(self) -> None:
        ready = self.loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            self.loop.remove_reader(fd)  # level-triggered: read once, then wait again after the accept
            if not ready.done():
                ready.set_result(None)

        self.loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            self.loop.remove_reader(fd)

    async def _accept_forever(self) -> None:
        while True:
            await self._readable()
            if (pause := self.delay()) > 0:
                await asyncio.sleep(pause)
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue  # another worker took it, or the client gave up before it was accepted
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):
                    _log.error("the listening socket was closed (%s): this worker accepts no more connections", exc)
                    return
                # out of descriptors or buffers: the connections held must close first; never stop accepting
                _log.warning("cannot accept a connection (%s); retrying in %.0f ms", exc, _RETRY_AFTER_S * 1000)
                await asyncio.sleep(_RETRY_AFTER_S)
                continue
            conn.setblocking(False)
            try:
                await self.loop.connect_accepted_socket(self.protocol, conn, ssl=self.ssl)
            except OSError as exc:  # the connection died between accept and set-up: only it is lost
                _log.info("a connection closed while it was set up: %s", exc)
                conn.close()

    def close(self) -> None:
        self._task.cancel()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


_installed = False


def install() -> None:
    """Make this process's uvicorn servers accept through :class:`BalancedListener` when given the
    shared sockets of a multi-worker run (idempotent)."""
    global _installed
    if _installed:
        return
    import uvicorn.server

    original = uvicorn.server.Server.startup

    async def startup(self: Any, sockets: list[socket.socket] | None = None) -> None:
        if not sockets:
            await original(self, sockets)
            return
        await original(self, [])  # the lifespan and the server's state, with no listener of uvicorn's
        config, loop = self.config, asyncio.get_running_loop()

        def protocol() -> Any:
            return config.http_protocol_class(config=config, server_state=self.server_state,
                                              app_state=self.lifespan.state, _loop=loop)

        self.servers = [BalancedListener(loop, sock, protocol, self.server_state.connections, config.ssl,
                                         config.backlog) for sock in sockets]

    uvicorn.server.Server.startup = startup  # type: ignore[method-assign]
    _installed = True
