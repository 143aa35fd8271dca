"""A throw-away PostgreSQL server on 127.0.0.1 (initdb + pg_ctl in a temporary directory, as
`postgres` when run as root), shared by the test fixtures and the benchmarks."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bindir() -> Path | None:
    """The directory of PostgreSQL's server binaries (initdb, pg_ctl), if installed."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "initdb").exists()
            and (Path(candidate) / "pg_ctl").exists()
        ):
            return Path(candidate)
    return None


@dataclass
class PostgresServer:
    """A throw-away PostgreSQL server on 127.0.0.1; one started by `running_postgres` can be
    stopped and started again on the same port (`stop()`, `start()`), to test an outage."""

    port: int
    _pg_ctl: list[str] | None = None  # [*prefix, pg_ctl, -D, data]
    _options: str = ""
    _log: str = ""

    def stop(self) -> None:
        """Stop the server at once (connections are cut, as when the database host fails)."""
        assert self._pg_ctl is not None, "this server was not started here"
        subprocess.run(
            [*self._pg_ctl, "-m", "immediate", "-w", "stop"], check=True, capture_output=True
        )

    def start(self) -> None:
        """Start it again, same data, same port."""
        assert self._pg_ctl is not None, "this server was not started here"
        subprocess.run(
            [*self._pg_ctl, "-o", self._options, "-l", self._log, "-w", "-t", "60", "start"],
            check=True,
            capture_output=True,
        )

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer | None]:
    """Start PostgreSQL for the duration of the block (None when it is not installed).

    The tests run it without fsync (`durable=False`); the benchmarks keep PostgreSQL's own
    defaults for durability (fsync, synchronous_commit, full_page_writes all on).
    """
    bindir = postgres_bindir()
    if bindir is None:
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="jobrelay-pg-"))
    data = base / "data"
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        shutil.chown(base, user="postgres", group="postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(
            port=port,
            _pg_ctl=[*prefix, str(bindir / "pg_ctl"), "-D", str(data)],
            _options=options,
            _log=str(base / "server.log"),
        )
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
