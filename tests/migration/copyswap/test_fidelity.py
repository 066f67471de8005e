"""create_copy_swap keeps everything it does not mean to change (issue 14's findings)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egregora.database.migration.errors import ConstraintViolations, InvalidOperation

from ...copy_swap_helpers import apply, rows, sql
from ...fidelity import catalog_picture, differences

pytestmark = pytest.mark.e2e  # every kind of DuckDB object through a rebuild

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


def _scores(*extra: object) -> sa.Table:
    return sa.Table(
        "scores",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("score", sa.Integer()),
        sa.Column("label", sa.String()),
        *extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    path = tmp_path / "scores.duckdb"
    sql(
        path,
        "CREATE TABLE scores (id VARCHAR PRIMARY KEY, score INTEGER, label VARCHAR)",
        "INSERT INTO scores VALUES ('s1', 3, 'x'), ('s2', -1, 'y'), ('s3', 5, 'y')",
    )
    return path


def test_a_check_declared_on_a_column_is_preflighted_and_created(scores: Path) -> None:
    target = sa.Table(
        "scores",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("score", sa.Integer(), sa.CheckConstraint("score >= 0")),
        sa.Column("label", sa.String()),
    )
    with pytest.raises(ConstraintViolations, match="score >= 0"):
        apply(scores, target)
    apply(scores, target, on_violation="quarantine")
    assert rows(scores, "SELECT id FROM scores_quarantine") == [("s2",)]
    with pytest.raises(duckdb.ConstraintException):
        sql(scores, "INSERT INTO scores VALUES ('s9', -5, 'z')")


def test_a_computed_column_stays_computed(scores: Path) -> None:
    apply(scores, _scores(sa.Column("double", sa.Integer(), sa.Computed("score * 2"))))
    sql(scores, "INSERT INTO scores (id, score) VALUES ('s9', 21)")
    assert rows(scores, "SELECT id, double FROM scores ORDER BY id") == [
        ("s1", 6),
        ("s2", -2),
        ("s3", 10),
        ("s9", 42),
    ]


def test_a_table_in_another_schema_is_refused_before_any_change(scores: Path) -> None:
    sql(scores, "CREATE SCHEMA s", "CREATE TABLE s.scores (id VARCHAR, score INTEGER)")
    before = catalog_picture(scores)
    other = sa.Table(
        "scores",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("score", sa.Integer()),
        sa.CheckConstraint("score >= 0"),
        schema="s",
    )
    with pytest.raises(InvalidOperation, match="schema='s'"):
        apply(scores, other, on_violation="quarantine")
    assert differences(before, catalog_picture(scores)) == []


def test_a_unique_index_is_preflighted_like_a_unique_constraint(scores: Path) -> None:
    target = _scores(sa.Index("ux_scores_label", "label", unique=True))
    before = catalog_picture(scores)
    with pytest.raises(ConstraintViolations, match="UNIQUE INDEX ux_scores_label"):
        apply(scores, target)
    assert differences(before, catalog_picture(scores)) == []
    apply(scores, target, on_violation="quarantine")
    assert rows(scores, "SELECT id FROM scores_quarantine") == [("s3",)]
    assert rows(scores, "SELECT index_name FROM duckdb_indexes()") == [("ux_scores_label",)]


def test_a_macro_reading_a_dropped_column_is_refused_naming_it(scores: Path) -> None:
    sql(scores, "CREATE MACRO labelled(x) AS TABLE SELECT label FROM scores WHERE id = x")
    before = catalog_picture(scores)
    without_label = sa.Table(
        "scores",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("score", sa.Integer()),
    )
    with pytest.raises(InvalidOperation, match="macro labelled reads label"):
        apply(scores, without_label)
    assert differences(before, catalog_picture(scores)) == []


# -- every DuckDB type, in a table the operation does not mean to change -----------------

#: DuckDB's own sample of every type: test_all_types() (min, max and NULL rows).
ALL_TYPES = [
    (name, type_)
    for name, type_, *_ in duckdb.connect()
    .execute("DESCRIBE SELECT * FROM test_all_types()")
    .fetchall()
    if name != "geometry"  # needs the spatial extension
]


@st.composite
def dependents(draw: st.DrawFn) -> dict[str, Any]:
    columns = draw(st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=8, unique=True))
    return {
        "columns": columns,
        "collated": draw(st.booleans()),
        "generated": draw(st.booleans()),
        "expression_index": draw(st.booleans()),
        "unique_index": draw(st.booleans()),
        "comment": draw(st.booleans()),
        "grandchild": draw(st.booleans()),
        "change": draw(st.sampled_from(["check", "new column", "not null"])),
    }


def _build(path: Path, case: dict[str, Any]) -> None:
    definitions = ["id INTEGER PRIMARY KEY", "pid INTEGER REFERENCES p (id)"]
    definitions += [f'"{name}" {type_}' for name, type_ in case["columns"]]
    if case["collated"]:
        definitions.append("label VARCHAR COLLATE NOCASE")
    if case["generated"]:
        definitions.append("twice INTEGER GENERATED ALWAYS AS (id * 2)")
    names = ", ".join(f'"{name}"' for name, _ in case["columns"])
    statements = [
        "CREATE TABLE p (id INTEGER PRIMARY KEY, name VARCHAR)",
        "INSERT INTO p VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        f"CREATE TABLE d ({', '.join(definitions)})",
        f"INSERT INTO d (id, pid, {names}{', label' if case['collated'] else ''}) "
        f"SELECT row_number() OVER (), (row_number() OVER ()) % 3 + 1, {names}"
        f"{', ' + repr('Mixed') if case['collated'] else ''} FROM test_all_types()",
    ]
    if case["expression_index"]:
        statements.append("CREATE INDEX ix_d_expr ON d ((id + 1))")
    if case["unique_index"]:
        statements.append("CREATE UNIQUE INDEX ux_d_pid ON d (id, pid)")
    if case["comment"]:
        statements += ["COMMENT ON TABLE d IS 'kept'", "COMMENT ON COLUMN d.pid IS 'parent'"]
    if case["grandchild"]:
        statements += [
            "CREATE TABLE g (id INTEGER PRIMARY KEY, did INTEGER REFERENCES d (id), "
            "seen TIMESTAMP_NS)",
            "INSERT INTO g SELECT id, id, '2024-01-01 00:00:00.000000001' FROM d",
        ]
    sql(path, *statements)


def _parent_target(change: str) -> sa.Table:
    extra: list[Any] = {
        "check": [sa.CheckConstraint("length(name) > 0", name="name_len")],
        "new column": [sa.Column("rank", sa.Integer())],
        "not null": [],
    }[change]
    return sa.Table(
        "p",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(), nullable=change != "not null"),
        *extra,
    )


@settings(
    max_examples=int(os.environ.get("EGREGORA_HYPOTHESIS_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(dependents())
def test_a_rebuild_keeps_dependents_of_every_type_exactly(case: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "types.duckdb"
        _build(path, case)
        leave_out = {"p"}
        before = catalog_picture(path, leave_out)
        apply(path, _parent_target(case["change"]))
        assert differences(before, catalog_picture(path, leave_out)) == []


class DuckDBType(sa.types.UserDefinedType[Any]):
    """A column type spelled as DuckDB spells it: how a revision declares DuckDB's own types."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


