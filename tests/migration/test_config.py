"""``duckdb://`` is duckdb-sqlalchemy's, even when another package claims it first.

duckdb-engine registers the same ``duckdb`` entry point as duckdb-sqlalchemy,
and SQLAlchemy takes whichever entry point it meets first. The competitor here
is a real installed distribution (a dist-info with that entry point, first on
the path), so that the first match is not ours unless egregora says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sqlalchemy as sa

from egregora.database.migration.config import create_engine

from ..conftest import ROOT

CHECK = """
import sqlalchemy as sa
import duckdb_sqlalchemy

def dialect():
    engine = sa.create_engine("duckdb:///{db}")
    return type(engine.dialect)

# precondition: without egregora, entry-point order picks the competitor
assert dialect().__module__ == "competing_duckdb_dialect", dialect()

import {module}  # what env.py, or the application, imports
from egregora.database.migration.config import create_engine
from egregora.database.migration.reflection import EgregoraDuckDBDialect

# duckdb-sqlalchemy's, with names and generated columns given back (reflection.py)
assert issubclass(EgregoraDuckDBDialect, duckdb_sqlalchemy.Dialect)
assert dialect() is EgregoraDuckDBDialect, dialect()
assert type(create_engine("duckdb:///{db}").dialect) is EgregoraDuckDBDialect
assert type(sa.create_engine("duckdb+duckdb_sqlalchemy:///{db}").dialect) is EgregoraDuckDBDialect
print("ok")
"""


def _competitor(folder: Path) -> None:
    """An installed distribution whose ``duckdb`` dialect entry point is met first."""
    (folder / "competing_duckdb_dialect.py").write_text(
        "from duckdb_sqlalchemy import Dialect as _Base\n\n\nclass Dialect(_Base):\n    pass\n"
    )
    info = folder / "competing_duckdb_dialect-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: competing-duckdb-dialect\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[sqlalchemy.dialects]\nduckdb = competing_duckdb_dialect:Dialect\n"
    )


def _run(tmp_path: Path, module: str) -> subprocess.CompletedProcess[str]:
    _competitor(tmp_path)
    code = CHECK.format(db=tmp_path / "x.duckdb", module=module)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_migration_environment_chooses_duckdb_sqlalchemy(tmp_path: Path) -> None:
    result = _run(tmp_path, "egregora.database.migration.environment")  # alembic/env.py's import
    assert result.stdout.strip() == "ok", result.stderr


def test_the_application_engine_chooses_duckdb_sqlalchemy(tmp_path: Path) -> None:
    result = _run(tmp_path, "egregora.database.migration.config")
    assert result.stdout.strip() == "ok", result.stderr


def test_an_existing_file_opens_beside_the_applications_own_engine(tmp_path: Path) -> None:
    """DuckDB refuses a second connection to a file this process holds with other
    settings: an existing file is opened with none, so in-process migrations work
    while the application's engine is open (found by tests/test_concurrency.py)."""
    url = f"duckdb:///{tmp_path / 'app.duckdb'}"
    app = sa.create_engine(url)
    with app.connect() as held:
        held.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        held.commit()
        ours = create_engine(url)
        with ours.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
        ours.dispose()
    app.dispose()
