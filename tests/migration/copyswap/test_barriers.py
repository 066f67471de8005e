"""barriers.py: which held tables a statement needs written, from its text alone."""

from __future__ import annotations

import pytest

from egregora.database.migration.copyswap.barriers import (
    barrier,
    defines_reader,
    may_change_readers,
    readers_of,
)

HELD = ["journals", "Posts"]
READERS = readers_of(
    [
        ("view", "documents_view", "SELECT id, title FROM journals UNION ALL SELECT 1, 2"),
        ("macro", "journal_count", "(SELECT count(*) FROM documents_view)"),
        ("view", "unrelated", "SELECT * FROM media"),
    ]
)


@pytest.mark.parametrize(
    ("statement", "tables"),
    [
        ("UPDATE journals SET title = upper(title)", {"journals"}),
        ('INSERT INTO x SELECT * FROM "JOURNALS"', {"journals"}),
        ("SELECT * FROM main.journals AS j", {"journals"}),
        ('DELETE FROM "Posts" WHERE id = 1', {"Posts"}),
        ("SELECT count(*) FROM journals_quarantine", {"journals"}),
        ("SELECT * FROM documents_view", {"journals"}),  # through a view
        ("SELECT journal_count()", {"journals"}),  # a macro over that view
        ("SELECT * FROM unrelated", set()),
        ("UPDATE alembic_version SET version_num = 'v4b'", set()),
        ("SELECT 'journal' AS kind", set()),  # a word, not the name
    ],
)
def test_a_statement_needs_the_held_tables_it_reads_or_writes(
    statement: str, tables: set[str]
) -> None:
    found = barrier(statement, HELD, READERS)
    assert found.tables == tables
    assert not found.reads_catalog


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT table_name FROM duckdb_tables() WHERE NOT internal",
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'media'",
    ],
)
def test_a_catalog_read_needs_every_held_table(statement: str) -> None:
    assert barrier(statement, HELD, READERS).reads_catalog


@pytest.mark.parametrize(
    ("statement", "changes"),
    [
        ("  select 1", False),
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
        ("UPDATE t SET a = 1", False),
        ("CREATE VIEW v AS SELECT * FROM journals", True),
        ("CREATE OR REPLACE MACRO m() AS 1", True),
        ("DROP VIEW documents_view", True),
        ("ALTER VIEW v RENAME TO w", True),
        ("create function f(x) as x + 1", True),
        ("DROP SCHEMA s CASCADE", True),
        ("DROP TABLE t CASCADE", True),
        ("CREATE TABLE post_authors (post_id VARCHAR)", False),
        ("ALTER TABLE posts DROP COLUMN authors", False),
        ("CREATE INDEX idx_posts_slug ON posts (slug)", False),
    ],
)
def test_only_a_statement_that_may_change_a_view_or_macro_rereads_them(
    statement: str, changes: bool
) -> None:
    assert may_change_readers(statement) is changes


@pytest.mark.parametrize(
    ("statement", "defines"),
    [
        ("CREATE VIEW v AS SELECT * FROM journals", True),
        ("  create or replace temporary view v AS SELECT 1", True),
        ("CREATE MACRO m() AS (SELECT count(*) FROM journals)", True),
        ("CREATE TABLE t AS SELECT * FROM journals", False),
        ("INSERT INTO t SELECT * FROM journals", False),
        ("DROP VIEW v", False),
    ],
)
def test_a_view_or_macro_definition_reads_columns_not_rows(statement: str, defines: bool) -> None:
    assert defines_reader(statement) is defines
