"""One table's rebuild, from its stages to the changed table: the one lifecycle.

A run meets each ``create_copy_swap`` as a :class:`~.model.Stage`. On DuckDB
a run may hold it back and fuse it with the table's later stages
(:mod:`.held`); otherwise it runs at once. Either way one table's stages,
one or several, take the same road (:func:`rebuild`):

1. what only the catalog can say (the impl's ``read_facts``): referencing
   tables, their stored DDL, kept indexes; parents re-keyed where DuckDB
   needs it; a refusal of what would break after the change;
2. one plan (:func:`.fusion.plan_rebuild`): earlier stages judged in
   place, the last one written, in both modes;
3. each earlier stage: its rules counted on the rows it finds, violations
   refused or collected, its rejected rows quarantined in its own shape;
4. the last stage: counted, leaned, refused or collected, run, verified,
   reported, with one report line per stage.

:func:`judge` walks steps 2-3 for every stage without writing anything: a
refused run's scans (the rejected ids stay for the tables judged after it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from egregora.database.migration.catalog import driver, reflect
from egregora.database.migration.copyswap.fusion import (
    RebuildPlan,
    StagePlan,
    in_mode,
    plan_rebuild,
)
from egregora.database.migration.copyswap.model import (
    QUARANTINE_SUFFIX,
    REJECTED,
    Change,
    CopySwapPlan,
    OnViolation,
    Rule,
    Stage,
)
from egregora.database.migration.copyswap.planner import plan
from egregora.database.migration.copyswap.preflight import (
    FOLLOWS,
    Violation,
    preflight,
    scalar,
    violation_report,
)
from egregora.database.migration.copyswap.writer import literal
from egregora.database.migration.definitions import referred_table
from egregora.database.migration.destroyed import record_dropped
from egregora.database.migration.errors import (
    ConstraintViolations,
    InvalidOperation,
    MigrationFailed,
    failing_as,
)
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.report import (
    RunReport,
    TableReport,
    ViolationReport,
    plural,
    rows_kept,
)

__all__ = ["Ledger", "apply", "current_definition", "judge", "rebuild"]

#: A child of Alembic's logger, so the ``alembic`` command line shows it.
log = logging.getLogger("alembic.egregora.copy_swap")


@dataclass
class Ledger:
    """Where a rebuild's refusals and table reports go (by default, the run's)."""

    violations: list[Violation] | None = None
    report: RunReport | None = None

    @classmethod
    def of(cls, impl: EgregoraImpl) -> Ledger:
        return cls(impl.run.violations, impl.run.report)


def apply(impl: EgregoraImpl, change: Change) -> None:
    """Run ``change`` in the migration: held back with the table's others, or now."""
    impl.record_constraint_names(change.target)
    held = impl.run.held
    if held is not None and held.hold(change):
        return
    impl.before_operation(change.target, change.revision)
    rebuild(impl, [change.at(current_definition(impl, change))])


def current_definition(impl: EgregoraImpl, change: Change) -> sa.Table:
    """The table as the database has it now; refused when missing or not the one expected."""
    name = change.table
    existing, _ = impl.catalog(impl.conn).tables_and_views()
    if name not in existing:
        raise InvalidOperation(
            f"create_copy_swap: table {name!r} does not exist in this database (it has "
            f"{', '.join(sorted(existing)) or 'no tables'}). Create it with op.create_table, "
            "or check the revision's table name."
        )
    previous = impl.reflected(name)
    given = change.declared
    if given is not None and set(given.columns.keys()) != set(previous.columns.keys()):
        raise InvalidOperation(
            f"create_copy_swap on {given.name}: previous= describes columns "
            f"{', '.join(given.columns.keys())}, but the database has "
            f"{', '.join(previous.columns.keys())}. The database is not at the revision this "
            "script expects; check `alembic current`."
        )
    return previous


