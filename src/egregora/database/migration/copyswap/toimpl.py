"""Running a create-copy-swap: reflect, preflight, copy, swap, verify, log.

The SQL comes from :func:`egregora.database.migration.copyswap.plan.plan_copy_swap`; this module
only decides what to run and says what happened.
"""

from __future__ import annotations

import inspect as pyinspect
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations

from egregora.database.migration.catalog import (
    changed_check_names,
    stored_indexes,
    stored_tables,
    tables_and_views,
)
from egregora.database.migration.config import SUPPORTED_BACKENDS
from egregora.database.migration.copyswap.op import CreateCopySwapOp, plain_name
from egregora.database.migration.copyswap.plan import (
    QUARANTINE_SUFFIX,
    REJECTED,
    CopySwapPlan,
    Rule,
    _referred_columns,
    plan_copy_swap,
    referred_table,
)
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
from egregora.database.migration.locks import LOCK_POLICY_INFO, execute_with_retries
from egregora.database.migration.report import RunReport, TableReport, ViolationReport, plural

#: A child of Alembic's logger, so the ``alembic`` command line shows it.
log = logging.getLogger("alembic.egregora.copy_swap")

ON_VIOLATION_OPTION = "egregora_on_violation"
_DEFERRED = "egregora_deferred_keys"
#: A list in the migration context's options: where ``fail`` mode collects
#: violations across every operation of the run (see environment.py).
VIOLATIONS_OPTION = "egregora_violations"
#: A RunReport in the migration context's options: filled for dry runs and -x report.
REPORT_OPTION = "egregora_report"


@dataclass
class Violation:
    table: str
    rule: Rule
    rows: int
    samples: list[tuple[Any, ...]]
    revision: str = ""
    #: set for rows that break no rule themselves but reference violating rows
    #: of this table: quarantine would move them too
    follows: str = ""

    def describe(self) -> str:
        where = f" [revision {self.revision}]" if self.revision else ""
        if self.follows:
            return (
                f"{self.table}: {plural(self.rows, 'row')} that reference those rows of "
                f"{self.follows} (directly or not) would follow them into "
                f"{self.table}{QUARANTINE_SUFFIX}{where}"
            )
        keys = ", ".join(_sample(s) for s in self.samples)
        more = ", ..." if self.rows > len(self.samples) else ""
        return (
            f"{self.rule.kind} {self.rule.name} on {self.table} ({self.rule.expression}): "
            f"{plural(self.rows, 'row')} (for example {keys}{more}){where}"
        )


#: the rule of rows that only follow a violating parent (see Violation.follows)
_FOLLOWS = Rule("", "FOREIGN KEY", "", "references a row above", "", "", "")


@dataclass
class TableOutcome:
    table: str
    rows_before: int = 0
    rows_copied: int = 0
    rows_quarantined: int = 0
    indexes_built: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


@Operations.implementation_for(CreateCopySwapOp)
def create_copy_swap(operations: Operations, operation: CreateCopySwapOp) -> None:
    context = operations.migration_context
    on_violation = operation.on_violation or context.opts.get(ON_VIOLATION_OPTION) or "fail"
    # DuckDB rebuilds the table (plan.py); PostgreSQL alters it in place (inplace.py)
    if context.dialect.name not in SUPPORTED_BACKENDS:
        raise InvalidOperation(
            f"create_copy_swap on {operation.table.name} runs on DuckDB (a rebuild) and "
            f"PostgreSQL (ALTER in place), not on {context.dialect.name}. Use Alembic's "
            "plain operations there."
        )
    revision = current_revision()
    if context.as_sql:
        _run_offline(operations, operation, on_violation, revision)
        return
    collector = context.opts.get(VIOLATIONS_OPTION)
    report: RunReport | None = context.opts.get(REPORT_OPTION)
    try:
        run_online(operations.get_bind(), operation, on_violation, revision, collector, report)
    except SchemaError:
        raise
    except Exception as exc:  # DuckDB's, SQLAlchemy's: say which operation, roll back
        if is_interrupt(exc):
            raise MigrationFailed(INTERRUPTED) from None
        raise MigrationFailed(
            f"create_copy_swap on {operation.table.name} failed: {first_line(exc)}. The "
            "migration was rolled back; the database is unchanged."
        ) from None


