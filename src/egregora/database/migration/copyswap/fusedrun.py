"""Running a fused rebuild: the earlier stages judged in place, the last one written.

:func:`run_fused` is :func:`.run.run_online` for several operations on one
table (fusion.py plans them): each earlier stage is preflighted on the rows
the stage before leaves, its violations collected or refused, its rejected
rows quarantined with their stage's shape and revision; then the last stage
runs as an ordinary plan reading the earlier stages' output. One copy, one
swap, and a report line per operation, as if each had run alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from egregora.database.migration.catalog import driver, referencing_closure, reflect
from egregora.database.migration.copyswap.engine import Current, engine_for
from egregora.database.migration.copyswap.fusion import (
    FusedPlan,
    Stage,
    StagePlan,
    declared_indexes,
    plan_fused,
)
from egregora.database.migration.copyswap.model import OnViolation
from egregora.database.migration.copyswap.preflight import Violation, preflight, violation_report
from egregora.database.migration.copyswap.run import (
    TableOutcome,
    deferred_keys,
    execute_plan,
    followers,
    lean,
    log,
    parents_of,
    rejected_rows,
    rekey,
    table_report,
)
from egregora.database.migration.destroyed import record_dropped
from egregora.database.migration.errors import ConstraintViolations
from egregora.database.migration.report import RunReport, TableReport, plural


def run_fused(
    connection: sa.Connection,
    stages: Sequence[Stage],
    collector: list[Violation] | None = None,
    report: RunReport | None = None,
    *,
    inline_keys: bool = False,
    judged: bool = False,
) -> None:
    """Run ``stages`` (one table's operations, in order) as one rebuild. Raises on refusal.

    ``judged``: :func:`judge` found no violation already; not counted again.

    Fail mode with a ``collector`` goes on as if quarantining, as run_online
    does, so that later stages (and operations) are judged on the rows they
    would really see.
    """
    engine = engine_for(connection.dialect.name)
    name = stages[0].table
    dependents = [reflect(connection, d) for d in referencing_closure(connection, name)]
    last = stages[-1].operation
    for parent in sorted((parents_of(last.table, dependents) & deferred_keys(connection)) - {name}):
        rekey(connection, parent)
    now = Current(last, stages[0].previous, dependents, declared_indexes(stages))
    engine.refuse_before_change(connection, now)
    inputs = engine.catalog_inputs(connection, now)

    def plan_for(mode: OnViolation) -> FusedPlan:
        staged = [dataclasses.replace(s, on_violation=mode) for s in stages]
        return plan_fused(
            staged,
            dialect=connection.dialect,
            dependents=dependents,
            inline_keys=inline_keys,
            **inputs,
        )

    mode = stages[-1].on_violation
    plan = plan_for(mode)
    raw = driver(connection)
    base_rows = _count(raw, connection, name)
    run = _Judged(connection, raw, collector, report, mode)
    for stage_plan in plan.stages:
        run.earlier_stage(stage_plan, base_rows, judged=judged)
    _final_stage(run, plan, plan_for, judged)
    for sql in plan.cleanup:
        raw.execute(sql)
    deferred_keys(connection).update(plan.final.deferred_keys)


class _Judged:
    """What a fused run has judged so far: refusals, and rows each stage removed."""

    def __init__(
        self,
        connection: sa.Connection,
        raw: Any,
        collector: list[Violation] | None,
        report: RunReport | None,
        mode: OnViolation,
        tables: list[TableReport] | None = None,
    ) -> None:
        self.connection = connection
        self.raw = raw
        self.collector = collector
        self.report = report
        #: where the stages' table reports go: the report's, unless given
        self.tables = tables if tables is not None or report is None else report.tables
        self.mode = mode
        self.refusing = False
        self.removed = 0  # rows earlier stages took out of the table

    def found(self, violations: list[Violation]) -> None:
        """Fail mode: refuse now, or collect and go on as if quarantining."""
        if not violations or self.mode != "fail":
            return
        if self.collector is None:
            raise ConstraintViolations(violation_report(violations))
        self.collector.extend(violations)
        self.refusing = True

    def earlier_stage(
        self, plan: StagePlan, base_rows: int, *, move: bool = True, judged: bool = False
    ) -> None:
        """Judge a stage; reject, count and (``move``) quarantine the rows it refuses.

        ``judged``: found clean already (judge): its table is created, not scanned.
        """
        stage = plan.stage
        started = time.perf_counter()
        if not judged:  # judging counted them already
            record_dropped(
                self.connection,
                self.report,
                stage.revision,
                stage.table,
                stage.dropped_columns(),
                relation=plan.input,
            )
        self.raw.execute(plan.create_rejected)
        violations = [] if judged else preflight(self.raw, plan.rules, stage.revision)
        self.found(violations)
        outcome = TableOutcome(stage.table, rows_before=base_rows - self.removed)
        if violations:
            for rule in plan.rules:
                self.raw.execute(rule.reject_sql)
            quoted = self.connection.dialect.identifier_preparer.quote(plan.rejected)
            quarantined, reasons = rejected_rows(self.raw, quoted).get(stage.table, (0, {}))
            outcome.rows_quarantined, outcome.reasons = quarantined, reasons
            if quarantined and move:
                for step in plan.moves:
                    self.raw.execute(step.sql)
        outcome.rows_copied = outcome.rows_before - outcome.rows_quarantined
        outcome.seconds = time.perf_counter() - started
        self.removed += outcome.rows_quarantined
        self.log(stage, outcome, move)
        if self.tables is not None:
            self.tables.append(table_report(stage.revision, outcome, violations, False))

    def log(self, stage: Stage, outcome: TableOutcome, move: bool) -> None:
        n = outcome.rows_quarantined
        if self.refusing or not move:
            log.info(
                "create_copy_swap %s [%s]: %s %s the new rules%s",
                stage.table,
                stage.revision,
                plural(n, "row"),
                "violates" if n == 1 else "violate",
                " (the run will be refused)" if self.refusing else "",
            )
            return
        log.info(
            "create_copy_swap %s [%s]: judged, %d quarantined; written with the run's "
            "next rebuild of the table",
            stage.table,
            stage.revision,
            n,
        )


def judge(
    connection: sa.Connection,
    plans: Sequence[StagePlan],
    collector: list[Violation] | None,
    report: RunReport | None,
    tables: list[TableReport],
) -> bool:
    """Scan only (fusion.plan_judged): collect the stages' violations, write nothing.

    The rejected rows' ids are kept, so that later stages, and the rules of
    tables judged after this one, read the rows the run would leave. True
    when no stage rejects a row. Dropped values are counted into ``report``;
    each stage's table report goes to ``tables``, for the caller to keep
    only if the table is not written after all (the write reports it).
    """
    raw = driver(connection)
    run = _Judged(connection, raw, collector, report, "fail", tables)
    row = raw.execute(f"SELECT count(*) FROM {plans[0].input} AS s").fetchone()
    for plan in plans:
        run.earlier_stage(plan, int(row[0]), move=False)
    return run.removed == 0


def _final_stage(run: _Judged, plan: FusedPlan, plan_for: Any, judged: bool) -> list[TableOutcome]:
    """The last stage: an ordinary plan whose rows come from the stages before."""
    stage = plan.final_stage
    final = plan.final
    violations: list[Violation] = []
    if not judged and (final.on_violation == "fail" or run.report is not None):
        checked = final if final.on_violation == "fail" else plan_for("fail").final
        violations = preflight(run.raw, checked.rules, stage.revision)
        final = lean(final, checked, violations)
    if not judged:  # judging counted them already
        record_dropped(
            run.connection,
            run.report,
            stage.revision,
            stage.table,
            stage.dropped_columns(),
            relation=plan.stages[-1].output if plan.stages else None,
        )
    run.found(violations)
    if violations and final.on_violation == "fail":  # collected: go on as if quarantining
        final = lean(plan_for("quarantine").final, final, violations)
    outcomes = execute_plan(
        run.connection, final, refusing=run.refusing, carried={plan.table: run.removed}
    )
    if run.refusing and run.collector is not None:
        run.collector.extend(followers(final, outcomes, stage.revision))
    if run.report is not None:
        for outcome in outcomes:
            if outcome.table == plan.table:
                outcome.rows_before -= run.removed
            run.report.tables.append(table_report(stage.revision, outcome, violations, False))
    return outcomes


def _count(raw: Any, connection: sa.Connection, table: str) -> int:
    quoted = connection.dialect.identifier_preparer.quote(table)
    row = raw.execute(f"SELECT count(*) FROM {quoted}").fetchone()
    return int(row[0])
