"""What reflection gives back on DuckDB (reflection.py), read as autogenerate reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from egregora.database.migration.autogenerate.compare import AUTOGENERATE_PLUGINS
from egregora.database.migration.reflection import generated_expression


@pytest.mark.parametrize(
    ("reported", "data_type", "expression"),
    [  # what duckdb_columns() reports for `x <type> AS (expr)`, DuckDB 2.0.1
        ("CAST((y * 2) AS INTEGER)", "INTEGER", "(y * 2)"),
        ("CAST((y / 3) AS DECIMAL(10, 2))", "DECIMAL(10,2)", "(y / 3)"),
        ("CAST(list_value(s, 'x') AS VARCHAR[])", "VARCHAR[]", "list_value(s, 'x')"),
        ("CAST(CAST(s AS INTEGER) AS INTEGER)", "INTEGER", "CAST(s AS INTEGER)"),
        ("CAST(now() AS TIMESTAMP WITH TIME ZONE)", "TIMESTAMP WITH TIME ZONE", "now()"),
        ("CAST('it''s AS x' AS VARCHAR)", "VARCHAR", "'it''s AS x'"),
        ("CAST(5 AS BIGINT)", "BIGINT", "5"),
        ("lower(s)", "VARCHAR", "lower(s)"),  # no cast: as reported
        (
            "CAST(y AS BIGINT)",
            "INTEGER",
            "CAST(y AS BIGINT)",
        ),  # a cast to another type is the user's
    ],
)
def test_the_cast_duckdb_adds_to_a_generated_column_comes_off(
    reported: str, data_type: str, expression: str
) -> None:
    assert generated_expression(reported, data_type) == expression


def _diffs(path: Path, metadata: sa.MetaData) -> list[Any]:
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "autogenerate_plugins": AUTOGENERATE_PLUGINS,
                "target_metadata": metadata,
            },
        )
        diffs = compare_metadata(context, metadata)
    engine.dispose()
    return diffs


def _create(path: Path, metadata: sa.MetaData) -> None:
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        metadata.create_all(connection)
    engine.dispose()


def _media(*extra: sa.SchemaItem, label: bool = True) -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table("people", meta, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table(
        "media",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("size", sa.Integer()),
        sa.Column("name", sa.String()),
        sa.Column("big", sa.Integer(), sa.Computed("size * 1000")),
        *([sa.Column("label", sa.String(), sa.Computed("upper(name)"))] if label else []),
        *extra,
    )
    return meta


def test_generated_columns_read_as_computed_and_compare_clean(tmp_path: Path) -> None:
    path = tmp_path / "media.duckdb"
    _create(path, _media())
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        media = sa.Table("media", sa.MetaData(), autoload_with=connection)
        columns = {c["name"]: c for c in sa.inspect(connection).get_columns("media")}
    engine.dispose()
    assert isinstance(media.c.big.computed, sa.Computed)
    assert str(media.c.big.computed.sqltext) == "(size * 1000)"
    assert media.c.big.server_default is media.c.big.computed
    assert columns["label"]["computed"]["sqltext"] == 'upper("name")'
    assert columns["size"].get("computed") is None
    assert _diffs(path, _media()) == []


def test_a_dropped_generated_column_is_reported_as_one(tmp_path: Path) -> None:
    path = tmp_path / "media.duckdb"
    _create(path, _media())
    [(kind, _, table, column)] = _diffs(path, _media(label=False))
    assert (kind, table, column.name) == ("remove_column", "media", "label")
    assert isinstance(column.computed, sa.Computed)


@pytest.mark.parametrize("action", ["RESTRICT", "NO ACTION", "restrict"])
def test_a_foreign_key_declared_restrict_is_no_change(tmp_path: Path, action: str) -> None:
    """DuckDB accepts RESTRICT and NO ACTION, stores neither, and behaves as both do."""
    fk = sa.ForeignKeyConstraint(["owner"], ["people.id"], ondelete=action, onupdate=action)
    path = tmp_path / "media.duckdb"
    model = _media(sa.Column("owner", sa.Integer()), fk)
    _create(path, model)
    assert _diffs(path, model) == []


def test_a_removed_foreign_key_is_reported_under_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "media.duckdb"
    owner = sa.Column("owner", sa.Integer())
    _create(path, _media(owner, sa.ForeignKeyConstraint(["owner"], ["people.id"], name="fk2")))
    [(kind, constraint)] = _diffs(path, _media(sa.Column("owner", sa.Integer())))
    assert (kind, constraint.name) == ("remove_fk", "fk2")