def _run_offline(
    operations: Operations, operation: CreateCopySwapOp, on_violation: str, revision: str
) -> None:
    if operation.previous is None:
        raise InvalidOperation(
            f"create_copy_swap on {operation.table.name} needs previous= (the definition "
            "it replaces) in offline --sql mode, where nothing can be reflected."
        )
    plan = plan_copy_swap(
        operation.previous,
        operation.table,
        dialect=operations.migration_context.dialect,
        column_map=operation.column_map,
        dependents=operation.dependents,
        on_violation=on_violation,
        revision=revision,
    )
    if operation.dependents and not _in_place_dialect(operations.migration_context.dialect):
        operations.execute(
            f"-- create_copy_swap {operation.table.name}: offline, the referencing tables "
            "are recreated from the revision's frozen definitions (online, from the "
            "database's own DDL)"
        )
    if plan.on_violation == "fail":  # the script stops itself on violating rows
        for rule in plan.rules:
            operations.execute(rule.guard_sql(operations.migration_context.dialect))
    for statement in plan.statements():
        operations.execute(statement)


def run_online(
    connection: sa.Connection,
    operation: CreateCopySwapOp,
    on_violation: str,
    revision: str,
    collector: list[Violation] | None = None,
    report: RunReport | None = None,
) -> list[TableOutcome]:
    """Plan against the live database, preflight, run, verify. Raises on refusal.

    In ``fail`` mode, violations raise at once, unless a ``collector`` is
    given: then they are added to it and the rebuild goes on as if
    quarantining, so that the later operations of the run are judged on the
    data they would really see. The caller (env.py's run) reports everything
    collected and rolls the whole run back.
    """
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
    dependents = [reflect(connection, d) for d in referencing_closure(connection, name)]
    deferred = deferred_keys(connection)
    parents = {
        referred_table(fk)
        for t in (operation.table, *dependents)
        for fk in t.foreign_key_constraints
    }
    for parent in sorted((parents & deferred) - {name}):  # DuckDB only: see rekey
        rekey(connection, parent)
    # In place (PostgreSQL), CHECKs are matched by name; ask the server which
    # of them keep their name but not their expression.
    changed = changed_check_names(connection, operation.table) if _in_place(connection) else set()

    # DuckDB: dependents come back exactly as the catalog keeps them, now
    stored = (
        {}
        if _in_place(connection)
        else stored_tables(connection.connection.driver_connection, [d.name for d in dependents])
    )

    kept = [] if _in_place(connection) else _kept_indexes(connection, previous, operation)

    def plan_for(mode: str) -> CopySwapPlan:
        return plan_copy_swap(
            previous,
            operation.table,
            dialect=connection.dialect,
            column_map=operation.column_map,
            dependents=dependents,
            on_violation=mode,
            revision=revision,
            changed_checks=changed,
            stored=stored,
            kept_indexes=kept,
        )

    plan = plan_for(on_violation)
    _refuse_breaking_views(connection, previous, operation.table)
    _refuse_incompatible_references(connection, operation.table, dependents)
    violations: list[Violation] = []
    if plan.on_violation == "fail" or report is not None:  # a dry run reports them too
        # Counted with the fail plan's rules: a quarantine plan's rules over
        # grandchildren read the rows rejected so far, which exist only while
        # that plan runs.
        rules = plan.rules if plan.on_violation == "fail" else plan_for("fail").rules
        violations = preflight(connection.connection.driver_connection, rules, revision)
    dropped = set(previous.columns.keys()) - set(operation.table.columns.keys())
    dropped -= {_plain_source(v) for v in operation.column_map.values()}
    record_dropped(connection, report, revision, name, sorted(dropped))
    refusing = plan.on_violation == "fail" and bool(violations)
    if refusing:
        if collector is None:
            raise ConstraintViolations(violation_report(violations))
        collector.extend(violations)
        plan = plan_for("quarantine")
    outcomes = execute_plan(connection, plan, refusing=refusing)
    if refusing and collector is not None:
        collector.extend(followers(plan, outcomes, revision))
    deferred.update(plan.deferred_keys)
    if report is not None:
        report.tables += [
            _table_report(revision, o, violations, _in_place(connection)) for o in outcomes
        ]
    return outcomes


