"""``capabilities.duckdb_can_alter`` against DuckDB itself, cell by cell.

The cells are those of ``benchmarks/measure_alter.py``: one Alembic op on a
tiny table with one trait (or two), each in its own in-memory DuckDB, the op's SQL
rendered by Alembic and executed. The rule must say True exactly where the op
succeeds and leaves the table as intended.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.operations import ops

from benchmarks.measure_alter import Case, Trait, cells, rendered_sql, run_cell
from egregora.database.migration.capabilities import (
    PLAIN,
    TableTraits,
    duckdb_can_alter,
    traits_from_database,
    traits_from_table,
)
from egregora.database.migration.duckdb_versions import features

CELLS = list(cells())


@pytest.mark.parametrize(
    ("case", "trait"), CELLS, ids=[f"{case.name}|{trait.name}" for case, trait in CELLS]
)
def test_rule_matches_duckdb(case: Case, trait: Trait) -> None:
    result = run_cell(case, trait)  # a new in-memory database
    assert result.traits.viewed == result.viewed
    # the metadata knows no views; otherwise both constructors see the same table
    assert replace(result.traits, viewed=False) == traits_from_table(
        result.table, result.referenced
    )
    # the rules of the DuckDB this runs on (constraints/: each end of the range)
    can, reason = duckdb_can_alter(result.op, result.traits, features())
    assert can == result.outcome.ok, f"rule: {can} ({reason}); DuckDB: {result.outcome.cell()}"


def _engine(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{tmp_path / 'db.duckdb'}")


def test_missing_table_has_plain_traits(tmp_path: Path) -> None:
    with _engine(tmp_path).connect() as connection:
        assert traits_from_database(connection, "nowhere") == PLAIN


def test_quoted_names_are_read_from_the_catalog(tmp_path: Path) -> None:
    md = sa.MetaData()
    odd = sa.Table(
        "Odd Table",
        md,
        sa.Column("Key Col", sa.Integer, primary_key=True),
        sa.Column("Ix Col", sa.String),
        sa.Column("plain", sa.Integer),
    )
    sa.Index("ix odd", odd.c["Ix Col"])
    with _engine(tmp_path).begin() as connection:
        md.create_all(connection)
        connection.exec_driver_sql('CREATE VIEW "v w" AS SELECT plain FROM "Odd Table"')
        traits = traits_from_database(connection, "Odd Table")
    assert traits.indexed_columns == {"Ix Col"}
    assert traits.pk_columns == traits.keyed == {"Key Col"}
    assert traits.viewed
    assert replace(traits, viewed=False) == traits_from_table(odd, referenced=False)


def _duckdb_refuses(tmp_path: Path, table_ops: ops.ModifyTableOps) -> bool:
    """Whether DuckDB refuses the SQL Alembic renders for ``table_ops``, in one transaction."""
    engine = _engine(tmp_path)
    try:
        with engine.begin() as connection:
            for op in table_ops.ops:
                for statement in rendered_sql(op):
                    connection.exec_driver_sql(statement)
    except sa.exc.DBAPIError:
        return True
    finally:
        engine.dispose()
    return False


BIGINT_B = ops.AlterColumnOp("t", "b", modify_type=sa.BigInteger(), existing_type=sa.Integer())


def _traits(tmp_path: Path, ddl: str) -> TableTraits:
    with _engine(tmp_path).begin() as connection:
        for statement in ddl.split(";"):
            connection.exec_driver_sql(statement)
        return traits_from_database(connection, "t")


def test_an_index_created_earlier_in_the_revision_blocks_a_later_alter(tmp_path: Path) -> None:
    table_ops = ops.ModifyTableOps("t", [ops.CreateIndexOp("ix_a", "t", ["a"]), BIGINT_B])
    traits = _traits(tmp_path, "CREATE TABLE t(a INTEGER, b INTEGER)")
    assert duckdb_can_alter(ops.ModifyTableOps("t", [BIGINT_B]), traits)[0] is True
    assert duckdb_can_alter(table_ops, traits)[0] is False
    assert _duckdb_refuses(tmp_path, table_ops)


def test_an_index_dropped_earlier_in_the_revision_still_counts(tmp_path: Path) -> None:
    """Conservative on purpose: DuckDB 2.0.1 accepts this ALTER once the index on
    another column is dropped in the same transaction, but not a DROP COLUMN of
    the formerly indexed column, and the traits don't say which index is dropped."""
    table_ops = ops.ModifyTableOps("t", [ops.DropIndexOp("ix_a", "t"), BIGINT_B])
    traits = _traits(tmp_path, "CREATE TABLE t(a INTEGER, b INTEGER); CREATE INDEX ix_a ON t(a)")
    assert duckdb_can_alter(table_ops, traits)[0] is False
    assert not _duckdb_refuses(tmp_path, table_ops)
