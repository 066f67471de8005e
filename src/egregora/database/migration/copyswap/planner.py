"""``plan_copy_swap``: a pure function from definitions to a printable plan.

The plan holds the constraint rules to check before any change, and the
statements that make the change (on DuckDB a rebuild of the table and of
every table whose FOREIGN KEYs reference it; on PostgreSQL ALTERs in place),
all in one transaction. Nothing here touches a database, so the same plan
serves online runs, offline ``--sql`` scripts, dry runs and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from egregora.database.migration.catalog import StoredTable
from egregora.database.migration.copyswap.engine import engine_for
from egregora.database.migration.copyswap.model import (
    REJECTED,
    ColumnMapValue,
    CopySwapPlan,
    OnViolation,
    RowPolicy,
)
from egregora.database.migration.copyswap.steps import StepPlanner
from egregora.database.migration.copyswap.validate import validate


def plan_copy_swap(
    previous: sa.Table,
    target: sa.Table,
    *,
    dialect: sa.Dialect,
    column_map: Mapping[str, ColumnMapValue] | None = None,
    dependents: Sequence[sa.Table] = (),
    on_violation: str = "fail",
    revision: str = "unknown",
    inline_keys: bool = False,
    changed_checks: Iterable[str] = (),
    stored: Mapping[str, StoredTable] | None = None,
    kept_indexes: Sequence[str] = (),
    policy: RowPolicy | None = None,
    origin: str | None = None,
    rejected: str = REJECTED,
    parents: Mapping[str, str] | None = None,
    renamable: bool = False,
    copy_origin: str | None = None,
) -> CopySwapPlan:
    """Plan the change of ``previous`` into ``target``. Pure: no database access.

    The engine's planner is chosen by ``dialect.name`` (:func:`.engine.engine_for`).
    ``dependents`` are the current definitions of the tables whose FOREIGN KEYs
    reference the table, directly or through each other; they keep their rows.
    ``inline_keys`` declares the target's PRIMARY KEY and UNIQUE constraints
    in CREATE TABLE instead of adding them after the copy (see
    ``deferred_keys``). ``changed_checks`` names CHECKs that keep their name
    but not their expression; only an in-place plan needs it (it matches
    CHECKs by name), and the caller finds them by asking the server
    (catalog.changed_check_names). ``stored`` holds the dependents' own DDL as
    DuckDB keeps it (catalog.stored_tables): a dependent found there is
    recreated exactly from it; one not found (offline ``--sql``, where no
    catalog can be read) from its definition. ``kept_indexes`` are CREATE
    INDEX statements of indexes the table has but the target does not define
    (a user's, another store's): rebuilt as they were (a rebuild only; in
    place they stay). ``policy``: the caller's choices about rows (RowPolicy).
    ``origin``, ``rejected`` and ``parents``: a stage of a fused rebuild
    (see RulePlanner and fusion.py). ``renamable``: the table as it stands
    can be renamed (catalog.renamable), so a rebuild may move it aside
    instead of stashing its rows; ``copy_origin`` is then ``origin`` read
    from the table under its moved-aside name (RebuildPlanner.move_aside).
    """
    planner = make_planner(
        previous,
        target,
        dialect=dialect,
        column_map=column_map,
        dependents=dependents,
        on_violation=on_violation,
        changed_checks=changed_checks,
        policy=policy,
        stored=stored,
        kept_indexes=kept_indexes,
        inline_keys=inline_keys,
        origin=origin,
        rejected=rejected,
        parents=parents,
        renamable=renamable,
        copy_origin=copy_origin,
    )
    mode: OnViolation = "quarantine" if on_violation == "quarantine" else "fail"
    rules = planner.target_rules() + planner.dependent_rules(mode)
    steps = planner.steps(mode, rules, revision)
    tables = (target.name, *planner.dep_names)
    return CopySwapPlan(
        table=target.name,
        tables=tables,
        on_violation=mode,
        rules=tuple(rules),
        steps=tuple(steps),
        count_sql={t: f"SELECT count(*) FROM {planner.q(t)}" for t in tables},
        deferred_keys=planner.deferred_keys(),
    )


def make_planner(
    previous: sa.Table,
    target: sa.Table,
    *,
    dialect: sa.Dialect,
    column_map: Mapping[str, ColumnMapValue] | None = None,
    dependents: Sequence[sa.Table] = (),
    on_violation: str = "fail",
    **kw: Any,
) -> StepPlanner:
    """The engine's planner for the change, after the checks every plan passes first.

    ``kw``: the planner's keyword arguments (see :func:`plan_copy_swap`).
    """
    planner_class = engine_for(dialect.name).planner
    validate(previous, target, column_map or {}, dependents, on_violation)
    planner_class.check_limits(previous, target, dependents)
    return planner_class(dialect, previous, target, dict(column_map or {}), list(dependents), **kw)
