"""Append-only beyond SQLAlchemy: what DuckDB offers, and the guard for raw DuckDB and ibis.

The first tests are the measurements the design stands on (DuckDB has no
per-table protection; read-only is whole-database), so that a DuckDB that
grows triggers or GRANT fails here and the docs get revisited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest

from egregora.database import schemas
from egregora.database.duckdb_guard import GuardedConnection, guard_duckdb
from egregora.database.guard import AppendOnlyViolation

from .conftest import alembic_cfg

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def head_file(tmp_path: Path) -> Path:
    from alembic import command

    path = tmp_path / "app.duckdb"
    command.upgrade(alembic_cfg(f"duckdb:///{path}"), "head")
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO journals (id, created_at, title) VALUES ('j0', now(), 'first');"
        "INSERT INTO profiles (id, created_at, title) VALUES ('p0', now(), 'Ana');"
        "INSERT INTO posts (id, created_at, title, status) VALUES ('post0', now(), 'T', ?)",
        [schemas.POST_STATUSES[0]],
    )
    con.close()
    return path


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
    finally:
        con.close()


# --- what DuckDB itself offers (measured on 1.4.3 and 2.0.1) ----------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TRIGGER keep BEFORE UPDATE ON journals FOR EACH ROW EXECUTE FUNCTION f()",
        "CREATE RULE keep AS ON UPDATE TO journals DO INSTEAD NOTHING",
        "GRANT SELECT ON journals TO app",
        "REVOKE UPDATE ON journals FROM app",
        "CREATE ROLE app",
        "CREATE POLICY keep ON journals USING (true)",
    ],
)
def test_duckdb_has_no_per_table_protection(statement: str) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE journals (id VARCHAR)")
    with pytest.raises(duckdb.ParserException):
        con.execute(statement)


def test_a_read_only_connection_refuses_every_write(head_file: Path) -> None:
    before = rows(head_file, "journals")
    con = duckdb.connect(str(head_file), read_only=True)
    for statement in (
        "UPDATE journals SET title = 'x'",
        "DELETE FROM annotations",
        "INSERT INTO journals (id, created_at) VALUES ('j9', now())",
        "UPDATE posts SET title = 'x'",
    ):
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            con.execute(statement)
    con.close()
    assert rows(head_file, "journals") == before


def test_a_process_can_t_hold_the_file_read_only_and_writable_at_once(head_file: Path) -> None:
    """So read-only protects a reader, never the writer's own connection."""
    reader = duckdb.connect(str(head_file), read_only=True)
    with pytest.raises(duckdb.ConnectionException, match="different configuration"):
        duckdb.connect(str(head_file))
    reader.close()
    writer = duckdb.connect(str(head_file))
    with pytest.raises(duckdb.Error, match="(?i)unique file handle conflict"):
        writer.execute(f"ATTACH '{head_file}' AS again (READ_ONLY)")
    writer.close()


def test_views_refuse_writes() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE journals (id VARCHAR); CREATE VIEW j AS SELECT * FROM journals")
    for statement in ("UPDATE j SET id = 'x'", "DELETE FROM j", "INSERT INTO j VALUES ('x')"):
        with pytest.raises(duckdb.Error, match="(?i)base table|is not an? table"):
            con.execute(statement)


# --- the guard on a raw DuckDB connection ------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journals SET title = 'x'",
        "DELETE FROM annotations",
        "TRUNCATE journals",
        "INSERT OR REPLACE INTO journals (id, created_at) VALUES ('j0', now())",
        "INSERT INTO journals (id, created_at) VALUES ('j0', now()) "
        "ON CONFLICT (id) DO UPDATE SET title = 'x'",
        "WITH t AS (SELECT 1) UPDATE main.\"Journals\" SET title = 'x'",
        "SELECT 1; DELETE FROM journals",
    ],
)
def test_the_guard_refuses_rewrites_and_sends_nothing(head_file: Path, statement: str) -> None:
    before = rows(head_file, "journals")
    con = guard_duckdb(duckdb.connect(str(head_file)))
    with pytest.raises(AppendOnlyViolation, match="append-only"):
        con.execute(statement)
    with pytest.raises(AppendOnlyViolation):
        con.sql(statement)
    with pytest.raises(AppendOnlyViolation):
        con.cursor().execute(statement)
    con.close()
    assert rows(head_file, "journals") == before


