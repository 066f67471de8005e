"""Files the application's DuckDB reads: a real DuckDB 1.4.3, in its own environment, opens
the files a migration creates and the field files it upgrades (duckdb_versions.STORAGE_VERSION).

The reader is ``.venv-duckdb-1.4`` (the ``oldest_python`` fixture); building it the
first time takes about a minute, hence ``slow``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from alembic import command
from egregora.database import schemas
from egregora.database.migration.duckdb_versions import STORAGE_VERSION, version

from . import messy
from .conftest import HEAD, alembic_cfg

pytestmark = pytest.mark.slow

READER = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tags = con.execute(
    "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
).fetchone()[0]
tables = [r[0] for r in con.execute(
    "SELECT table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1").fetchall()]
print(json.dumps({
    "duckdb": duckdb.__version__,
    "storage": tags.get("storage_version"),
    "rows": {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables},
    "revision": con.execute("SELECT version_num FROM alembic_version").fetchone()[0],
}))
"""


def read_with_oldest(python: Path, path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(python), "-c", READER, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-1500:]
    answer: dict[str, Any] = json.loads(result.stdout)
    assert answer["duckdb"].startswith("1.4.")
    return answer


def rows_here(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1"
        ).fetchall()
        counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone() for (t,) in tables}
        return {t: int(c[0]) for t, c in counts.items() if c is not None}
    finally:
        con.close()


def test_a_file_the_migration_creates_is_read_by_duckdb_1_4(
    tmp_path: Path, oldest_python: Path
) -> None:
    path = tmp_path / "new.duckdb"
    command.upgrade(alembic_cfg(f"duckdb:///{path}"), "head")
    seen = read_with_oldest(oldest_python, path)
    assert seen["storage"] == STORAGE_VERSION + "+"
    assert seen["revision"] == HEAD
    assert set(schemas.metadata.tables) <= set(seen["rows"])


def test_an_upgraded_field_file_keeps_its_format_and_is_read_by_duckdb_1_4(
    tmp_path: Path, oldest_python: Path
) -> None:
    """A V3 file as the application's DuckDB 1.4 wrote it (format v1.0.0), upgraded to
    head with quarantine: 1.4 reads every row this DuckDB sees."""
    path = tmp_path / "field.duckdb"
    messy.build_v3(path, n=200)
    command.upgrade(alembic_cfg(f"duckdb:///{path}", on_violation="quarantine"), "head")
    seen = read_with_oldest(oldest_python, path)
    assert seen["storage"] == messy.FIELD_STORAGE_VERSION + "+"
    assert seen["rows"] == rows_here(path)
    assert seen["rows"]["posts_quarantine"] > 0  # the messy file had rows to move aside


@pytest.mark.skipif(version() < (2, 0, 0), reason="only DuckDB 2 writes a format 1.4 can't read")
def test_a_url_may_ask_for_the_newest_format_which_1_4_can_t_read(
    tmp_path: Path, oldest_python: Path
) -> None:
    path = tmp_path / "newest.duckdb"
    command.upgrade(alembic_cfg(f"duckdb:///{path}?storage_compatibility_version=latest"), "head")
    result = subprocess.run(
        [str(oldest_python), "-c", READER, str(path)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "created with an newer version of DuckDB" in result.stderr


@pytest.mark.skipif(version() < (2, 0, 0), reason="only DuckDB 2 writes a format 1.4 can't read")
def test_a_duckdb_2_file_is_converted_by_copy_from_database(
    tmp_path: Path, oldest_python: Path
) -> None:
    """The recipe of docs/using-the-schema.md for a file DuckDB 2 created unasked:
    the copy keeps every constraint (alembic check finds nothing) and 1.4 reads it."""
    old, new = tmp_path / "made-by-2.duckdb", tmp_path / "for-1.4.duckdb"
    command.upgrade(alembic_cfg(f"duckdb:///{old}?storage_compatibility_version=latest"), "head")
    con = duckdb.connect(str(old))
    con.execute("INSERT INTO profiles (id, created_at, title) VALUES ('p0', now(), 'Ana')")
    con.execute(f"ATTACH '{new}' AS converted (STORAGE_VERSION '{STORAGE_VERSION}')")
    con.execute(f'COPY FROM DATABASE "{old.stem}" TO converted')
    con.close()
    command.check(alembic_cfg(f"duckdb:///{new}"))
    seen = read_with_oldest(oldest_python, new)
    assert seen["rows"]["profiles"] == 1
    assert seen["revision"] == HEAD