def rebuild(
    impl: EgregoraImpl,
    stages: Sequence[Stage],
    ledger: Ledger | None = None,
    *,
    inline_keys: bool = False,
    judged: bool = False,
) -> None:
    """Change one table by ``stages`` (its operations, in order). Raises on refusal.

    ``inline_keys``: declare the table's keys in CREATE TABLE, because a
    rebuild later in the transaction references it (see rekey). ``judged``:
    a scan found no violation already (judge): not counted again.

    Fail mode with a collector (``ledger.violations``) goes on as if
    quarantining, so that later stages and operations are judged on the
    rows they would really see; the environment refuses the whole run.
    """
    ledger = ledger or Ledger.of(impl)
    run = _Rebuild(impl, stages[-1].on_violation, ledger)
    run.plan = run.prepare(stages, inline_keys)
    base_rows = run.count(stages[0].table) if run.plan.stages else 0
    for earlier in run.plan.stages:
        run.judge_stage(earlier, base_rows, judged=judged)
    run.write(judged)


def judge(
    impl: EgregoraImpl, plans: Sequence[StagePlan], ledger: Ledger, tables: list[TableReport]
) -> bool:
    """Scan only (fusion.plan_judged): collect the stages' violations, write nothing.

    The rejected rows' ids are kept, so that later stages, and the rules of
    tables judged after this one, read the rows the run would leave. True
    when no stage rejects a row. Each stage's table report goes to
    ``tables``, for the caller to keep only if the table is not written
    after all (the write reports it).
    """
    run = _Rebuild(impl, "fail", ledger, tables)
    base_rows = scalar(run.raw, f"SELECT count(*) FROM {plans[0].input} AS s")
    for earlier in plans:  # temporary tables only: no table's definition changes
        run.judge_stage(earlier, base_rows, move=False)
    return run.removed == 0