def followers(
    plan: CopySwapPlan, outcomes: Sequence[TableOutcome], revision: str
) -> list[Violation]:
    """The rows of referencing tables that quarantine would move with the violating rows."""
    return [
        Violation(o.table, _FOLLOWS, o.rows_quarantined, [], revision, follows=plan.table)
        for o in outcomes
        if o.table != plan.table and o.rows_quarantined
    ]


def execute_plan(
    connection: sa.Connection, plan: CopySwapPlan, *, refusing: bool = False
) -> list[TableOutcome]:
    """Run every step; verify that no row went missing.

    ``refusing``: a fail-mode run that goes on as if quarantining, to judge
    the later operations on the data they would see, and will be rolled
    back; its log says how many rows violate, not that any were quarantined.
    """
    raw = connection.connection.driver_connection
    assert raw is not None
    preparer = connection.dialect.identifier_preparer
    outcomes = {t: TableOutcome(t) for t in plan.tables}
    for table, sql in plan.count_sql.items():
        outcomes[table].rows_before = _scalar(raw, sql)
    rejected: dict[str, int] = {}  # per table, counted once
    for step in plan.steps:
        started = time.perf_counter()
        if step.phase == "move":
            if step.table not in rejected:
                rejected[step.table] = _rejected_count(connection, raw, step.table)
            if rejected[step.table] == 0:
                continue  # no row of this table is quarantined: no quarantine table needed
        if step.phase == "finish":
            _collect_quarantined(raw, preparer.quote(REJECTED), outcomes)
        try:
            policy = connection.info.get(LOCK_POLICY_INFO)
            if policy is not None and _in_place(connection):
                execute_with_retries(raw, step.sql, preparer.quote(step.table), policy)
            else:
                raw.execute(step.sql)
        except SchemaError:
            raise
        except Exception as exc:
            if is_interrupt(exc):
                raise MigrationFailed(INTERRUPTED) from None
            if is_out_of_memory(exc):
                limit = str(connection.info.get(MEMORY_LIMIT_INFO, "unknown"))
                raise MigrationFailed(out_of_memory(first_line(exc), limit)) from None
            raise MigrationFailed(_step_failure(plan, step.table, exc)) from None
        outcome = outcomes[step.table]
        outcome.seconds += time.perf_counter() - started
        if step.phase == "index":
            outcome.indexes_built += 1
    for table, outcome in outcomes.items():
        outcome.rows_copied = _scalar(raw, plan.count_sql[table])
        # DuckDB: one writer per file, and every row is copied, so the counts
        # must add up exactly. PostgreSQL: nothing is copied (the table is
        # altered where it stands) and the application may insert or delete
        # rows while the migration runs, so counts taken at two moments can't
        # be compared; the only rows the plan removes are the quarantined ones.
        exact = not _in_place(connection)
        if exact and outcome.rows_copied + outcome.rows_quarantined != outcome.rows_before:
            raise MigrationFailed(
                f"create_copy_swap on {plan.table}: {table} had {outcome.rows_before} rows, "
                f"but {outcome.rows_copied} were copied and {outcome.rows_quarantined} "
                "quarantined. The migration was rolled back; the database is unchanged. "
                "Please report this as a bug."
            )
        kept = "kept in place" if _in_place(connection) else "copied"
        if refusing:
            n = outcome.rows_quarantined
            what = ("violates" if n == 1 else "violate") + " the new rules"
            if table != plan.table:
                what = ("references" if n == 1 else "reference") + " rows that do"
            log.info(
                "create_copy_swap %s: %s %s (the run will be refused)",
                table,
                plural(n, "row"),
                what,
            )
            continue
        log.info(
            "create_copy_swap %s: %s %s, %d quarantined%s, %.2f s",
            table,
            plural(outcome.rows_copied, "row"),
            kept,
            outcome.rows_quarantined,
            f" (to {table}{QUARANTINE_SUFFIX})" if outcome.rows_quarantined else "",
            outcome.seconds,
        )
    return list(outcomes.values())


