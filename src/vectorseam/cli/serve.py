"""``vectorseam serve``: the HTTP API and search page on uvicorn; also makes and hashes API keys."""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import Annotated

import typer

from vectorseam.cli import app
from vectorseam.cli import state as cli_state
from vectorseam.cli.state import open_client
from vectorseam.errors import VectorseamError
from vectorseam.extras import require


def check_port_free(host: str, port: int) -> None:
    """Bind the address once, as uvicorn will, so a busy port is an ``error:`` line before the server
    starts (uvicorn itself logs it as a JSON line after start-up and exits 3). Port 0 picks a free one."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            reason = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise VectorseamError(f"cannot serve on {host}:{port}: {reason}; stop what holds it or choose "
                                  "another port with --port (or service.port)") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default: service.host)")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="port (default: service.port)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="processes (service.workers)")] = None,
    hash_key: Annotated[bool, typer.Option("--hash-key", help="hash a key read on stdin")] = False,
    new_key: Annotated[bool, typer.Option("--new-key", help="print a new key and its hash")] = False,
) -> None:
    """Serve the HTTP API (/v1/...), the search page (/), /metrics, /healthz, /readyz and docs (/docs)."""
    require("service")  # before importing it: one line naming the pip install
    from vectorseam.service.auth import KeyRing, check_exposure
    from vectorseam.service.auth import hash_key as make_hash
    from vectorseam.service.auth import new_key as make_key

    if new_key:
        key = make_key()
        typer.echo(f"key:  {key}\nhash: {make_hash(key)}")
        typer.echo("Give the key to the caller; put only the hash in [[service.api_keys]].", err=True)
        return
    if hash_key:
        if sys.stdin.isatty():
            typer.echo("paste the key and press Enter:", err=True)
        typer.echo(make_hash(sys.stdin.readline().rstrip("\r\n")))
        return

    import uvicorn

    from vectorseam.service.app import create_app
    from vectorseam.service.logs import configure_logging, get_logger
    from vectorseam.service.state import check_ingest_dirs

    client = open_client()
    cfg = client.settings.service
    cfg = cfg.model_copy(update={k: v for k, v in {"host": host, "port": port, "workers": workers}.items()
                                 if v is not None})
    check_exposure(cfg.host, KeyRing(cfg.api_keys), cfg.allow_unauthenticated)
    check_ingest_dirs(client, cfg)  # before workers start: each would fail, and be restarted, on its own
    check_port_free(cfg.host, cfg.port)
    configure_logging(cfg.log_level)
    get_logger().info("starting", extra={"host": cfg.host, "port": cfg.port, "workers": cfg.workers,
                                         "store": client.settings.store.name, "api_keys": len(cfg.api_keys)})
    if cfg.workers == 1:
        uvicorn.run(create_app(client, cfg), host=cfg.host, port=cfg.port, log_config=None,
                    timeout_graceful_shutdown=10)
        return
    client.close()
    # Workers build their own client from the environment; pass them the command-line overrides.
    os.environ["VECTORSEAM_SERVICE__HOST"] = cfg.host
    os.environ["VECTORSEAM_SERVICE__PORT"] = str(cfg.port)
    if cli_state._config_file is not None:
        os.environ["VECTORSEAM_CONFIG"] = str(cli_state._config_file.resolve())
    # Each worker's math libraries (BLAS, torch, the int8 scan) get their share of the cores, not all of
    # them: N workers with a thread per core each oversubscribe the cores and the busy-waiting threads
    # stretch every request's tail (benchmarks/load_search.py, --workers 2). Set by hand, these win.
    share = str(max(1, (os.cpu_count() or 1) // cfg.workers))
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, share)
    uvicorn.run("vectorseam.service.app:app_from_environment", factory=True, host=cfg.host, port=cfg.port,
                workers=cfg.workers, log_config=None, timeout_graceful_shutdown=10)
