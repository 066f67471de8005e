"""FOREIGN KEY actions DuckDB can't parse (issue 25, item 7): refused before any change.

``ondelete="CASCADE"`` (SET NULL, SET DEFAULT, and ``onupdate`` likewise) is a
Parser Error on DuckDB 2.0.1. Autogenerate against DuckDB refuses to write such a
revision; a revision that has one (generated against PostgreSQL, or by hand) is
refused on DuckDB before it changes anything, online and as ``--sql``; PostgreSQL
runs it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic import command
from egregora.database.migration.errors import InvalidOperation

from ..conftest import file_sha256, run_cli
from .autogenerate.test_compare import _cfg, _metadata, _project, _seed

REFUSED = {
    "ondelete CASCADE": ({"ondelete": "CASCADE"}, "ON DELETE CASCADE"),
    "ondelete SET NULL": ({"ondelete": "SET NULL"}, "ON DELETE SET NULL"),
    "ondelete SET DEFAULT": ({"ondelete": "set default"}, "ON DELETE SET DEFAULT"),
    "onupdate CASCADE": ({"onupdate": "CASCADE"}, "ON UPDATE CASCADE"),
    "not deferrable": ({"deferrable": False}, "NOT DEFERRABLE"),
    "match full": ({"match": "FULL"}, "MATCH FULL"),
}


def _versions(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "versions").glob("*.py"))


@pytest.mark.parametrize("case", REFUSED)
def test_autogenerate_against_duckdb_refuses_it_and_writes_nothing(
    case: str, tmp_path: Path
) -> None:
    options, spelled = REFUSED[case]
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    _seed(path, _metadata())
    after = _metadata(add_fk=True, fk_options=options)
    with pytest.raises(InvalidOperation) as refused:
        command.revision(_cfg(folder, f"duckdb:///{path}", after), "cascade", autogenerate=True)
    message = str(refused.value)
    assert "\n" not in message and spelled in message, message
    assert "children.other_parent" in message and "DuckDB" in message
    assert "No revision was written" in message
    assert _versions(folder) == []


def test_a_new_table_with_a_cascade_is_refused_too(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    _seed(path, _metadata())
    after = _metadata()
    sa.Table(
        "notes",
        after,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("parent_id", sa.String(), sa.ForeignKey("parents.id", ondelete="CASCADE")),
    )
    with pytest.raises(InvalidOperation, match=r"notes\.parent_id .*ON DELETE CASCADE"):
        command.revision(_cfg(folder, f"duckdb:///{path}", after), "notes", autogenerate=True)
    assert _versions(folder) == []


@pytest.mark.parametrize("action", ["RESTRICT", "NO ACTION"])
def test_restrict_and_no_action_work_on_duckdb(action: str, tmp_path: Path) -> None:
    """Measured: DuckDB accepts them (and behaves so by default)."""
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    url = f"duckdb:///{path}"
    _seed(path, _metadata())
    after = _metadata(add_fk=True, fk_options={"ondelete": action, "onupdate": action})
    command.revision(_cfg(folder, url, after), "restrict", autogenerate=True)
    command.upgrade(_cfg(folder, url, after), "head")
    command.check(_cfg(folder, url, after))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE children SET other_parent = 'p1'")
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM parents WHERE id = 'p1'")
    finally:
        engine.dispose()


def _pg_seed(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        _metadata().create_all(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO parents (id, name) VALUES ('p1', 'Ana'), ('p2', 'Bo')"
            )
            connection.exec_driver_sql(
                "INSERT INTO children (id, parent_id, other_parent, n) VALUES "
                "('c1', NULL, 'p1', '1'), ('c2', 'p2', NULL, NULL)"
            )
    finally:
        engine.dispose()


def test_generated_against_postgresql_it_runs_there_and_is_refused_on_duckdb(
    tmp_path: Path, pg_url: str
) -> None:
    folder = _project(tmp_path)
    _pg_seed(pg_url)
    after = _metadata(add_fk=True, fk_options={"ondelete": "CASCADE"})
    command.revision(_cfg(folder, pg_url, after), "cascade", autogenerate=True)
    [name] = _versions(folder)
    assert 'ondelete="CASCADE"' in (folder / "versions" / name).read_text()
    command.upgrade(_cfg(folder, pg_url, after), "head")
    command.check(_cfg(folder, pg_url, after))
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM parents WHERE id = 'p1'")  # cascades to c1
            left = connection.exec_driver_sql("SELECT id FROM children").all()
    finally:
        engine.dispose()
    assert left == [("c2",)]

    # the same revision on DuckDB: refused before any change, online and offline
    path = tmp_path / "db.duckdb"
    url = f"duckdb:///{path}"
    _seed(path, _metadata())
    untouched = file_sha256(path)
    with pytest.raises(InvalidOperation) as refused:
        command.upgrade(_cfg(folder, url, after), "head")
    message = str(refused.value)
    assert "ON DELETE CASCADE" in message and "Nothing was changed" in message, message
    assert file_sha256(path) == untouched
    cfg = _cfg(folder, url, after)
    cfg.output_buffer = io.StringIO()
    with pytest.raises(InvalidOperation, match="ON DELETE CASCADE"):
        command.upgrade(cfg, "head", sql=True)


HAND_WRITTEN = '''"""notes, deleted with their parent"""
import sqlalchemy as sa
from alembic import op

revision = "n1"
down_revision = None
branch_labels = depends_on = None


def upgrade():
    op.create_table(
        "notes",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("parent_id", sa.String()),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], ondelete="SET NULL"),
    )


def downgrade():
    op.drop_table("notes")
'''


def test_a_hand_written_create_table_is_refused_on_duckdb_from_the_command_line(
    tmp_path: Path,
) -> None:
    from ..conftest import copy_project

    ini = copy_project(tmp_path, versions=False)
    (tmp_path / "alembic" / "versions" / "n1_notes.py").write_text(HAND_WRITTEN)
    path = tmp_path / "db.duckdb"
    _seed(path, _metadata())
    untouched = file_sha256(path)
    result = run_cli("-x", f"url=duckdb:///{path}", "upgrade", "head", cwd=tmp_path, ini=ini)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "FAILED:" in output and "notes.parent_id" in output and "ON DELETE SET NULL" in output
    assert "Traceback" not in output and "Parser Error" not in output
    assert file_sha256(path) == untouched


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ({}, []),
        ({"ondelete": "restrict", "onupdate": "no  action"}, []),
        ({"ondelete": "cascade"}, ["ON DELETE CASCADE"]),
        ({"onupdate": "Set Null"}, ["ON UPDATE SET NULL"]),
        ({"deferrable": False}, ["NOT DEFERRABLE"]),
        ({"initially": "immediate", "match": "full"}, ["INITIALLY IMMEDIATE", "MATCH FULL"]),
        # deferrable: left out of DuckDB's DDL, checked by integrity.py (foreign_keys.py)
        ({"deferrable": True, "initially": "DEFERRED"}, []),
        ({"deferrable": True}, []),
        # but what it would do when a referenced row goes is still an action DuckDB lacks
        (
            {"deferrable": True, "initially": "DEFERRED", "ondelete": "CASCADE"},
            ["ON DELETE CASCADE"],
        ),
    ],
)
def test_the_options_duckdb_cannot_parse(options: dict[str, object], refused: list[str]) -> None:
    from egregora.database.migration.fkactions import unparsable_options

    fk = sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], **options)  # type: ignore[arg-type]
    assert unparsable_options(fk) == refused
