"""Running a create-copy-swap: reflect, preflight, run, verify, log.

The SQL comes from :func:`.planner.plan_copy_swap`, what differs by engine
from :mod:`.engine`; this module decides what to run and says what happened.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations

from egregora.database.migration.afterwards import AFTER_COMMIT, defer, own_statements, take
from egregora.database.migration.catalog import (
    driver,
    referencing_closure,
    reflect,
    stored_tables,
    tables_and_views,
)
from egregora.database.migration.copyswap.engine import Current, Engine, engine_for
from egregora.database.migration.copyswap.model import (
    QUARANTINE_SUFFIX,
    REJECTED,
    CopySwapPlan,
    RowPolicy,
    Step,
)
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.planner import plan_copy_swap
from egregora.database.migration.copyswap.preflight import (
    FOLLOWS,
    Violation,
    preflight,
    scalar,
    violation_report,
)
from egregora.database.migration.copyswap.writer import literal
from egregora.database.migration.definitions import checks_changed_in_text, referred_table
from egregora.database.migration.destroyed import record_dropped
from egregora.database.migration.errors import (
    INTERRUPTED,
    MEMORY_LIMIT_INFO,
    ConstraintViolations,
    InvalidOperation,
    MigrationFailed,
    SchemaError,
    first_line,
    is_interrupt,
    is_out_of_memory,
    out_of_memory,
)
from egregora.database.migration.report import (
    RunReport,
    TableReport,
    ViolationReport,
    plural,
    rows_kept,
)

#: A child of Alembic's logger, so the ``alembic`` command line shows it.
log = logging.getLogger("alembic.egregora.copy_swap")

_DEFERRED = "egregora_deferred_keys"


@dataclass
class TableOutcome:
    table: str
    rows_before: int = 0
    rows_copied: int = 0
    rows_quarantined: int = 0
    indexes_built: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


def run_offline(
    operations: Operations,
    operation: CreateCopySwapOp,
    on_violation: str,
    revision: str,
    policy: RowPolicy | None = None,
) -> None:
    """Write the plan into the ``--sql`` script; in fail mode, guards that stop it first."""
    if operation.previous is None:
        raise InvalidOperation(
            f"create_copy_swap on {operation.table.name} needs previous= (the definition "
            "it replaces) in offline --sql mode, where nothing can be reflected."
        )
    dialect = operations.migration_context.dialect
    queue = operations.migration_context.opts.get(AFTER_COMMIT)
    touched = {operation.table.name, *(d.name for d in operation.dependents)}
    touched |= {referred_table(fk) for fk in operation.table.foreign_key_constraints}
    for statement in take(queue, touched):  # what this script deferred on them, now
        operations.execute(statement)
    plan = plan_copy_swap(
        operation.previous,
        operation.table,
        dialect=dialect,
        column_map=operation.column_map,
        dependents=operation.dependents,
        on_violation=on_violation,
        revision=revision,
        policy=policy,
        changed_checks=checks_changed_in_text(operation.previous, operation.table),
    )
    note = engine_for(dialect.name).offline_note(operation)
    if note is not None:
        operations.execute(note)
    with own_statements():
        if plan.on_violation == "fail":  # the script stops itself on violating rows
            for rule in plan.rules:
                operations.execute(rule.guard_sql)
        for step in plan.steps:
            if not (step.online and defer(queue, revision, step.table, step.online)):
                operations.execute(step.sql)


def run_online(
    connection: sa.Connection,
    operation: CreateCopySwapOp,
    on_violation: str,
    revision: str,
    collector: list[Violation] | None = None,
    report: RunReport | None = None,
    policy: RowPolicy | None = None,
    inline_keys: bool = False,
    previous: sa.Table | None = None,
    judged: bool = False,
) -> list[TableOutcome]:
    """Plan against the live database, preflight, run, verify. Raises on refusal.

    ``inline_keys``: declare the table's keys in CREATE TABLE, because a
    rebuild later in the transaction references it (see rekey).
    ``previous``: the table as reflected already (pending.py), when nothing
    has touched it since. ``judged``: a scan found no violation already
    (fusedrun.judge): not counted again.

    In ``fail`` mode, violations raise at once, unless a ``collector`` is
    given: then they are added to it and the change goes on as if
    quarantining, so that the later operations of the run are judged on the
    data they would really see. The caller (env.py's run) reports everything
    collected and rolls the whole run back.
    """
    engine = engine_for(connection.dialect.name)
    name = operation.table.name
    engine.before_operation(connection, operation)
    if previous is None:
        previous, dependents = current_definitions(connection, operation)
    else:
        dependents = [reflect(connection, d) for d in referencing_closure(connection, name)]
    deferred = deferred_keys(connection)
    for parent in sorted((parents_of(operation.table, dependents) & deferred) - {name}):
        rekey(connection, parent)  # DuckDB only: see rekey
    now = Current(operation, previous, dependents)
    inputs = engine.catalog_inputs(connection, now)

    def plan_for(mode: str) -> CopySwapPlan:
        return plan_copy_swap(
            previous,
            operation.table,
            dialect=connection.dialect,
            column_map=operation.column_map,
            dependents=dependents,
            on_violation=mode,
            revision=revision,
            policy=policy,
            inline_keys=inline_keys,
            **inputs,
        )

    plan = plan_for(on_violation)
    engine.refuse_before_change(connection, now)
    violations: list[Violation] = []
    if not judged and (plan.on_violation == "fail" or report is not None):  # dry runs too
        # Counted with the fail plan's rules: a quarantine plan's rules over
        # grandchildren read the rows rejected so far, which exist only while
        # that plan runs.
        checked = plan if plan.on_violation == "fail" else plan_for("fail")
        violations = preflight(driver(connection), checked.rules, revision)
        if not engine.in_place:
            plan = lean(plan, checked, violations)
    dropped = operation.dropped_columns(previous)
    if not judged:  # judging counted them already
        record_dropped(connection, report, revision, name, sorted(dropped))
    refusing = plan.on_violation == "fail" and bool(violations)
    if refusing:
        if collector is None:
            raise ConstraintViolations(violation_report(violations))
        collector.extend(violations)
        plan = lean(plan_for("quarantine"), plan, violations)
    outcomes = execute_plan(connection, plan, refusing=refusing)
    if refusing and collector is not None:
        collector.extend(followers(plan, outcomes, revision))
    deferred.update(plan.deferred_keys)
    if report is not None:
        report.tables += [table_report(revision, o, violations, engine.in_place) for o in outcomes]
    return outcomes


def lean(
    plan: CopySwapPlan, checked: CopySwapPlan, violations: Sequence[Violation]
) -> CopySwapPlan:
    """A quarantine rebuild without the scans its preflight already found empty.

    ``checked`` is the fail plan the preflight counted. With no violation at
    all, nothing would be quarantined: the fail plan does the same with no
    rejection scan and no filter on the copy. Otherwise each rule of the
    table's own rows that rejected nothing is not run again (rules of
    referencing tables are: in quarantine they follow the rejected rows).
    """
    if plan.on_violation != "quarantine":
        return plan
    if not violations:
        return checked
    counted = {rule.count_sql for rule in checked.rules}
    violated = {v.rule.count_sql for v in violations}
    empty = {
        rule.reject_sql
        for rule in plan.rules
        if rule.count_sql in counted and rule.count_sql not in violated
    }
    steps = tuple(s for s in plan.steps if not (s.phase == "quarantine" and s.sql in empty))
    return dataclasses.replace(plan, steps=steps)


def current_definitions(
    connection: sa.Connection, operation: CreateCopySwapOp
) -> tuple[sa.Table, list[sa.Table]]:
    """The table and its referencing tables as the database has them now."""
    name = operation.table.name
    existing, _ = tables_and_views(connection)
    if name not in existing:
        raise InvalidOperation(
            f"create_copy_swap: table {name!r} does not exist in this database (it has "
            f"{', '.join(sorted(existing)) or 'no tables'}). Create it with op.create_table, "
            "or check the revision's table name."
        )
    previous = reflect(connection, name)
    if operation.previous is not None:
        _check_previous(operation.previous, previous)
    return previous, [reflect(connection, d) for d in referencing_closure(connection, name)]


def parents_of(target: sa.Table, dependents: Sequence[sa.Table]) -> set[str]:
    return {referred_table(fk) for t in (target, *dependents) for fk in t.foreign_key_constraints}


def followers(
    plan: CopySwapPlan, outcomes: Sequence[TableOutcome], revision: str
) -> list[Violation]:
    """The rows of referencing tables that quarantine would move with the violating rows."""
    return [
        Violation(o.table, FOLLOWS, o.rows_quarantined, [], revision, follows=plan.table)
        for o in outcomes
        if o.table != plan.table and o.rows_quarantined
    ]


def execute_plan(
    connection: sa.Connection,
    plan: CopySwapPlan,
    *,
    refusing: bool = False,
    carried: Mapping[str, int] | None = None,
) -> list[TableOutcome]:
    """Run every step; verify that no row went missing.

    ``carried``: rows of a table that earlier stages of a fused rebuild
    quarantined (fusedrun.py): counted as moved when the rows are checked.

    ``refusing``: a fail-mode run that goes on as if quarantining, to judge
    the later operations on the data they would see, and will be rolled
    back; its log says how many rows violate, not that any were quarantined.
    """
    engine = engine_for(connection.dialect.name)
    raw = driver(connection)
    assert raw is not None
    outcomes = {t: TableOutcome(t) for t in plan.tables}
    for table, sql in plan.count_sql.items():
        outcomes[table].rows_before = scalar(raw, sql)
    rejected: dict[str, int] = {}  # per table, counted once
    for step in plan.steps:
        if step.phase == "move":
            if step.table not in rejected:
                rejected[step.table] = _rejected_count(connection, raw, step.table)
            if rejected[step.table] == 0:
                continue  # no row of this table is quarantined: no quarantine table needed
        if step.phase == "finish":
            _collect_quarantined(connection, raw, outcomes)
        outcomes[step.table].seconds += _run_step(connection, engine, raw, plan, step)
        if step.phase == "index":
            outcomes[step.table].indexes_built += 1
    for table, outcome in outcomes.items():
        if engine.in_place:
            # Not counted again: the table is exclusively locked until COMMIT, and
            # a count here scanned a million posts while the site waited (70 ms
            # p99, measured); the only rows the plan removes are the quarantined.
            outcome.rows_copied = outcome.rows_before - outcome.rows_quarantined
        else:
            outcome.rows_copied = scalar(raw, plan.count_sql[table])
            _verify(plan, outcome, (carried or {}).get(table, 0))
        _log_outcome(plan, outcome, refusing, engine.in_place)
    return list(outcomes.values())


def _run_step(
    connection: sa.Connection, engine: Engine, raw: Any, plan: CopySwapPlan, step: Step
) -> float:
    """Run one step; its seconds. Any failure becomes one paragraph (rolled back)."""
    started = time.perf_counter()
    try:
        engine.execute(connection, raw, step)
    except SchemaError:
        raise
    except Exception as exc:
        if is_interrupt(exc):
            raise MigrationFailed(INTERRUPTED) from None
        if is_out_of_memory(exc):
            limit = str(connection.info.get(MEMORY_LIMIT_INFO, "unknown"))
            raise MigrationFailed(out_of_memory(first_line(exc), limit)) from None
        raise MigrationFailed(
            f"create_copy_swap on {plan.table} failed while rebuilding {step.table}: "
            f"{first_line(exc)}. The migration was rolled back; the database is unchanged."
        ) from None
    return time.perf_counter() - started


def _verify(plan: CopySwapPlan, outcome: TableOutcome, carried: int = 0) -> None:
    """No row went missing from a rebuild (DuckDB: one writer per file, every row copied).

    In place (PostgreSQL) nothing is copied and the application may insert or
    delete rows while the migration runs, so counts taken at two moments
    can't be compared: there is nothing to verify.
    """
    quarantined = outcome.rows_quarantined + carried
    if outcome.rows_copied + quarantined != outcome.rows_before:
        raise MigrationFailed(
            f"create_copy_swap on {plan.table}: {outcome.table} had {outcome.rows_before} rows, "
            f"but {outcome.rows_copied} were copied and {quarantined} "
            "quarantined. The migration was rolled back; the database is unchanged. "
            "Please report this as a bug."
        )


def _log_outcome(plan: CopySwapPlan, outcome: TableOutcome, refusing: bool, in_place: bool) -> None:
    table = outcome.table
    if refusing:
        n = outcome.rows_quarantined
        what = ("violates" if n == 1 else "violate") + " the new rules"
        if table != plan.table:
            what = ("references" if n == 1 else "reference") + " rows that do"
        log.info(
            "create_copy_swap %s: %s %s (the run will be refused)", table, plural(n, "row"), what
        )
        return
    log.info(
        "create_copy_swap %s: %s, %d quarantined%s, %.2f s",
        table,
        rows_kept(outcome.rows_copied, in_place),
        outcome.rows_quarantined,
        f" (to {table}{QUARANTINE_SUFFIX})" if outcome.rows_quarantined else "",
        outcome.seconds,
    )


def table_report(
    revision: str, outcome: TableOutcome, violations: Sequence[Violation], in_place: bool
) -> TableReport:
    return TableReport(
        revision=revision,
        table=outcome.table,
        rows_before=outcome.rows_before,
        rows_copied=outcome.rows_copied,
        rows_quarantined=outcome.rows_quarantined,
        indexes_built=outcome.indexes_built,
        seconds=round(outcome.seconds, 3),
        reasons=dict(outcome.reasons),
        in_place=in_place,
        violations=[
            ViolationReport(
                v.rule.kind, v.rule.name, v.rule.expression, v.rows, [list(s) for s in v.samples]
            )
            for v in violations
            if v.table == outcome.table
        ],
    )


def deferred_keys(connection: sa.Connection) -> set[str]:
    """Tables whose keys were added by ALTER TABLE in the connection's current transaction."""
    transaction = connection.get_transaction()
    held = connection.info.get(_DEFERRED)
    if held is None or held[0] is not transaction:
        held = (transaction, set())
        connection.info[_DEFERRED] = held
    return held[1]


