"""A revision that uses op.create_copy_swap, through Alembic: online, offline, -x options."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import duckdb
import pytest
from alembic.config import Config

from alembic import command

from .conftest import ALEMBIC_INI, ROOT, alembic_cfg, database_digest, run_cli
from .copy_swap_helpers import rows, sql

REVISION = '''
"""journals: window_end >= window_start

Revision ID: t1
Revises: v3
"""
import sqlalchemy as sa
from alembic import op

import egregora.database.migrations  # noqa: F401

revision = "t1"
down_revision = "v3"
branch_labels = None
depends_on = None

TZ = sa.TIMESTAMP(timezone=True)


def journals(*extra):
    return sa.Table(
        "journals", sa.MetaData(),
        sa.Column("id", sa.String()), sa.Column("content", sa.String()),
        sa.Column("created_at", TZ), sa.Column("source_checksum", sa.String()),
        sa.Column("title", sa.String()), sa.Column("window_start", TZ),
        sa.Column("window_end", TZ), *extra,
    )


NEW = journals(sa.CheckConstraint("window_end >= window_start", name="chk_journals_window"))
OLD = journals()


def upgrade():
    op.create_copy_swap(NEW, previous=OLD)


def downgrade():
    op.create_copy_swap(OLD, previous=NEW)
'''


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A copy of the project's alembic/ folder with one extra revision, t1."""
    folder = tmp_path / "alembic"
    shutil.copytree(ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "t1_journal_window.py").write_text(textwrap.dedent(REVISION))
    ini = tmp_path / "alembic.ini"
    ini.write_text(ALEMBIC_INI.read_text().replace("%(here)s/alembic", str(folder)))
    return ini


def _cfg(ini: Path, url: str, **x: str) -> Config:
    cfg = alembic_cfg(url, **x)
    cfg.config_file_name = str(ini)
    cfg.file_config.read(str(ini))
    cfg.set_main_option("script_location", str(ini.parent / "alembic"))
    return cfg


def _journals(path: Path) -> None:
    sql(
        path,
        """INSERT INTO journals VALUES
        ('j1', '🎉 text', now(), 'c', 'w1', TIMESTAMPTZ '2024-01-01', TIMESTAMPTZ '2024-01-02'),
        ('j2', NULL, NULL, NULL, NULL, NULL, NULL),
        ('j3', 'inverted', now(), 'c', 'w3', TIMESTAMPTZ '2024-02-02', TIMESTAMPTZ '2024-02-01')""",
    )


def test_upgrade_downgrade_round_trip_keeps_every_row(
    scripts: Path, db_path: Path, db_url: str
) -> None:
    command.upgrade(_cfg(scripts, db_url), "v3")
    _journals(db_path)
    sql(db_path, "UPDATE journals SET window_end = TIMESTAMPTZ '2024-02-03' WHERE id = 'j3'")
    before = database_digest(db_path)
    command.upgrade(_cfg(scripts, db_url), "head")
    assert rows(db_path, "SELECT version_num FROM alembic_version") == [("t1",)]
    with pytest.raises(duckdb.ConstraintException):
        sql(
            db_path,
            "INSERT INTO journals (id, window_start, window_end) "
            "VALUES ('x', now(), now() - INTERVAL 1 DAY)",
        )
    command.downgrade(_cfg(scripts, db_url), "v3")
    after = database_digest(db_path)
    assert after["tables"]["journals"][1] == before["tables"]["journals"][1]  # type: ignore[index]
    assert after == before


def test_upgrade_refuses_then_quarantines_with_x_option(
    scripts: Path, db_path: Path, db_url: str
) -> None:
    command.upgrade(_cfg(scripts, db_url), "v3")
    _journals(db_path)
    before = database_digest(db_path)
    result = run_cli("-x", f"url={db_url}", "upgrade", "head", cwd=db_path.parent, ini=scripts)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "chk_journals_window" in out and "1 row (for example 'j3')" in out
    assert "Traceback" not in out
    assert database_digest(db_path) == before
    result = run_cli(
        "-x",
        f"url={db_url}",
        "-x",
        "on_violation=quarantine",
        "upgrade",
        "head",
        cwd=db_path.parent,
        ini=scripts,
    )
    assert result.returncode == 0, result.stderr
    assert "journals: 2 rows copied, 1 quarantined" in result.stderr
    assert rows(db_path, "SELECT id, _quarantine_revision FROM journals_quarantine") == [
        ("j3", "t1 upgrade")
    ]
    # quarantine tables are not part of the schema: check stays clean
    command.check(_cfg(scripts, db_url))


def test_unknown_on_violation_is_refused(scripts: Path, db_url: str) -> None:
    result = run_cli(
        "-x",
        f"url={db_url}",
        "-x",
        "on_violation=drop",
        "upgrade",
        "head",
        cwd=scripts.parent,
        ini=scripts,
    )
    assert result.returncode != 0
    assert "on_violation=drop is not one of fail, quarantine" in result.stdout + result.stderr


def test_offline_sql_runs_on_a_fresh_database(scripts: Path, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'offline.duckdb'}"
    result = run_cli("-x", f"url={url}", "upgrade", "v3:head", "--sql", cwd=tmp_path, ini=scripts)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert "CREATE TABLE journals__ccs_new" in script and "SELECT error(" in script
    assert not (tmp_path / "offline.duckdb").exists()
    path = tmp_path / "fresh.duckdb"
    command.upgrade(_cfg(scripts, f"duckdb:///{path}"), "v3")
    _journals(path)
    sql(path, "DELETE FROM journals WHERE id = 'j3'")
    con = duckdb.connect(str(path))
    con.execute(script)  # BEGIN ... COMMIT as Alembic wrote it
    con.close()
    assert rows(path, "SELECT version_num FROM alembic_version") == [("t1",)]
    assert rows(path, "SELECT count(*) FROM journals") == [(2,)]
    assert ("journals", "CHECK") in rows(
        path, "SELECT table_name, constraint_type FROM duckdb_constraints()"
    )


def test_offline_sql_guard_stops_on_violating_rows(scripts: Path, tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'x.duckdb'}"
    script = run_cli(
        "-x", f"url={url}", "upgrade", "v3:head", "--sql", cwd=tmp_path, ini=scripts
    ).stdout
    path = tmp_path / "fresh.duckdb"
    command.upgrade(_cfg(scripts, f"duckdb:///{path}"), "v3")
    _journals(path)
    before = database_digest(path)
    con = duckdb.connect(str(path))
    with pytest.raises(duckdb.Error, match="create_copy_swap refused"):
        con.execute(script)
    con.close()
    assert database_digest(path) == before
