"""Shared fixtures: real DuckDB files in a temporary directory, Alembic pointed at them."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

import egregora.database.migration.config  # noqa: F401  (duckdb:// is duckdb-sqlalchemy's)
from alembic import command
from tests import pg_server as pg_server_module

ROOT = Path(__file__).resolve().parents[1]
ALEMBIC_INI = ROOT / "alembic.ini"


def head_of(ini: Path = ALEMBIC_INI) -> str:
    """The head revision of the scripts ``ini`` points at (one head, always)."""
    head = ScriptDirectory.from_config(Config(str(ini))).get_current_head()
    assert head is not None
    return head


#: The project's head revision: tests that mean "the newest schema" use this,
#: so that adding a revision to alembic/versions never breaks them.
HEAD = head_of()
#: The last V4 roadmap revision: tests that describe V4's rules on its data
#: (rows that V4 allows and a later revision may not) upgrade to this, not head.
V4 = "v4g"


def copy_project(tmp_path: Path, versions: bool = True, up_to: str | None = None) -> Path:
    """A copy of alembic/ (with or without its revisions) and an alembic.ini for it.

    ``up_to``: only the revisions from base to that one (a test's own revision
    then sits on it without forking the real history, however it grows).
    """
    folder = tmp_path / "alembic"
    ignore = ["__pycache__"] if versions else ["__pycache__", "versions"]
    shutil.copytree(ROOT / "alembic", folder, ignore=shutil.ignore_patterns(*ignore))
    (folder / "versions").mkdir(exist_ok=True)
    if up_to is not None:
        scripts = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
        kept = {Path(s.path).name for s in scripts.walk_revisions("base", up_to)}
        for path in (folder / "versions").glob("*.py"):
            if path.name not in kept:
                path.unlink()
    ini = tmp_path / "alembic.ini"
    text = ALEMBIC_INI.read_text().replace("%(here)s/alembic", str(folder))
    ini.write_text(text.replace("%(here)s/", f"{ROOT}/"))  # pyproject.toml for the hooks
    return ini


def alembic_cfg(url: str, **x: str) -> Config:
    """An Alembic config as the CLI builds it, with ``-x url=...`` and other -x args."""
    cfg = Config(str(ALEMBIC_INI))
    cfg.cmd_opts = argparse.Namespace(x=[f"url={url}", *(f"{k}={v}" for k, v in x.items())])
    return cfg


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, ini: Path = ALEMBIC_INI
) -> subprocess.CompletedProcess[str]:
    """``alembic -c <ini> <args>`` as a user runs it, in ``cwd``."""
    full_env = {k: v for k, v in os.environ.items() if k != "EGREGORA_DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def table_digest(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Row count and an order-independent hash of every row of ``table``."""
    quoted = '"' + table.replace('"', '""') + '"'
    count, digest = con.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(t)), 0)::VARCHAR FROM {quoted} AS t"
    ).fetchone()  # type: ignore[misc]
    return count, digest


def database_digest(path: Path) -> dict[str, object]:
    """Every table's schema text and content hash, and the version row."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_name, sql FROM duckdb_tables() WHERE NOT internal ORDER BY 1"
        ).fetchall()
        views = con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1"
        ).fetchall()
        return {
            "tables": {name: (sql, table_digest(con, name)) for name, sql in tables},
            "views": dict(views),
        }
    finally:
        con.close()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "egregora.duckdb"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"duckdb:///{db_path}"


@pytest.fixture
def upgrade(db_url: str):  # type: ignore[no-untyped-def]
    def _upgrade(target: str = "head", **x: str) -> None:
        command.upgrade(alembic_cfg(db_url, **x), target)

    return _upgrade


@pytest.fixture
def downgrade(db_url: str):  # type: ignore[no-untyped-def]
    def _downgrade(target: str, **x: str) -> None:
        command.downgrade(alembic_cfg(db_url, **x), target)

    return _downgrade


@pytest.fixture
def alembic_config() -> dict[str, str]:
    return {"file": str(ALEMBIC_INI), "script_location": str(ROOT / "alembic")}


@pytest.fixture(scope="session")
def oldest_python() -> Path:
    """The Python of the oldest supported DuckDB's environment (``.venv-duckdb-1.4``).

    ``make setup-duckdb-1.4`` builds it from the project's own files
    (constraints/duckdb-1.4.txt) when missing, and keeps it between runs.
    """
    if not duckdb.__version__.startswith("2."):
        return Path(sys.executable)  # this suite runs on the older DuckDB already
    built = subprocess.run(
        ["make", "-s", "setup-duckdb-1.4"], cwd=ROOT, capture_output=True, text=True
    )
    assert built.returncode == 0, f"make setup-duckdb-1.4 failed:\n{built.stderr[-2000:]}"
    return ROOT / ".venv-duckdb-1.4" / "bin" / "python"


# pytest-alembic: its built-in tests run on a real DuckDB file, and on PostgreSQL.
@pytest.fixture(params=["duckdb", "postgresql"])
def alembic_engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'pytest_alembic.duckdb'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


# PostgreSQL: one real server per session (tests/pg_server.py), a database per test.
@pytest.fixture(scope="session")
def pg_server() -> pg_server_module.PostgresServer:
    try:
        return pg_server_module.shared()  # stopped when the process ends
    except pg_server_module.NoServer as exc:
        if os.environ.get(pg_server_module.REQUIRED_ENV):
            pytest.fail(f"PostgreSQL tests need a server and none could start: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")


@pytest.fixture
def pg_url(pg_server: pg_server_module.PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    name = "t_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    return pg_server.create_database(name)