@dataclass
class _Rebuild:
    """One rebuild as it runs: what it has refused, and the rows earlier stages removed."""

    impl: EgregoraImpl
    mode: OnViolation
    ledger: Ledger
    #: where the stages' table reports go: the ledger's report, unless given
    tables: list[TableReport] | None = None
    plan: RebuildPlan | None = None
    refusing: bool = False
    removed: int = 0  # rows earlier stages took out of the table
    raw: object = field(init=False)

    def __post_init__(self) -> None:
        self.raw = driver(self.impl.conn)
        if self.tables is None and self.ledger.report is not None:
            self.tables = self.ledger.report.tables

    def prepare(self, stages: Sequence[Stage], inline_keys: bool) -> RebuildPlan:
        """Read the catalog, re-key what DuckDB needs, refuse what would break; plan."""
        impl, name = self.impl, stages[0].table
        dependents = impl.dependents(name)
        late = impl.run.late_keys(impl.conn)
        parents = {
            referred_table(fk)
            for t in (stages[-1].target, *dependents)
            for fk in t.foreign_key_constraints
        }
        for parent in sorted((parents & late) - {name}):
            rekey(impl, parent)
        impl.refuse_before_change(stages[0].previous, stages[-1].target, dependents)
        facts = impl.read_facts(stages, dependents, inline_keys)
        return plan_rebuild(in_mode(stages, self.mode), dialect=impl.dialect, facts=facts)

    def count(self, table: str) -> int:
        return scalar(self.raw, f"SELECT count(*) FROM {self.impl.quote(table)}")

    def found(self, violations: list[Violation]) -> None:
        """Fail mode: refuse now, or collect and go on as if quarantining."""
        if not violations or self.mode != "fail":
            return
        if self.ledger.violations is None:
            raise ConstraintViolations(violation_report(violations))
        self.ledger.violations.extend(violations)
        self.refusing = True

    def judge_stage(
        self, earlier: StagePlan, base_rows: int, *, move: bool = True, judged: bool = False
    ) -> None:
        """Judge a stage; reject, count and (``move``) quarantine the rows it refuses.

        ``judged``: found clean already (judge): its table is created, not scanned.
        """
        stage, started = earlier.stage, time.perf_counter()
        if not judged:  # judging counted them already
            self.record_dropped(stage, earlier.input)
        self.raw.execute(earlier.create_rejected)  # type: ignore[attr-defined]
        violations = [] if judged else preflight(self.raw, earlier.rules, stage.revision)
        self.found(violations)
        outcome = TableReport(stage.revision, stage.table, base_rows - self.removed, 0, 0, 0, 0.0)
        if violations:
            # a rule the scan found no row against rejects none (it reads the rows
            # the rules before it kept, or the same parents): not run again
            violated = {id(v.rule) for v in violations}
            for rule in earlier.rules:
                if id(rule) in violated:
                    self.raw.execute(rule.reject_sql)  # type: ignore[attr-defined]
            counted = rejected_rows(self.raw, self.impl.quote(earlier.rejected))
            outcome.rows_quarantined, outcome.reasons = counted.get(stage.table, (0, {}))
            if outcome.rows_quarantined and move:
                for step in earlier.moves:
                    self.impl.catalog_changed(step.sql)  # <table>_quarantine
                    self.raw.execute(step.sql)  # type: ignore[attr-defined]
        outcome.rows_copied = outcome.rows_before - outcome.rows_quarantined
        outcome.seconds = time.perf_counter() - started
        self.removed += outcome.rows_quarantined
        self.log_stage(stage, outcome.rows_quarantined, move)
        self.add_report(outcome, violations)

    def write(self, judged: bool) -> None:
        """The last stage: an ordinary plan whose rows come from the stages before."""
        assert self.plan is not None
        stage, final = self.plan.final_stage, self.plan.final
        violations: list[Violation] = []
        counted: dict[str, int] = {}  # in place: the table's rows, from the preflight's scan
        if not judged and (final.on_violation == "fail" or self.ledger.report is not None):
            # counted with the fail plan's rules: a quarantine plan's rules over
            # grandchildren read the rows rejected so far, which exist only while it runs
            checked = final.in_mode("fail").rules
            rows: dict[str, int] | None = {} if self.impl.in_place else None
            violations = preflight(self.raw, checked, stage.revision, rows)
            if rows is not None:
                counted = rows_of_table(final.table, checked, rows)
            if not self.impl.in_place:
                final = lean(final, violations)
        if not judged:  # judging counted them already
            self.record_dropped(stage, self.plan.stages[-1].output if self.plan.stages else None)
        self.found(violations)
        if violations and final.on_violation == "fail":  # collected: go on as if quarantining
            final = lean(final.in_mode("quarantine"), violations)
        outcomes = self.execute(final, stage.revision, violations, counted)
        if self.refusing and self.ledger.violations is not None:
            self.ledger.violations.extend(followers(final, outcomes, stage.revision))
        for sql in self.plan.cleanup:
            self.raw.execute(sql)  # type: ignore[attr-defined]
        self.impl.run.late_keys(self.impl.conn).update(final.deferred_keys)

    def execute(
        self,
        plan: CopySwapPlan,
        revision: str,
        violations: Sequence[Violation],
        counted: Mapping[str, int] | None = None,
    ) -> list[TableReport]:
        """Run every step; verify that no row went missing; report each table.

        ``counted``: tables whose rows the preflight counted already.
        """
        outcomes = {t: TableReport(revision, t, 0, 0, 0, 0, 0.0) for t in plan.tables}
        for table, sql in plan.count_sql.items():
            known = (counted or {}).get(table)
            outcomes[table].rows_before = scalar(self.raw, sql) if known is None else known
        rejected: dict[str, int] = {}  # per table, counted once
        for step in plan.steps:
            if step.phase == "move":
                if step.table not in rejected:
                    rejected[step.table] = self.rejected_count(step.table)
                if rejected[step.table] == 0:
                    continue  # no row of this table is quarantined: no quarantine table
            if step.phase == "finish":
                self.collect_quarantined(outcomes)
            outcomes[step.table].seconds += self.run_step(plan, step, revision)
            outcomes[step.table].indexes_built += step.indexes_built
        for outcome in outcomes.values():
            self.settle(plan, outcome)
            self.add_report(outcome, violations)
        return list(outcomes.values())

    def settle(self, plan: CopySwapPlan, outcome: TableReport) -> None:
        """The rows copied, checked against those before; the outcome logged."""
        carried = self.removed if outcome.table == plan.table else 0
        if self.impl.in_place:
            # Not counted again: the table is exclusively locked until COMMIT, and
            # a count here scanned a million posts while the site waited (70 ms
            # p99, measured); the only rows the plan removes are the quarantined.
            outcome.rows_copied = outcome.rows_before - outcome.rows_quarantined
        else:
            outcome.rows_copied = scalar(self.raw, plan.count_sql[outcome.table])
            verify(plan, outcome, carried)
        self.log_outcome(plan, outcome)
        outcome.rows_before -= carried
        outcome.in_place = self.impl.in_place

    def run_step(self, plan: CopySwapPlan, step: object, revision: str) -> float:
        """Run one step; its seconds. Any failure becomes one paragraph (rolled back)."""
        started = time.perf_counter()
        what = f"create_copy_swap on {plan.table} failed while rebuilding {step.table}"  # type: ignore[attr-defined]
        with failing_as(what, self.impl.run.memory_limit):
            self.impl.execute_step(step, revision)  # type: ignore[arg-type]
        return time.perf_counter() - started

    def rejected_count(self, table: str) -> int:
        rejected = self.impl.quote(REJECTED)
        name = literal(self.impl.dialect, table)
        return scalar(self.raw, f"SELECT count(DISTINCT rid) FROM {rejected} WHERE tbl = {name}")

    def collect_quarantined(self, outcomes: Mapping[str, TableReport]) -> None:
        for table, (count, reasons) in rejected_rows(self.raw, self.impl.quote(REJECTED)).items():
            outcomes[table].rows_quarantined = count
            outcomes[table].reasons.update(reasons)

    def record_dropped(self, stage: Stage, relation: str | None) -> None:
        dropped = stage.dropped_columns()
        connection, report = self.impl.conn, self.ledger.report
        record_dropped(connection, report, stage.revision, stage.table, dropped, relation=relation)

    def add_report(self, outcome: TableReport, violations: Sequence[Violation]) -> None:
        if self.tables is None:
            return
        outcome.seconds = round(outcome.seconds, 3)
        outcome.violations = [
            ViolationReport(
                v.rule.kind, v.rule.name, v.rule.expression, v.rows, [list(s) for s in v.samples]
            )
            for v in violations
            if v.table == outcome.table
        ]
        self.tables.append(outcome)

    def log_stage(self, stage: Stage, quarantined: int, move: bool) -> None:
        if self.refusing or not move:
            log.info(
                "create_copy_swap %s [%s]: %s %s the new rules%s",
                stage.table,
                stage.revision,
                plural(quarantined, "row"),
                "violates" if quarantined == 1 else "violate",
                " (the run will be refused)" if self.refusing else "",
            )
            return
        log.info(
            "create_copy_swap %s [%s]: judged, %d quarantined; written with the run's "
            "next rebuild of the table",
            stage.table,
            stage.revision,
            quarantined,
        )

    def log_outcome(self, plan: CopySwapPlan, outcome: TableReport) -> None:
        table, n = outcome.table, outcome.rows_quarantined
        if self.refusing:
            what = ("violates" if n == 1 else "violate") + " the new rules"
            if table != plan.table:
                what = ("references" if n == 1 else "reference") + " rows that do"
            log.info(
                "create_copy_swap %s: %s %s (the run will be refused)",
                table,
                plural(n, "row"),
                what,
            )
            return
        log.info(
            "create_copy_swap %s: %s, %d quarantined%s, %.2f s",
            table,
            rows_kept(outcome.rows_copied, self.impl.in_place),
            n,
            f" (to {table}{QUARANTINE_SUFFIX})" if n else "",
            outcome.seconds,
        )