@settings(
    max_examples=int(os.environ.get("EGREGORA_HYPOTHESIS_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=6, unique=True))
def test_a_rebuilt_table_of_every_type_keeps_its_columns_and_rows(
    columns: list[tuple[str, str]],
) -> None:
    """The table the operation rebuilds, declared with DuckDB's own type names, loses nothing."""
    names = ", ".join(f'"{name}"' for name, _ in columns)
    definitions = ", ".join(f'"{name}" {type_}' for name, type_ in columns)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "target.duckdb"
        sql(
            path,
            f"CREATE TABLE t (id INTEGER, {definitions})",
            f"INSERT INTO t SELECT row_number() OVER (), {names} FROM test_all_types()",
        )
        before = catalog_picture(path)
        target = sa.Table(
            "t",
            sa.MetaData(),
            sa.Column("id", sa.Integer()),
            *(sa.Column(name, DuckDBType(type_)) for name, type_ in columns),
            sa.CheckConstraint("id > 0", name="id_positive"),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # types reflection can't name
            apply(path, target)
        after = catalog_picture(path)
        assert before["columns"] == after["columns"]
        assert before["rows"] == after["rows"]


def test_an_index_nobody_declared_survives_the_rebuild(scores: Path) -> None:
    """A user's index on a rebuilt table comes back; one on a dropped column is refused."""
    sql(scores, "CREATE INDEX ix_users_own ON scores (lower(label))")
    before = rows(scores, "SELECT index_name, sql FROM duckdb_indexes()")
    declared_before = _scores()
    apply(scores, _scores(sa.CheckConstraint("id <> ''", name="id_set")), previous=declared_before)
    assert rows(scores, "SELECT index_name, sql FROM duckdb_indexes()") == before
    without_label = sa.Table(
        "scores",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("score", sa.Integer()),
    )
    with pytest.raises(InvalidOperation, match="index ix_users_own"):
        apply(scores, without_label)


def test_an_index_the_previous_definition_declares_goes_when_the_target_drops_it(
    scores: Path,
) -> None:
    sql(scores, "CREATE INDEX ix_scores_label ON scores (label)")
    with_index = _scores(sa.Index("ix_scores_label", "label"))
    apply(scores, _scores(sa.CheckConstraint("id <> ''", name="id_set")), previous=with_index)
    assert rows(scores, "SELECT index_name FROM duckdb_indexes()") == []
