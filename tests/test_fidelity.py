"""create_copy_swap keeps everything it does not mean to change (issue 14's findings)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from .copy_swap_helpers import apply, rows, sql
from .fidelity import catalog_picture, differences

#: A parent and two generations of dependents holding what reflection loses.
DETAILED = (
    "CREATE TABLE authors (id VARCHAR PRIMARY KEY, name VARCHAR)",
    "CREATE TABLE books (id VARCHAR PRIMARY KEY, author_id VARCHAR REFERENCES authors (id), "
    "at_ns TIMESTAMP_NS, at_s TIMESTAMP_S, at_ms TIMESTAMP_MS, "
    "title VARCHAR COLLATE NOCASE, shout VARCHAR GENERATED ALWAYS AS (upper(title)), "
    "big VARINT, price DECIMAL(18, 3) DEFAULT 1.5, tags VARCHAR[], "
    "meta STRUCT(k VARCHAR, v INTEGER))",
    "CREATE INDEX ix_books_lower ON books (lower(title))",
    "CREATE UNIQUE INDEX ux_books_at ON books (at_ns)",
    "COMMENT ON TABLE books IS 'what authors wrote'",
    "COMMENT ON COLUMN books.at_ns IS 'nanoseconds'",
    "CREATE TABLE reviews (id VARCHAR PRIMARY KEY, book_id VARCHAR REFERENCES books (id), "
    "stars INTEGER)",
    "CREATE VIEW loud_titles AS SELECT shout FROM books",
    "CREATE MACRO plus_one(x) AS x + 1",
    "INSERT INTO authors VALUES ('a1', 'Ana'), ('a2', 'Bo')",
    "INSERT INTO books (id, author_id, at_ns, at_s, at_ms, title, big, tags, meta) VALUES "
    "('b1', 'a1', '2024-01-01 10:00:00.123456789', '2024-01-01 10:00:00', "
    "'2024-01-01 10:00:00.123', 'Dune', 123456789012345678901234567890, ['x', 'y'], "
    "{'k': 'a', 'v': 1}), "
    "('b2', 'a2', '2024-01-02 10:00:00.000000001', NULL, NULL, 'emma', NULL, NULL, NULL)",
    "INSERT INTO reviews VALUES ('r1', 'b1', 5), ('r2', 'b2', 3)",
)

AUTHORS_WITH_CHECK = sa.Table(
    "authors",
    sa.MetaData(),
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("name", sa.String()),
    sa.CheckConstraint("length(name) > 0", name="name_len"),
)


@pytest.fixture
def detailed(tmp_path: Path) -> Path:
    path = tmp_path / "detailed.duckdb"
    sql(path, *DETAILED)
    return path


def test_dependents_come_back_exactly_as_duckdb_kept_them(detailed: Path) -> None:
    before = catalog_picture(detailed, leave_out={"authors"})
    apply(detailed, AUTHORS_WITH_CHECK)
    after = catalog_picture(detailed, leave_out={"authors"})
    assert differences(before, after) == []
    # and they behave the same: nanoseconds, the collation, the generated column
    assert rows(detailed, "SELECT at_ns::VARCHAR FROM books WHERE id = 'b1'") == [
        ("2024-01-01 10:00:00.123456789",)
    ]
    assert rows(detailed, "SELECT id FROM books WHERE title = 'EMMA'") == [("b2",)]
    sql(detailed, "INSERT INTO books (id, author_id, title) VALUES ('b3', 'a1', 'new')")
    assert rows(detailed, "SELECT shout FROM books WHERE id = 'b3'") == [("NEW",)]
    with pytest.raises(duckdb.ConstraintException):
        sql(detailed, "INSERT INTO authors VALUES ('a3', '')")  # the change itself


def test_quarantine_through_grandchildren_keeps_them_exact(detailed: Path) -> None:
    sql(detailed, "INSERT INTO authors VALUES ('a3', '')")
    sql(detailed, "INSERT INTO books (id, author_id, title) VALUES ('b9', 'a3', 'orphaned')")
    apply(detailed, AUTHORS_WITH_CHECK, on_violation="quarantine")
    assert rows(detailed, "SELECT id FROM books_quarantine") == [("b9",)]
    assert rows(detailed, "SELECT sql FROM duckdb_tables() WHERE table_name = 'books'")[0][
        0
    ].startswith("CREATE TABLE books(id VARCHAR PRIMARY KEY, author_id VARCHAR, at_ns TIMESTAMP_NS")


def test_an_implicit_sequence_starts_after_the_copied_keys(tmp_path: Path) -> None:
    path = tmp_path / "seq.duckdb"
    sql(
        path,
        "CREATE TABLE things (id INTEGER PRIMARY KEY, name VARCHAR)",
        "INSERT INTO things VALUES (1, 'a'), (2, 'b'), (7, 'c')",
    )
    things = sa.Table(
        "things",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),  # autoincrement: a sequence
        sa.Column("name", sa.String()),
        sa.CheckConstraint("length(name) > 0", name="name_len"),
    )
    apply(path, things)
    sql(path, "INSERT INTO things (name) VALUES ('next')")
    assert rows(path, "SELECT id FROM things WHERE name = 'next'") == [(8,)]
    apply(path, things)  # a sequence already past the keys is left where it is
    sql(path, "INSERT INTO things (name) VALUES ('later')")
    assert rows(path, "SELECT id FROM things WHERE name = 'later'") == [(9,)]