def lean(plan: CopySwapPlan, violations: Sequence[Violation]) -> CopySwapPlan:
    """A quarantine plan without the scans its preflight (the fail rules) found empty.

    With no violation at all, nothing would be quarantined: the fail plan
    does the same with no rejection scan and no filter on the copy.
    Otherwise each rule of the table's own rows that rejected nothing is
    not run again (rules of referencing tables are: in quarantine they
    follow the rejected rows).
    """
    if plan.on_violation != "quarantine":
        return plan
    checked = plan.in_mode("fail")
    if not violations:
        return checked
    counted = {rule.count_sql for rule in checked.rules}
    violated = {v.rule.count_sql for v in violations}
    # a referencing table's rule is kept even when its fail-mode twin counted
    # nothing: in quarantine it follows the rows rejected (a plan that checks
    # every rule, as one renaming a column does, has both with the same count)
    empty = {
        rule.reject_sql
        for rule in plan.rules
        if rule.table == plan.table and rule.count_sql in counted and rule.count_sql not in violated
    }
    return plan.without_steps(empty)


def rows_of_table(table: str, rules: Sequence[Rule], rows: Mapping[str, int]) -> dict[str, int]:
    """``table``'s rows, if the preflight scanned all of them (a row-level rule of its own).

    In place the rules read the table itself (no earlier stage), every row.
    """
    for rule in rules:
        if rule.table == table and rule.relation in rows:
            return {table: rows[rule.relation]}
    return {}