def rekey(connection: sa.Connection, name: str) -> None:
    """Rebuild ``name`` unchanged, with its keys declared in CREATE TABLE.

    DuckDB 2.0 fails with an INTERNAL error (and invalidates the database)
    when a FOREIGN KEY is checked against a key that ALTER TABLE added to a
    table created in the same transaction; a key declared in CREATE TABLE
    works. Called before a rebuild that would reference such a table.
    """
    table = reflect(connection, name)
    dependents = [reflect(connection, d) for d in referencing_closure(connection, name)]
    raw = driver(connection)
    plan = plan_copy_swap(
        table,
        table,
        dialect=connection.dialect,
        dependents=dependents,
        inline_keys=True,
        stored=stored_tables(raw, [d.name for d in dependents]),
    )
    log.info("create_copy_swap %s: re-keyed in place (DuckDB FOREIGN KEY limitation)", name)
    execute_plan(connection, plan)
    deferred_keys(connection).discard(name)


def _check_previous(given: sa.Table, actual: sa.Table) -> None:
    if set(given.columns.keys()) != set(actual.columns.keys()):
        raise InvalidOperation(
            f"create_copy_swap on {given.name}: previous= describes columns "
            f"{', '.join(given.columns.keys())}, but the database has "
            f"{', '.join(actual.columns.keys())}. The database is not at the revision this "
            "script expects; check `alembic current`."
        )


