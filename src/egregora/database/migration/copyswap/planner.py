"""Planning a create-copy-swap: pure functions from definitions to a printable plan.

The plan holds the constraint rules to check before any change, and the
statements that make the change (on DuckDB a rebuild of the table and of
every table whose FOREIGN KEYs reference it; on PostgreSQL ALTERs in place),
all in one transaction, for both ``fail`` and ``quarantine``. Nothing here
touches a database, so the same plan serves online runs, offline ``--sql``
scripts, dry runs and tests.

``PLANNERS`` is the one place that maps a dialect to its planner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from egregora.database.migration.copyswap.duckdb import RebuildPlanner
from egregora.database.migration.copyswap.model import (
    ColumnMapValue,
    CopySwapPlan,
    Facts,
    OnViolation,
    Source,
    Stage,
    Variant,
    Variants,
)
from egregora.database.migration.copyswap.postgresql import InPlacePlanner
from egregora.database.migration.copyswap.steps import StepPlanner
from egregora.database.migration.copyswap.validate import check_on_violation, validate
from egregora.database.migration.errors import InvalidOperation

__all__ = ["PLANNERS", "make_planner", "plan", "plan_copy_swap", "planner_for"]

#: The planners, by dialect name: a rebuild on DuckDB, ALTER in place on PostgreSQL.
PLANNERS: dict[str, type[StepPlanner]] = {"duckdb": RebuildPlanner, "postgresql": InPlacePlanner}


def planner_for(dialect: sa.Dialect) -> type[StepPlanner]:
    """The planner for ``dialect``; a clear refusal for any other database."""
    planner = PLANNERS.get(dialect.name)
    if planner is None:
        raise InvalidOperation(
            "create_copy_swap runs on DuckDB (a rebuild) and PostgreSQL (ALTER in place), "
            f"not on {dialect.name}. Use Alembic's plain operations there."
        )
    return planner


def plan(
    stage: Stage, dialect: sa.Dialect, facts: Facts | None = None, source: Source | None = None
) -> CopySwapPlan:
    """Plan ``stage`` in both modes, read in the stage's own (the other planned when asked).

    Pure: no database access."""
    planner = make_planner(stage, dialect, facts, source)
    own_rules = planner.target_rules()

    def variant(mode: OnViolation) -> Variant:
        rules = own_rules + planner.dependent_rules(mode)
        return Variant(tuple(rules), tuple(planner.steps(mode, rules, stage.revision)))

    variants = Variants(variant)
    variants[stage.on_violation]  # the stage's own mode is planned now: it must plan
    tables = (stage.table, *planner.dep_names)
    return CopySwapPlan(
        table=stage.table,
        tables=tables,
        on_violation=stage.on_violation,
        variants=variants,
        count_sql={t: f"SELECT count(*) FROM {planner.q(t)}" for t in tables},
        deferred_keys=planner.deferred_keys(),
    )


def plan_copy_swap(
    previous: sa.Table,
    target: sa.Table,
    *,
    dialect: sa.Dialect,
    column_map: Mapping[str, ColumnMapValue] | None = None,
    dependents: Sequence[sa.Table] = (),
    on_violation: str = "fail",
    revision: str = "unknown",
    facts: Facts | None = None,
) -> CopySwapPlan:
    """Plan the change of ``previous`` into ``target`` (:func:`plan`, with keywords).

    ``dependents``: the current definitions of the tables whose FOREIGN KEYs
    reference the table (else ``facts.dependents``).
    """
    check_on_violation(on_violation)
    mode: OnViolation = "quarantine" if on_violation == "quarantine" else "fail"
    stage = Stage(previous, target, dict(column_map or {}), revision, mode)
    facts = facts or Facts()
    if dependents:
        facts = dataclasses.replace(facts, dependents=tuple(dependents))
    return plan(stage, dialect, facts)


def make_planner(
    stage: Stage, dialect: sa.Dialect, facts: Facts | None = None, source: Source | None = None
) -> StepPlanner:
    """The dialect's planner for ``stage``, after the checks every plan passes first."""
    planner_class = planner_for(dialect)
    facts = facts or Facts()
    validate(stage.previous, stage.target, stage.column_map, facts.dependents)
    planner_class.check_limits(stage.previous, stage.target, facts.dependents)
    return planner_class(dialect, stage, facts, source)
