"""Refusals in this schema's words (errors.py): no engine error class reaches a user."""

from __future__ import annotations

import duckdb
import pytest

from egregora.database.migration.errors import MigrationFailed, failing_as, in_our_words


@pytest.mark.parametrize(
    ("detail", "said"),
    [
        ('Constraint Error: Duplicate key "id: 1"', 'the database said: Duplicate key "id: 1"'),
        ("Not implemented Error: No support", "the database said: No support"),
        ('Dependency Error: Cannot alter entry "p"', 'the database said: Cannot alter entry "p"'),
        ("Out of Memory Error: could not allocate", "Out of Memory: could not allocate"),
        ('column "slug" contains null values', 'column "slug" contains null values'),
    ],
)
def test_an_engine_line_without_its_class_name(detail: str, said: str) -> None:
    assert in_our_words(detail) == said


def test_a_refused_statement_is_one_paragraph_in_our_words() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    con.execute("CREATE TABLE c (id INTEGER REFERENCES t (id))")
    with pytest.raises(MigrationFailed) as refused, failing_as("rename_table t failed"):
        con.execute("ALTER TABLE t RENAME TO u")
    message = str(refused.value)
    assert message.startswith("rename_table t failed: the database said: ")
    assert "Error" not in message and "\n" not in message
