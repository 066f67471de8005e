"""The engine is chosen once, by dialect name; another database is refused clearly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from duckdb_sqlalchemy import Dialect as DuckDBDialect
from sqlalchemy.dialects import postgresql, sqlite

from egregora.database.migration.copyswap.duckdb import RebuildPlanner
from egregora.database.migration.copyswap.planner import plan_copy_swap
from egregora.database.migration.copyswap.postgresql import InPlacePlanner
from egregora.database.migration.dialects import ENGINES, engine_for
from egregora.database.migration.errors import InvalidOperation


def test_each_supported_dialect_has_its_engine() -> None:
    assert sorted(ENGINES) == ["duckdb", "postgresql"]
    assert engine_for("duckdb").planner is RebuildPlanner
    assert not engine_for("duckdb").in_place
    assert engine_for("postgresql").planner is InPlacePlanner
    assert engine_for("postgresql").in_place


def test_another_database_is_refused_in_one_paragraph() -> None:
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer))
    with pytest.raises(InvalidOperation) as refused:
        plan_copy_swap(table, table, dialect=sqlite.dialect())
    assert "not on sqlite" in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("dialect", "statement"),
    [(DuckDBDialect(), "DROP TABLE"), (postgresql.dialect(), "ADD CONSTRAINT")],
    ids=["duckdb", "postgresql"],
)
def test_the_plan_follows_the_dialect(dialect: sa.Dialect, statement: str) -> None:
    previous = sa.Table("t", sa.MetaData(), sa.Column("n", sa.Integer))
    target = sa.Table("t", sa.MetaData(), sa.Column("n", sa.Integer), sa.CheckConstraint("n > 0"))
    plan = plan_copy_swap(previous, target, dialect=dialect)
    assert any(statement in s for s in plan.statements())
    # the offline guard is the engine's own: DuckDB's error(), PostgreSQL's RAISE
    guard = plan.rules[0].guard_sql
    assert ("SELECT error(" in guard) == (dialect.name == "duckdb")
    assert ("RAISE EXCEPTION" in guard) == (dialect.name == "postgresql")
