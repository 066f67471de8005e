"""The run report's text: counts read as English (1 row, 2 rows; 1 index), keys as SQL."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.migration.errors import ConstraintViolations
from egregora.database.migration.report import (
    RevisionReport,
    RunReport,
    TableReport,
    ViolationReport,
    plural,
    sample_text,
)

from ..copy_swap_helpers import apply


def _report(rows: int, indexes: int, in_place: bool = False) -> str:
    violation = ViolationReport("CHECK", "chk_journals_title", "length(title) > 0", rows, [["j3"]])
    table = TableReport(
        revision="t1 upgrade",
        table="journals",
        rows_before=rows * 2,
        rows_copied=rows,
        rows_quarantined=rows,
        indexes_built=indexes,
        seconds=0.5,
        violations=[violation],
        in_place=in_place,
    )
    report = RunReport(dry_run=True, on_violation="quarantine", tables=[table])
    report.revisions.append(RevisionReport("t1", "upgrade", 0.5))
    return report.to_text()


def test_one_row_and_one_index_are_singular() -> None:
    text = _report(rows=1, indexes=1)
    assert "journals: 1 row copied, 1 quarantined, 1 index built, 0.50 s" in text
    assert "(length(title) > 0): 1 row, for example 'j3'" in text
    assert "total: 1 row copied, 1 quarantined, 1 index built" in text
    assert "1 rows" not in text and "1 indexes" not in text


def test_other_counts_are_plural() -> None:
    text = _report(rows=2, indexes=0)
    assert "journals: 2 rows copied, 2 quarantined, 0 indexes built" in text
    assert "): 2 rows, for example" in text
    assert "total: 2 rows copied, 2 quarantined, 0 indexes built" in text
    assert "journals: 1 row kept in place" in _report(rows=1, indexes=2, in_place=True)
    assert "total: 1 row kept in place, 1 quarantined, 2 indexes built" in _report(
        rows=1, indexes=2, in_place=True
    )


def test_plural() -> None:
    assert [plural(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert plural(1, "index", "indexes") == "1 index"
    assert plural(3, "index", "indexes") == "3 indexes"


# -- sample keys, in SQL's spelling (issue 25, item 5) --------------------------------

UUID_KEY = uuid.UUID("8bbd6e2e-3f1a-4c1e-9a57-3c1b7f0e2d11")


@pytest.mark.parametrize(
    ("key", "spelled"),
    [
        ((None,), "NULL"),
        ((UUID_KEY,), f"'{UUID_KEY}'"),
        (("j3",), "'j3'"),
        (("it's",), "'it''s'"),
        ((7,), "7"),
        ((True,), "TRUE"),
        ((Decimal("12.50"),), "12.50"),
        ((date(2024, 1, 2),), "DATE '2024-01-02'"),
        ((datetime(2024, 1, 2, 3, 4, 5),), "TIMESTAMP '2024-01-02 03:04:05'"),
        (
            (datetime(2024, 1, 2, 3, 4, 5, 600, tzinfo=UTC),),
            "TIMESTAMPTZ '2024-01-02 03:04:05.000600+00:00'",
        ),
        ((date(2024, 1, 2), None, "a"), "(DATE '2024-01-02', NULL, 'a')"),
    ],
)
def test_a_sample_key_is_written_as_sql_writes_it(key: tuple[object, ...], spelled: str) -> None:
    assert sample_text(key) == spelled


def test_the_dry_run_report_spells_keys_as_sql() -> None:
    violation = ViolationReport("NOT NULL", "t.id", "id IS NOT NULL", 2, [[None], [UUID_KEY]])
    table = TableReport("t1 upgrade", "t", 2, 0, 2, 0, 0.1, violations=[violation])
    report = RunReport(dry_run=True, on_violation="quarantine", tables=[table])
    report.revisions.append(RevisionReport("t1", "upgrade", 0.1))
    text = report.to_text()
    assert f"2 rows, for example NULL, '{UUID_KEY}'" in text
    assert "None" not in text and "UUID(" not in text


#: key column type, the rows' keys as SQL, the key of the row the CHECK rejects
KEY_TYPES = {
    "uuid": ("UUID", [f"'{UUID_KEY}'", "'00000000-0000-0000-0000-000000000001'"]),
    "text with a quote": ("VARCHAR", ["'it''s'", "'plain'"]),
    "integer": ("BIGINT", ["-7", "8"]),
    "date": ("DATE", ["DATE '2024-01-02'", "DATE '2024-01-03'"]),
    "timestamp": ("TIMESTAMP", ["TIMESTAMP '2024-01-02 03:04:05.25'", "TIMESTAMP '2024-01-03'"]),
    "timestamptz": (
        "TIMESTAMPTZ",
        ["TIMESTAMPTZ '2024-01-02 03:04:05+02'", "TIMESTAMPTZ '2024-01-03 00:00:00+00'"],
    ),
    "numeric": ("NUMERIC(10, 2)", ["12.50", "3"]),
}


def _keyed(kind: str, column_type: sa.types.TypeEngine[object], composite: bool) -> sa.Table:
    columns = [sa.Column("k", column_type, primary_key=True)]
    if composite:
        columns.append(sa.Column("n", sa.Integer(), primary_key=True))
    return sa.Table(
        "keyed",
        sa.MetaData(),
        *columns,
        sa.Column("v", sa.Integer()),
        sa.CheckConstraint("v >= 0", name="chk_keyed_v"),
    )


SA_TYPES: dict[str, sa.types.TypeEngine[object]] = {
    "uuid": sa.Uuid(),
    "text with a quote": sa.String(),
    "integer": sa.BigInteger(),
    "date": sa.Date(),
    "timestamp": sa.TIMESTAMP(),
    "timestamptz": sa.TIMESTAMP(timezone=True),
    "numeric": sa.Numeric(10, 2),
}


def _refusal_samples(url: str, kind: str, composite: bool) -> tuple[str, list[str]]:
    """The rows' keys as the refusal spells them: found back by SQL on the same database."""
    sql_type, keys = KEY_TYPES[kind]
    if url.startswith("postgresql"):
        sql_type = sql_type.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
    extra = ", n INTEGER" if composite else ""
    execute(url, f"CREATE TABLE keyed (k {sql_type}{extra}, v INTEGER)")
    for i, key in enumerate(keys):
        n = f", {i + 1}" if composite else ""
        execute(url, f"INSERT INTO keyed VALUES ({key}{n}, -1)")
    with pytest.raises(ConstraintViolations) as refused:
        apply(url, _keyed(kind, SA_TYPES[kind], composite))
    message = str(refused.value)
    found = re.search(r"\(for example (.*)\) \[|\(for example (.*)\)$", message, re.M)
    assert found is not None, message
    return message, _split_samples(found.group(1) or found.group(2))