def _table_report(
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


def preflight(raw: Any, rules: Sequence[Rule], revision: str = "") -> list[Violation]:
    """Count the rows each rule rejects, with a few sample keys; no change made.

    Row-level rules over the same relation are counted together, in one scan
    (``count(*) FILTER (WHERE ...)``, on DuckDB and PostgreSQL alike): v4c
    checks up to five of them per table.
    """
    counts = _row_rule_counts(raw, rules)
    found = []
    for index, rule in enumerate(rules):
        rows = counts[index] if index in counts else _scalar(raw, rule.count_sql)
        if rows:
            samples = [tuple(r) for r in raw.execute(rule.sample_sql).fetchall()]
            found.append(Violation(rule.table, rule, rows, samples, revision))
    return found


def _row_rule_counts(raw: Any, rules: Sequence[Rule]) -> dict[int, int]:
    """Violation counts of the row-level rules, one query per relation."""
    groups: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        if rule.relation and rule.predicate:
            groups.setdefault(rule.relation, []).append(index)
    counts: dict[int, int] = {}
    for relation, indexes in groups.items():
        if len(indexes) < 2:
            continue  # the rule's own count_sql is the same query
        filters = ", ".join(f"count(*) FILTER (WHERE {rules[i].predicate})" for i in indexes)
        row = raw.execute(f"SELECT {filters} FROM {relation} AS s").fetchone()
        counts.update({i: int(n or 0) for i, n in zip(indexes, row, strict=True)})
    return counts


def deferred_keys(connection: sa.Connection) -> set[str]:
    """Tables whose keys were added by ALTER TABLE in the connection's current transaction."""
    transaction = connection.get_transaction()
    held = connection.info.get(_DEFERRED)
    if held is None or held[0] is not transaction:
        held = (transaction, set())
        connection.info[_DEFERRED] = held
    return held[1]  # type: ignore[no-any-return]


def rekey(connection: sa.Connection, name: str) -> None:
    """Rebuild ``name`` unchanged, with its keys declared in CREATE TABLE.

    DuckDB 2.0 fails with an INTERNAL error (and invalidates the database)
    when a FOREIGN KEY is checked against a key that ALTER TABLE added to a
    table created in the same transaction; a key declared in CREATE TABLE
    works. Called before a rebuild that would reference such a table.
    """
    table = reflect(connection, name)
    dependents = [reflect(connection, d) for d in referencing_closure(connection, name)]
    raw = connection.connection.driver_connection
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


def reflect(connection: sa.Connection, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=connection)


def referencing_closure(connection: sa.Connection, name: str) -> list[str]:
    """Tables whose FOREIGN KEYs reference ``name``, directly or through each other."""
    edges = _foreign_key_edges(connection)
    found: list[str] = []
    frontier = [name]
    while frontier:
        parent = frontier.pop()
        for child, referenced in edges:
            if referenced == parent and child != name and child not in found:
                found.append(child)
                frontier.append(child)
    return found


def _check_previous(given: sa.Table, actual: sa.Table) -> None:
    if set(given.columns.keys()) != set(actual.columns.keys()):
        raise InvalidOperation(
            f"create_copy_swap on {given.name}: previous= describes columns "
            f"{', '.join(given.columns.keys())}, but the database has "
            f"{', '.join(actual.columns.keys())}. The database is not at the revision this "
            "script expects; check `alembic current`."
        )


def _refuse_breaking_views(connection: sa.Connection, previous: sa.Table, target: sa.Table) -> None:
    """Refuse before any change when a view or a macro reads a column the rebuild drops.

    DuckDB binds views and macros when they are used, not when the table
    changes: after the rebuild they would fail ("Referenced column ... not
    found") on their next use, far from the migration.
    """
    dropped = set(previous.columns.keys()) - set(target.columns.keys())
    if not dropped or _in_place(connection):
        return  # PostgreSQL itself refuses to drop a column a view reads
    raw = connection.connection.driver_connection
    readers = raw.execute(  # type: ignore[union-attr]
        "SELECT 'view', view_name, sql FROM duckdb_views() WHERE NOT internal AND NOT temporary "
        "UNION ALL SELECT 'macro', function_name, macro_definition FROM duckdb_functions() "
        "WHERE function_type IN ('macro', 'table_macro') AND NOT internal "
        "AND database_name = current_database()"
    ).fetchall()
    for kind, name, sql in readers:
        tokens = _words(sql or "")
        if previous.name.lower() in tokens:
            used = sorted(c for c in dropped if c.lower() in tokens)
            if used:
                raise InvalidOperation(
                    f"create_copy_swap on {target.name}: the {kind} {name} reads "
                    f"{', '.join(used)}, which the new definition drops or renames, so the "
                    f"{kind} would break. Nothing was changed. Drop or re-create the {kind} "
                    "without those columns earlier in the revision (op.execute), then "
                    "rebuild the table."
                )


def _kept_indexes(
    connection: sa.Connection, previous: sa.Table, operation: CreateCopySwapOp
) -> list[str]:
    """CREATE INDEX of the table's indexes that neither definition knows: kept as they are.

    A user's or another store's index on the table must survive the rebuild
    (measured: before this, rebuilding posts dropped an index on posts.slug
    that nothing declared). An index the revision's ``previous=`` declares and
    its target does not is dropped on purpose. One kept that reads a column
    the rebuild drops is refused before any change, as a view or macro is.
    """
    target = operation.table
    raw = connection.connection.driver_connection
    known = {str(index.name) for index in target.indexes}
    if operation.previous is not None:
        known |= {str(index.name) for index in operation.previous.indexes}
    dropped = set(previous.columns.keys()) - set(target.columns.keys())
    kept = []
    for index in stored_indexes(raw, target.name):
        if index.name in known:
            continue
        used = sorted(c for c in dropped if c.lower() in _words(index.expressions))
        if used:
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: the index {index.name}, which the new "
                f"definition does not declare, reads {', '.join(used)}, which it drops. "
                "Nothing was changed. Drop that index earlier in the revision "
                "(op.drop_index), or declare it on the new columns."
            )
        kept.append(index.sql)
    return kept


