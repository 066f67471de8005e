"""Each engine's catalog, read the way its impl reads it (catalog.py, duckdb/catalog.py).

The same questions on DuckDB and PostgreSQL get the same answers: what the
database holds, asked through ``dialects.catalog_of``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from egregora.database.migration.catalog import closure
from egregora.database.migration.config import create_engine
from egregora.database.migration.dialects import catalog_of
from egregora.database.migration.duckdb.catalog import DuckDBCatalog

DDL = [
    "CREATE TABLE owners (id INTEGER PRIMARY KEY, name VARCHAR CHECK (length(name) > 0))",
    "CREATE TABLE items (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners (id))",
    "CREATE TABLE notes (id INTEGER, item_id INTEGER REFERENCES items (id))",
    "CREATE TABLE loose (id INTEGER)",
    "CREATE INDEX ix_notes_item ON notes (item_id)",
    "CREATE VIEW named_owners AS SELECT name FROM owners",
]


@pytest.fixture(params=["duckdb", "postgresql"])
def bind(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[sa.Connection]:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path}/catalog.duckdb"  # type: ignore[str-bytes-safe]
    else:
        url = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    with engine.connect() as connection:
        for statement in DDL:
            connection.exec_driver_sql(statement)
        yield connection
        connection.rollback()
    engine.dispose()


def test_tables_views_and_references_are_read_alike_on_both_engines(bind: sa.Connection) -> None:
    catalog = catalog_of(bind)
    assert isinstance(catalog, DuckDBCatalog) == (bind.dialect.name == "duckdb")
    tables, views = catalog.tables_and_views()
    assert tables >= {"owners", "items", "notes", "loose"} and "named_owners" not in tables
    assert views == {"named_owners"}
    assert sorted(catalog.foreign_key_edges()) == [("items", "owners"), ("notes", "items")]
    assert catalog.referencing("owners") == ["items", "notes"]
    assert catalog.referencing("loose") == []
    assert [i.split()[0] for i in catalog.undeclared_indexes("notes")] == ["ix_notes_item"]
    assert catalog.undeclared_indexes("owners") == []  # its key's own index is not one


def test_shapes_as_held_match_shapes_as_spelled(bind: sa.Connection) -> None:
    """A table made from metadata reads back as the shape the catalog predicts for it."""
    catalog = catalog_of(bind)
    table = sa.Table(
        "spelled",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("score", sa.Integer(), sa.CheckConstraint("score >= 0", name="ck_score")),
    )
    table.create(bind)
    assert catalog.shapes(["spelled"])["spelled"] == catalog.expected_shapes([table])["spelled"]
    ((check, spelled),) = catalog.spelled_checks(table)
    assert check.name == "ck_score" and "score" in spelled and "0" in spelled


def test_closure_follows_references_through_each_other_and_stops_at_cycles() -> None:
    edges = [("b", "a"), ("c", "b"), ("a", "c"), ("d", "x")]
    assert closure(edges, "a") == ["b", "c"]
    assert closure(edges, "x") == ["d"]
    assert closure([], "a") == []
