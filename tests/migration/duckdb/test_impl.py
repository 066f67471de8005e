"""Alembic's DuckDB implementation: where duckdb-sqlalchemy's and ours overlap, ours wins."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import egregora.database.migrations  # noqa: F401  (registers our implementation)
from alembic import command
from egregora.database.migration.errors import InvalidOperation

from ... import legacy
from ...conftest import alembic_cfg, file_sha256
from ...copy_swap_helpers import rows, sql
from ...fidelity import catalog_picture


def _ops(connection: sa.Connection) -> Operations:
    return Operations(MigrationContext.configure(connection))


@pytest.fixture
def indexed(tmp_path: Path) -> Path:
    path = tmp_path / "indexed.duckdb"
    sql(
        path,
        "CREATE TABLE books (id VARCHAR PRIMARY KEY, seen TIMESTAMP_NS, pages INTEGER, "
        "isbn VARCHAR)",
        "CREATE INDEX ix_books_isbn ON books (isbn)",
        "INSERT INTO books VALUES ('b1', '2024-01-01 00:00:00.000000001', 10, 'i1')",
    )
    return path


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda op: op.drop_column("books", "pages"), None),
        (lambda op: op.alter_column("books", "pages", nullable=False), "pages"),
        (lambda op: op.alter_column("books", "pages", type_=sa.BigInteger()), "pages"),
        (lambda op: op.alter_column("books", "pages", new_column_name="page_count"), "page_count"),
    ],
    ids=["drop column", "NOT NULL", "type", "rename"],
)
def test_an_alter_duckdb_refuses_is_a_rebuild_that_keeps_everything_else(  # type: ignore[no-untyped-def]
    indexed: Path, change, column: str | None
) -> None:
    """Issue 27: not duckdb-sqlalchemy's batch copy from reflection (it lost TIMESTAMP_NS)."""
    others = catalog_picture(indexed, leave_out=["books"])
    engine = sa.create_engine(f"duckdb:///{indexed}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        change(_ops(connection))
    engine.dispose()
    assert catalog_picture(indexed, leave_out=["books"]) == others
    assert rows(indexed, "SELECT seen::VARCHAR, isbn FROM books") == [
        ("2024-01-01 00:00:00.000000001", "i1")
    ]
    assert rows(indexed, "SELECT sql FROM duckdb_indexes()") == [
        ("CREATE INDEX ix_books_isbn ON books(isbn);",)
    ]
    if column is not None:
        assert rows(indexed, f"SELECT {column} FROM books") == [(10,)]
    else:
        assert "pages" not in str(rows(indexed, "SELECT sql FROM duckdb_tables()"))


def test_an_alter_duckdb_can_do_still_runs_plainly(indexed: Path) -> None:
    engine = sa.create_engine(f"duckdb:///{indexed}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        _ops(connection).alter_column("books", "pages", server_default="0")
        _ops(connection).add_column("books", sa.Column("note", sa.String()))
    engine.dispose()
    assert rows(indexed, "SELECT seen::VARCHAR, note FROM books") == [
        ("2024-01-01 00:00:00.000000001", None)
    ]


def test_a_plain_drop_column_that_a_view_or_macro_reads_is_refused(tmp_path: Path) -> None:
    """Found on the app's files: v4e drops posts.authors, and another store's view over it
    broke silently, its dry run saying nothing."""
    path = tmp_path / "v3.duckdb"
    sql(path, *legacy.TABLES.values(), legacy.VIEW)  # documents_view reads posts: fine
    sql(
        path,
        "CREATE VIEW bylines AS SELECT id, array_to_string(authors, ', ') AS who FROM posts",
        "CREATE MACRO lead_author(pid) AS (SELECT authors[1] FROM posts WHERE id = pid)",
        "CREATE VIEW tag_cloud AS SELECT unnest(tags) AS tag FROM posts",  # another column
    )
    before = file_sha256(path)
    for options in ({"dry_run": "true"}, {}):
        with pytest.raises(InvalidOperation) as refused:
            command.upgrade(alembic_cfg(f"duckdb:///{path}", **options), "head")
        told = str(refused.value)
        assert "v4e drops posts.authors" in told and "Nothing was changed" in told
        assert "the view bylines reads authors" in told
        assert "the macro lead_author reads authors" in told
        assert "tag_cloud" not in str(refused.value)
        assert file_sha256(path) == before
    sql(path, "DROP VIEW bylines", "DROP MACRO lead_author")
    command.upgrade(alembic_cfg(f"duckdb:///{path}"), "head")
    assert rows(path, "SELECT count(*) FROM tag_cloud") == [(0,)]


def test_a_hand_written_op_rebuild_keeps_each_column_s_collation(tmp_path: Path) -> None:
    """Reflection gives no collation; the stored DDL has it. Without it the rebuild
    behind an op turned ``name = 'a'`` from a match into none (measured)."""
    path = tmp_path / "collated.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        'CREATE TABLE t (id INTEGER PRIMARY KEY, "Name" VARCHAR COLLATE NOCASE, '
        "code VARCHAR(8) COLLATE NOCASE, plain VARCHAR)"
    )
    con.execute('CREATE INDEX ix_t_name ON t ("Name")')  # DuckDB's ALTER can't: a rebuild
    con.execute("INSERT INTO t VALUES (1, 'A', 'X', 'P')")
    con.close()
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        _ops(connection).add_column(
            "t", sa.Column("n", sa.Integer(), nullable=False, server_default="0")
        )
    engine.dispose()
    assert rows(path, "SELECT count(*) FROM t WHERE \"Name\" = 'a' AND code = 'x'") == [(1,)]
    assert rows(path, "SELECT count(*) FROM t WHERE plain = 'p'") == [(0,)]
    (stored,) = rows(path, "SELECT sql FROM duckdb_tables() WHERE table_name = 't'")[0]
    assert stored.count("COLLATE NOCASE") == 2 and "n INTEGER" in stored


def test_column_collations_reads_the_stored_ddl() -> None:
    from egregora.database.migration.catalog import column_collations

    con = duckdb.connect()
    con.execute(
        'CREATE TABLE t (a VARCHAR COLLATE NOCASE, "b c" VARCHAR COLLATE NOACCENT, '
        "d DECIMAL(10, 2), e VARCHAR)"
    )
    assert column_collations(con, "t") == {"a": "NOCASE", "b c": "NOACCENT"}
    assert column_collations(con, "missing") == {}