def _refuse_incompatible_references(
    connection: sa.Connection, target: sa.Table, dependents: Sequence[sa.Table]
) -> None:
    """Refuse before any change when a referencing column no longer matches its key.

    DuckDB rebuilds the referencing tables after the swap, and a FOREIGN KEY
    between columns of different types can't be created: without this check
    the rebuild fails half-way (rolled back, but late and with DuckDB's
    words). Types are compared as DuckDB names them (``typeof``), so that
    ``DOUBLE PRECISION`` in metadata and a reflected ``DOUBLE`` agree.
    """
    if _in_place(connection):
        return  # in place: referencing tables are not rebuilt
    raw = connection.connection.driver_connection
    compile_type = connection.dialect.type_compiler_instance.process

    def canonical(type_: sa.types.TypeEngine[Any]) -> str:
        row = raw.execute(f"SELECT typeof(CAST(NULL AS {compile_type(type_)}))").fetchone()  # type: ignore[union-attr]
        return str(row[0])

    for dependent in dependents:
        for fk in dependent.foreign_key_constraints:
            if referred_table(fk) != target.name:
                continue
            for column, referred in zip(fk.columns, _referred_columns(fk), strict=True):
                if referred not in target.columns:
                    continue  # validate() says so, with its own message
                new, have = canonical(target.columns[referred].type), canonical(column.type)
                if new != have:
                    raise InvalidOperation(
                        f"create_copy_swap on {target.name}: {dependent.name}.{column.name} "
                        f"({have}) references {target.name}.{referred}, which the new "
                        f"definition makes {new}, and DuckDB can't keep a FOREIGN KEY between "
                        "different types. Nothing was changed. In one revision: rebuild "
                        f"{dependent.name} without that FOREIGN KEY, rebuild {target.name}, "
                        f"then rebuild {dependent.name} with the column as {new} and the "
                        "FOREIGN KEY back (column_map converts its values)."
                    )


