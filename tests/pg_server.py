"""A real PostgreSQL server for the tests: initdb + pg_ctl in a temporary directory.

The suite starts one server per session on a free localhost port (:func:`shared`,
for the ``pg_server`` fixture and Alembic's dialect suite alike), gives each
test a database of its own, and stops the server when the process ends. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

#: Set by .ci/run: a server that can't start fails the run instead of skipping.
REQUIRED_ENV = "EGREGORA_REQUIRE_POSTGRES"
USER = "egregora"


class NoServer(Exception):  # noqa: N818
    """No PostgreSQL server can be started here; the message says why, in one line."""


def _binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if versions:
        return Path(versions[0]).parent
    raise NoServer("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bin: Path
    run_as: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                quoted = connection.dialect.identifier_preparer.quote(name)
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
                connection.exec_driver_sql(f"CREATE DATABASE {quoted}")
        finally:
            engine.dispose()
        return self.database_url(name)

    def stop(self) -> None:
        subprocess.run(
            [
                *self.run_as,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


_shared: list[PostgresServer | NoServer] = []


def shared() -> PostgresServer:
    """The process's one server, started on first use and stopped at exit; or NoServer."""
    if not _shared:
        try:
            server = start()
        except NoServer as exc:
            _shared.append(exc)
        else:
            atexit.register(server.stop)
            _shared.append(server)
    found = _shared[0]
    if isinstance(found, NoServer):
        raise found
    return found


def start() -> PostgresServer:
    """Start a throw-away server, or raise NoServer saying why."""
    binaries = _binaries()
    directory = Path(tempfile.mkdtemp(prefix="egregora-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            raise NoServer("running as root, and runuser is missing to run PostgreSQL as postgres")
        run_as = [runuser, "-u", "postgres", "--"]
        shutil.chown(directory, "postgres")
    data = directory / "data"
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            message = (done.stderr or done.stdout).strip().splitlines()
            raise NoServer(f"{Path(args[0]).name} failed: {message[-1] if message else '?'}")

    run(
        str(binaries / "initdb"),
        "-D",
        str(data),
        "-U",
        USER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-sync",
        "--locale=C",
    )
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40"
    )
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(directory / "server.log"),
        "-w",
        "-t",
        "60",
        "start",
    )
    return PostgresServer(directory, port, binaries, run_as)


def run_script(url: str, script: str) -> None:
    """Run an offline ``--sql`` script as a user does: ``psql -v ON_ERROR_STOP=1 -f``.

    psql sends one statement at a time, so statements after the script's
    COMMIT (CREATE INDEX CONCURRENTLY) run outside any transaction. Raises
    AssertionError with psql's message when a statement fails.
    """
    parsed = sa.engine.make_url(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    try:
        done = subprocess.run(
            [
                str(_binaries() / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(parsed.host),
                "-p",
                str(parsed.port),
                "-U",
                str(parsed.username),
                "-d",
                str(parsed.database),
                "-f",
                handle.name,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.unlink(handle.name)
    assert done.returncode == 0, done.stderr