def test_inserts_reads_and_other_tables_pass(head_file: Path) -> None:
    with guard_duckdb(duckdb.connect(str(head_file))) as con:
        assert con.execute("SELECT count(*) FROM journals").fetchone() == (1,)
        con.execute("INSERT INTO journals (id, created_at) VALUES ('j1', now())")
        con.executemany(
            "INSERT INTO annotations (id, created_at) VALUES (?, now())", [["a1"], ["a2"]]
        )
        con.execute("UPDATE posts SET title = 'new' WHERE id = 'post0'")
        assert con.sql("SELECT count(*) FROM journals").fetchall() == [(2,)]
        # execute() gives back the guarded connection, not the raw one
        assert isinstance(con.execute("SELECT 1"), GuardedConnection)
    assert [r[0] for r in rows(head_file, "journals")] == ["j0", "j1"]
    assert rows(head_file, "posts")[0][4] == "new"


def test_the_relational_update_of_an_append_only_table_is_refused(head_file: Path) -> None:
    con = guard_duckdb(duckdb.connect(str(head_file)))
    with pytest.raises(AppendOnlyViolation, match="UPDATE on journals"):
        con.table("journals").update({"title": duckdb.ConstantExpression("x")})
    assert con.table("journals").count("*").fetchall() == [(1,)]  # reads pass
    con.table("posts").update({"title": duckdb.ConstantExpression("x")})  # not guarded
    con.close()


def test_the_tables_can_be_chosen(head_file: Path) -> None:
    con = guard_duckdb(duckdb.connect(str(head_file)), tables=["posts"])
    with pytest.raises(AppendOnlyViolation, match="UPDATE on posts"):
        con.execute("UPDATE posts SET title = 'x'")
    con.execute("UPDATE journals SET title = 'x'")
    con.close()
    with pytest.raises(TypeError, match="not one string"):
        guard_duckdb(duckdb.connect(), tables="posts")


# --- the application's client: ibis on a guarded connection ------------------------------


def journal(id_: str) -> dict[str, Any]:
    return {
        "id": id_,
        "content": "c",
        "created_at": NOW,
        "source_checksum": None,
        "title": "t",
        "window_start": NOW,
        "window_end": NOW,
    }


def test_ibis_on_a_guarded_connection_appends_and_refuses_rewrites(head_file: Path) -> None:
    con = ibis.duckdb.from_connection(guard_duckdb(duckdb.connect(str(head_file))))
    con.insert("journals", [journal("j1")])  # the application's write path
    refused = {
        "raw_sql UPDATE": lambda: con.raw_sql("UPDATE journals SET title = 'x'"),
        "raw_sql DELETE": lambda: con.raw_sql("DELETE FROM annotations"),
        "truncate_table": lambda: con.truncate_table("journals"),
        "insert overwrite": lambda: con.insert("journals", [journal("j2")], overwrite=True),
    }
    if hasattr(con, "upsert"):  # ibis 12 (MERGE INTO ... THEN UPDATE)
        refused["upsert"] = lambda: con.upsert("journals", [journal("j1")], on="id")
    for what, attempt in refused.items():
        with pytest.raises(AppendOnlyViolation, match="append-only"):
            attempt()
        assert con.table("journals").count().to_pyarrow().as_py() == 2, what
    con.raw_sql("UPDATE posts SET title = 'edited'")  # posts are not append-only
    con.disconnect()
    assert [r[0] for r in rows(head_file, "journals")] == ["j0", "j1"]
    assert rows(head_file, "posts")[0][4] == "edited"