def _split_samples(text: str) -> list[str]:
    """``'a', (DATE '2024-01-02', 1)`` -> the samples, commas in quotes and parentheses kept."""
    samples, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and text[i : i + 2] == ", ":
            samples.append(text[start:i])
            start = i + 2
    return [*samples, text[start:]]


def _finds_each_sample(url: str, samples: list[str], composite: bool) -> None:
    key = "(k, n)" if composite else "k"
    for sample in samples:
        assert "UUID(" not in sample and "None" not in sample and "datetime" not in sample
        where = f"{key} = {sample}" if composite else f"k = {sample}"
        assert fetch(url, f"SELECT count(*) FROM keyed WHERE {where}") == [(1,)], sample


@pytest.mark.parametrize("composite", [False, True], ids=["one column", "composite"])
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_sample_keys_are_sql_that_finds_the_rows_on_duckdb(
    kind: str, composite: bool, db_url: str
) -> None:
    _, samples = _refusal_samples(db_url, kind, composite)
    assert len(samples) == 2
    _finds_each_sample(db_url, samples, composite)


@pytest.mark.parametrize("composite", [False, True], ids=["one column", "composite"])
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_sample_keys_are_sql_that_finds_the_rows_on_postgresql(
    kind: str, composite: bool, pg_url: str
) -> None:
    _, samples = _refusal_samples(pg_url, kind, composite)
    assert len(samples) == 2
    _finds_each_sample(pg_url, samples, composite)


@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_a_null_key_is_written_null(engine: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("db_url" if engine == "duckdb" else "pg_url")
    execute(url, "CREATE TABLE keyed (k VARCHAR, v INTEGER)")
    execute(url, "INSERT INTO keyed VALUES (NULL, 1), ('a', 2)")
    with pytest.raises(ConstraintViolations) as refused:
        apply(url, _keyed("text with a quote", sa.String(), composite=False))
    message = str(refused.value)
    assert "NOT NULL keyed.k on keyed" in message and "1 row (for example NULL)" in message
    assert "None" not in message


def execute(url: str, statement: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def fetch(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.exec_driver_sql(statement)]
    finally:
        engine.dispose()
