"""A throw-away PostgreSQL + pgvector server for tests, on a private 127.0.0.1 port.

Any test suite can use it (``with PostgresServer() as pg: pg.dsn()``): it runs ``initdb`` in a
temporary directory, starts the server with ``pg_ctl`` and creates the ``vector`` extension; on exit
it stops the server and deletes the directory.

PostgreSQL refuses to run as root, so when the tests run as root (CI, containers) the server runs as
the ``postgres`` system user that Debian's package creates (or ``nobody`` when there is none). The
binaries come from ``$PG_BINDIR`` or the newest ``/usr/lib/postgresql/*/bin`` holding a server with
the pgvector extension; when none is found the error says to run ``scripts/install-pgvector.sh``
rather than letting tests skip silently.

Durability settings (fsync, synchronous_commit, full_page_writes) are off: the data lives for one
test session, and they make server start and bulk writes several times faster.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

INSTALL_HINT = "run `scripts/install-pgvector.sh` as root (it installs PostgreSQL and builds pgvector)"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries or the pgvector extension are not installed here."""


@dataclass(frozen=True, slots=True)
class PostgresInstall:
    bindir: Path
    sharedir: Path

    @property
    def has_vector(self) -> bool:
        return (self.sharedir / "extension" / "vector.control").is_file()


def _pg_config_dir(pg_config: Path, flag: str) -> Path:
    out = subprocess.run([str(pg_config), flag], capture_output=True, text=True, check=True, timeout=30)
    return Path(out.stdout.strip())


def _version_key(path: Path) -> tuple[int, str]:
    name = path.parent.parent.name  # /usr/lib/postgresql/<version>/bin/pg_config
    return (int(name), name) if name.isdigit() else (0, name)


def find_postgres(search: tuple[str, ...] = ("/usr/lib/postgresql",), use_path: bool = True) -> PostgresInstall:
    """The PostgreSQL installation to run: ``$PG_BINDIR``, else the newest under ``search`` with pgvector,
    else ``pg_config`` on the PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]) / "pg_config")
    for root in search:
        candidates.extend(sorted(Path(root).glob("*/bin/pg_config"), key=_version_key, reverse=True))
    on_path = shutil.which("pg_config") if use_path else None
    if on_path:
        candidates.append(Path(on_path))
    seen: list[str] = []
    for pg_config in candidates:
        if not pg_config.is_file():
            continue
        try:
            install = PostgresInstall(_pg_config_dir(pg_config, "--bindir"), _pg_config_dir(pg_config, "--sharedir"))
        except (OSError, subprocess.SubprocessError):
            continue
        if not all((install.bindir / b).is_file() for b in ("postgres", "initdb", "pg_ctl")):
            seen.append(f"{install.bindir} (no server binaries)")
            continue
        if not install.has_vector:
            seen.append(f"{install.bindir} (no pgvector extension in {install.sharedir}/extension)")
            continue
        return install
    found = "; found: " + ", ".join(seen) if seen else "; no PostgreSQL installation was found"
    raise PostgresUnavailable(f"a PostgreSQL server with the pgvector extension is needed{found}. {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable(
        "running as root, and neither a 'postgres' nor a 'nobody' user exists to run "
        f"PostgreSQL as (it refuses root); {INSTALL_HINT}"
    )


class PostgresServer:
    """One private PostgreSQL server; use as a context manager or call start()/stop()."""

    superuser = "vectorseam"

    def __init__(self, install: PostgresInstall | None = None, start_timeout: float = 60.0) -> None:
        self.install = install or find_postgres()
        self.start_timeout = start_timeout
        self.password = secrets.token_urlsafe(16)
        self.host = "127.0.0.1"
        self.port = 0
        self._root: Path | None = None
        self._user = _server_user()
        self._running = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> PostgresServer:
        self._root = Path(tempfile.mkdtemp(prefix="vectorseam-pg-"))
        data = self._root / "data"
        pwfile = self._root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._user is not None:
            for p in (self._root, pwfile):
                os.chown(p, self._user.pw_uid, self._user.pw_gid)
        try:
            self._run(
                [
                    str(self.install.bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.superuser,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            )
            pwfile.unlink()
            last_error = ""
            for _attempt in range(3):  # another process may grab the free port before we bind it
                self.port = free_port()
                result = self._pg_ctl_start()
                if result.returncode == 0:
                    break
                last_error = result.stdout + result.stderr + self.log_tail()
            else:
                raise PostgresUnavailable(f"PostgreSQL did not start: {last_error.strip()}")
            self._create_extension()
        except BaseException:
            self.stop()
            raise
        return self

    def pause(self) -> None:
        """Shut the server down but keep its data, to test how clients behave while it is away."""
        if self._running and self._root is not None:
            self._run([str(self.install.bindir / "pg_ctl"), "-D", str(self._root / "data"), "-m", "fast", "-w", "stop"])
            self._running = False

    def resume(self) -> None:
        """Start a paused server again, on the same port with the same data."""
        if self._running or self._root is None:
            return
        result = self._pg_ctl_start()
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"PostgreSQL did not restart: {(result.stdout + result.stderr).strip()} {self.log_tail()}"
            )

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        assert self._root is not None
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self._root}",
                # Test data is thrown away: no durability. JIT compilation would cost more than these
                # small queries take to run.
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c jit=off",
                "-c max_connections=60",
            ]
        )
        result = self._run(
            [
                str(self.install.bindir / "pg_ctl"),
                "-D",
                str(self._root / "data"),
                "-l",
                str(self._root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "start",
            ],
            check=False,
        )
        self._running = result.returncode == 0
        return result

    def stop(self) -> None:
        if self._root is None:
            return
        if self._running:
            self._run(
                [str(self.install.bindir / "pg_ctl"), "-D", str(self._root / "data"), "-m", "immediate", "-w", "stop"],
                check=False,
            )
            self._running = False
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- use --------------------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URI with the superuser's password, for the given database."""
        return (
            f"postgresql://{self.superuser}:{quote(self.password, safe='')}@{self.host}:{self.port}/"
            f"{quote(dbname, safe='')}"
        )

    def create_database(self, name: str) -> str:
        """Create a fresh database (with the vector extension) and return its DSN."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._create_extension(name)
        return self.dsn(name)

    def log_tail(self, lines: int = 30) -> str:
        if self._root is None:
            return ""
        log = self._root / "server.log"
        if not log.is_file():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    # -- internals --------------------------------------------------------------------------------
    def _create_extension(self, dbname: str = "postgres") -> None:
        import psycopg

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5) as conn:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        user = self._user
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        result = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            cwd=self._root,
            timeout=self.start_timeout + 30,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise PostgresUnavailable(f"{Path(cmd[0]).name} failed (exit {result.returncode}): {output}")
        return result


@contextmanager
def session_server() -> Iterator[PostgresServer]:
    """A started server for a pytest session (or module), stopped afterwards.

    When PostgreSQL or pgvector is missing the test *fails* with the reason and the fix, never skips:
    CI must have them (``scripts/install-pgvector.sh``), and a silent skip would hide a lost backend.
    Tests sharing the server keep apart by schema.
    """
    import pytest

    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"cannot start the PostgreSQL test server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