def _plain_source(value: Any) -> str:
    return plain_name(value) or ""


def _words(sql: str) -> set[str]:
    """Identifiers in ``sql``, quoted or bare, lower-cased."""
    pairs = re.findall(r'"((?:[^"]|"")+)"|(\w+)', sql)
    return {(quoted.replace('""', '"') or bare).lower() for quoted, bare in pairs}


def _in_place(connection: sa.Connection) -> bool:
    """PostgreSQL: the table is altered where it stands (inplace.py), nothing is rebuilt."""
    return _in_place_dialect(connection.dialect)


def _in_place_dialect(dialect: sa.Dialect) -> bool:
    return dialect.name != "duckdb"


def _foreign_key_edges(connection: sa.Connection) -> list[tuple[str, str]]:
    """(table, referenced table) of every FOREIGN KEY in the current schema."""
    if _in_place(connection):
        inspector = sa.inspect(connection)
        return sorted(
            {
                (table, fk["referred_table"])
                for (_, table), fks in inspector.get_multi_foreign_keys().items()
                for fk in fks
            }
        )
    raw = connection.connection.driver_connection
    rows = raw.execute(  # type: ignore[union-attr]
        "SELECT DISTINCT table_name, referenced_table FROM duckdb_constraints() "
        "WHERE constraint_type = 'FOREIGN KEY' AND schema_name = current_schema()"
    ).fetchall()
    return [(str(t), str(r)) for t, r in rows]


def _rejected_count(connection: sa.Connection, raw: Any, table: str) -> int:
    literal = sa.literal(table, sa.String()).compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    quoted = connection.dialect.identifier_preparer.quote(REJECTED)
    return _scalar(raw, f"SELECT count(DISTINCT rid) FROM {quoted} WHERE tbl = {literal}")


def _collect_quarantined(raw: Any, rejected: str, outcomes: dict[str, TableOutcome]) -> None:
    rows = raw.execute(f"SELECT tbl, count(DISTINCT rid) FROM {rejected} GROUP BY tbl").fetchall()
    for table, count in rows:
        outcomes[table].rows_quarantined = int(count)
    for table, reason, count in raw.execute(
        f"SELECT tbl, split_part(reason, ':', 1), count(*) FROM {rejected} GROUP BY 1, 2"
    ).fetchall():
        outcomes[table].reasons[reason] = int(count)


def _scalar(raw: Any, sql: str) -> int:
    row = raw.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _sample(values: tuple[Any, ...]) -> str:
    return "(" + ", ".join(repr(v) for v in values) + ")" if len(values) > 1 else repr(values[0])


def violation_report(violations: Sequence[Violation]) -> str:
    """One report of every violated constraint, and how to proceed."""
    total = len([v for v in violations if not v.follows])
    lines = "\n".join(f"  {'  ' if v.follows else ''}- {v.describe()}" for v in violations)
    return (
        f"Refused: existing rows violate {total} constraint{'s' if total != 1 else ''} "
        f"the migration would add, so nothing was changed:\n{lines}\n"
        "To proceed, fix those rows (or give the revision a column_map that converts "
        "them), or run again with -x on_violation=quarantine to move them to "
        "<table>_quarantine tables (nothing is deleted)."
    )


def _step_failure(plan: CopySwapPlan, table: str, exc: BaseException) -> str:
    return (
        f"create_copy_swap on {plan.table} failed while rebuilding {table}: "
        f"{first_line(exc)}. The migration was rolled back; the database is unchanged."
    )


def current_revision() -> str:
    """The revision whose upgrade() or downgrade() is calling us, for quarantine rows."""
    for frame in pyinspect.stack(context=0):
        module_globals = frame.frame.f_globals
        if frame.function in ("upgrade", "downgrade") and "revision" in module_globals:
            return f"{module_globals['revision']} {frame.function}"
    return "unknown"