def followers(
    plan: CopySwapPlan, outcomes: Sequence[TableReport], revision: str
) -> list[Violation]:
    """The rows of referencing tables that quarantine would move with the violating rows."""
    return [
        Violation(o.table, FOLLOWS, o.rows_quarantined, [], revision, follows=plan.table)
        for o in outcomes
        if o.table != plan.table and o.rows_quarantined
    ]


def verify(plan: CopySwapPlan, outcome: TableReport, carried: int = 0) -> None:
    """No row went missing from a rebuild (DuckDB: one writer per file, every row copied).

    ``carried``: rows of the table that earlier stages of a fused rebuild
    quarantined. In place (PostgreSQL) nothing is copied and the application
    may insert or delete rows meanwhile: there is nothing to verify.
    """
    quarantined = outcome.rows_quarantined + carried
    if outcome.rows_copied + quarantined != outcome.rows_before:
        raise MigrationFailed(
            f"create_copy_swap on {plan.table}: {outcome.table} had {outcome.rows_before} rows, "
            f"but {outcome.rows_copied} were copied and {quarantined} "
            "quarantined. The migration was rolled back; the database is unchanged. "
            "Please report this as a bug."
        )


def rekey(impl: EgregoraImpl, name: str) -> None:
    """Rebuild ``name`` unchanged, with its keys declared in CREATE TABLE.

    DuckDB 2.0 fails with an INTERNAL error (and invalidates the database)
    when a FOREIGN KEY is checked against a key that ALTER TABLE added to a
    table created in the same transaction; a key declared in CREATE TABLE
    works. Called before a rebuild that would reference such a table.
    """
    table = reflect(impl.conn, name)
    stage = Stage(table, table, revision="unknown")
    facts = impl.read_facts([stage], impl.dependents(name), inline_keys=True)
    log.info("create_copy_swap %s: re-keyed in place (DuckDB FOREIGN KEY limitation)", name)
    _Rebuild(impl, "fail", Ledger()).execute(plan(stage, impl.dialect, facts), "unknown", [])
    impl.run.late_keys(impl.conn).discard(name)


def rejected_rows(raw: object, quoted: str) -> dict[str, tuple[int, dict[str, int]]]:
    """Per table in a rejected-rows table (quoted): its rows, and each kind of rule's count."""
    found: dict[str, tuple[int, dict[str, int]]] = {}
    for table, count in raw.execute(  # type: ignore[attr-defined]
        f"SELECT tbl, count(DISTINCT rid) FROM {quoted} GROUP BY tbl"
    ).fetchall():
        found[str(table)] = (int(count), {})
    for table, reason, count in raw.execute(  # type: ignore[attr-defined]
        f"SELECT tbl, split_part(reason, ':', 1), count(*) FROM {quoted} GROUP BY 1, 2"
    ).fetchall():
        found[str(table)][1][str(reason)] = int(count)
    return found
