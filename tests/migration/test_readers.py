"""A view or macro of another store that reads a column a revision drops is named first.

Revision v4e drops ``posts.authors`` with a plain ``op.drop_column``. DuckDB
binds views and macros late: without readers.py the upgrade succeeded and the
view broke on its next use ("Referenced column authors not found"), with no
word in the dry run. PostgreSQL refused the DROP with its own error, which
named the view only in a DETAIL line the refusal did not show.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import psycopg
import pytest
from alembic.util import CommandError

from alembic import command

from .. import legacy
from ..conftest import alembic_cfg, file_sha256
from ..copy_swap_helpers import rows, table_names

READERS = (
    "CREATE VIEW post_bylines AS SELECT id, authors FROM posts",
    "CREATE MACRO first_author(pid) AS (SELECT authors[1] FROM posts WHERE id = pid)",
    "CREATE VIEW titles AS SELECT id, title FROM posts",  # reads no dropped column
)


def _v3_with_readers(path: Path, *readers: str) -> None:
    con = duckdb.connect(str(path))
    legacy.create(con)
    con.execute(
        "INSERT INTO profiles (id, title, created_at) VALUES ('a1', 'Ana', now());"
        "INSERT INTO posts (id, title, created_at, status, authors) "
        "VALUES ('p1', 'T', now(), 'draft', ['a1'])"
    )
    for statement in readers:
        con.execute(statement)
    con.close()


def test_a_view_and_a_macro_over_a_dropped_column_are_named_before_any_change(
    db_path: Path, db_url: str
) -> None:
    _v3_with_readers(db_path, *READERS)
    before = file_sha256(db_path)
    for x in ({}, {"dry_run": "true"}, {"on_violation": "quarantine"}):
        with pytest.raises(CommandError) as refused:
            command.upgrade(alembic_cfg(db_url, **x), "head")
        message = str(refused.value)
        assert "Revision v4e drops posts.authors" in message, message
        assert "the macro first_author reads authors" in message
        assert "the view post_bylines reads authors" in message
        assert "titles" not in message and "Nothing was changed" in message
        assert file_sha256(db_path) == before
    # the way out the message gives: drop them, upgrade, re-create them
    con = duckdb.connect(str(db_path))
    con.execute("DROP VIEW post_bylines; DROP MACRO first_author")
    con.close()
    command.upgrade(alembic_cfg(db_url), "head")
    assert rows(db_path, "SELECT * FROM titles") == [("p1", "T")]
    assert "post_authors" in table_names(db_path)


def test_on_postgresql_the_view_is_named_too(pg_url: str) -> None:
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as con:
        legacy.create(con)
        con.execute("CREATE VIEW post_bylines AS SELECT id, authors FROM posts")
        con.execute("CREATE VIEW titles AS SELECT id, title FROM posts")
    with pytest.raises(CommandError) as refused:
        command.upgrade(alembic_cfg(pg_url), "head")
    message = str(refused.value)
    assert "the view post_bylines reads authors" in message and "titles" not in message
    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as con:
        assert con.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,)