def _rejected_count(connection: sa.Connection, raw: Any, table: str) -> int:
    quoted = connection.dialect.identifier_preparer.quote(REJECTED)
    name = literal(connection.dialect, table)
    return scalar(raw, f"SELECT count(DISTINCT rid) FROM {quoted} WHERE tbl = {name}")


def _collect_quarantined(
    connection: sa.Connection, raw: Any, outcomes: dict[str, TableOutcome]
) -> None:
    found = rejected_rows(raw, connection.dialect.identifier_preparer.quote(REJECTED))
    for table, (count, reasons) in found.items():
        outcomes[table].rows_quarantined = count
        outcomes[table].reasons.update(reasons)


def rejected_rows(raw: Any, quoted: str) -> dict[str, tuple[int, dict[str, int]]]:
    """Per table in a rejected-rows table (quoted): its rows, and each kind of rule's count."""
    found: dict[str, tuple[int, dict[str, int]]] = {}
    for table, count in raw.execute(
        f"SELECT tbl, count(DISTINCT rid) FROM {quoted} GROUP BY tbl"
    ).fetchall():
        found[str(table)] = (int(count), {})
    for table, reason, count in raw.execute(
        f"SELECT tbl, split_part(reason, ':', 1), count(*) FROM {quoted} GROUP BY 1, 2"
    ).fetchall():
        found[str(table)][1][str(reason)] = int(count)
    return found
