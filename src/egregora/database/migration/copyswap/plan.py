"""Planning a create-copy-swap: a pure function from definitions to SQL.

``plan_copy_swap(previous, target, ...)`` returns a :class:`CopySwapPlan`:
the constraint rules to check before any change, and the statements that
rebuild the table (and every table whose FOREIGN KEYs reference it) in one
transaction. Nothing here touches a database, so the same plan serves online
runs, offline ``--sql`` scripts, dry runs and tests.

Why DuckDB needs a rebuild at all, and the shape of the plan:

- DuckDB's ``ALTER TABLE`` can't add or drop CHECK and FOREIGN KEY
  constraints, so the table is created anew with its final definition.
- The new table is filled with one ``INSERT ... SELECT`` *before* its
  PRIMARY KEY, UNIQUE constraints and indexes exist: building those
  structures after the bulk copy is ~40% faster (measured on 5M rows).
- DuckDB refuses to drop a table that a FOREIGN KEY references, or to rename
  a table that has an index or is referenced. So referencing tables
  ("dependents") are stashed, dropped, and rebuilt after the swap, and the
  new table is renamed into place before its indexes are created.
- DDL is transactional in DuckDB: the whole plan commits or rolls back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from egregora.database.migration.catalog import StoredTable
from egregora.database.migration.definitions import all_checks, unique_indexes
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.sqltext import normalize_sql

OnViolation = Literal["fail", "quarantine"]
#: A column_map value: SQL text over the old row, or an expression such as
#: ``sa.column("old_name")`` that the dialect renders (and quotes).
ColumnMapValue = str | sa.ColumnElement[object]
ON_VIOLATION_CHOICES: tuple[str, ...] = ("fail", "quarantine")

QUARANTINE_SUFFIX = "_quarantine"
REJECTED = "__ccs_rejected"  # temporary: (table, row id, reason) of rows to quarantine
ROW_ID = "__ccs_rid"
NEW_SUFFIX = "__ccs_new"
STASH_SUFFIX = "__ccs_stash"
SAMPLE_SIZE = 5
QUARANTINE_COLUMNS = ("_quarantine_reason", "_quarantined_at", "_quarantine_revision")


@dataclass(frozen=True)
class Rule:
    """One constraint the rebuilt rows must satisfy, as SQL over the current data."""

    table: str
    kind: str  # conversion, NOT NULL, CHECK, PRIMARY KEY, UNIQUE, FOREIGN KEY
    name: str
    expression: str
    count_sql: str  # one row, one column: how many rows violate it
    sample_sql: str  # up to SAMPLE_SIZE rows: the keys of violating rows
    reject_sql: str  # quarantine mode: add the violating rows to REJECTED
    # A row-level rule (NOT NULL, CHECK, conversion) is a predicate over a
    # relation: rules over the same relation are counted in one scan.
    relation: str = ""
    predicate: str = ""

    @property
    def reason(self) -> str:
        return f"{self.kind} {self.name}: {self.expression}"

    def guard_sql(self, dialect: sa.Dialect) -> str:
        """Offline ``fail`` mode: a statement that errors when rows violate the rule."""
        text = (
            f"create_copy_swap refused: rows of {self.table} violate {self.reason}. "
            "Nothing was changed; fix the data or run with -x on_violation=quarantine."
        )
        if dialect.name == "duckdb":
            message = _literal(dialect, text)
            return f"SELECT error({message}) FROM ({self.count_sql}) AS v(n) WHERE n > 0"
        # PostgreSQL has no error() function: a DO block raises instead
        # (% is RAISE's placeholder, so it is doubled; $$ can't occur in names
        # the preparer quotes, nor in our generated SQL).
        message = _literal(dialect, text.replace("%", "%%"))
        return (
            f"DO $$ BEGIN IF ({self.count_sql}) > 0 THEN RAISE EXCEPTION {message}; END IF; END $$"
        )


#: What a step is for. quarantine: find rejected rows; move: put them in
#: <table>_quarantine (skipped online when there are none); finish: drop the
#: bookkeeping; alter and validate: PostgreSQL's in-place ALTER TABLE.
Phase = Literal[
    "quarantine",
    "move",
    "copy",
    "stash",
    "drop",
    "swap",
    "index",
    "comment",
    "cleanup",
    "finish",
    "alter",
    "validate",
]


@dataclass(frozen=True)
class Step:
    """One statement of the rebuild; ``phase`` says what it is for (logs, reports)."""

    phase: Phase
    table: str
    sql: str


@dataclass(frozen=True)
class CopySwapPlan:
    table: str
    tables: tuple[str, ...]  # the target first, then dependents in creation order
    on_violation: OnViolation
    rules: tuple[Rule, ...]
    steps: tuple[Step, ...]
    count_sql: Mapping[str, str] = field(default_factory=dict)  # rows now, per table
    # Tables whose PRIMARY KEY/UNIQUE the plan adds by ALTER TABLE after the
    # copy. DuckDB 2.0 can't check a FOREIGN KEY against such a key later in
    # the same transaction (an INTERNAL error that invalidates the database),
    # so whoever references them in that transaction must re-key them first.
    deferred_keys: tuple[str, ...] = ()

    def statements(self) -> list[str]:
        return [step.sql for step in self.steps]

    def __str__(self) -> str:
        lines = [f"-- create_copy_swap {self.table} (on_violation={self.on_violation})"]
        lines += [f"-- rule: {rule.table}: {rule.reason}" for rule in self.rules]
        lines += [f"{step.sql};" for step in self.steps]
        return "\n".join(lines)


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
) -> CopySwapPlan:
    """Plan the rebuild of ``previous`` into ``target``. Pure: no database access.

    ``dependents`` are the current definitions of the tables whose FOREIGN KEYs
    reference the table, directly or through each other; they are rebuilt
    unchanged, with their rows, after the swap. ``inline_keys`` declares the
    target's PRIMARY KEY and UNIQUE constraints in CREATE TABLE instead of
    adding them after the copy (see ``deferred_keys``). ``changed_checks``
    names CHECKs that keep their name but not their expression; only an
    in-place plan needs it (it matches CHECKs by name), and the caller finds
    them by asking the server (catalog.changed_check_names). ``stored`` holds
    the dependents' own DDL as DuckDB keeps it (catalog.stored_tables): a
    dependent found there is recreated exactly from it; one not found (offline
    ``--sql``, where no catalog can be read) from its definition.
    ``kept_indexes`` are CREATE INDEX statements of indexes the table has but
    the target does not define (a user's, another store's): rebuilt as they
    were (DuckDB only; PostgreSQL alters in place and keeps them).
    """
    validate(previous, target, column_map or {}, dependents, on_violation, dialect.name)
    planner = _Planner
    if dialect.name != "duckdb":  # a server that can ALTER constraints in place
        from egregora.database.migration.copyswap.postgresql import InPlacePlanner

        planner = InPlacePlanner
    p = planner(dialect, previous, target, dict(column_map or {}), list(dependents), changed_checks)
    p.stored = dict(stored or {})
    p.kept_indexes = list(kept_indexes)
    if inline_keys:
        p.inline_keys.add(target.name)
    mode: OnViolation = "quarantine" if on_violation == "quarantine" else "fail"
    rules = p.target_rules(mode) + p.dependent_rules(mode)
    steps = p.steps(mode, rules, revision)
    return CopySwapPlan(
        table=target.name,
        tables=(target.name, *(d.name for d in p.dependents)),
        on_violation=mode,
        rules=tuple(rules),
        steps=tuple(steps),
        count_sql={t: f"SELECT count(*) FROM {p.q(t)}" for t in (target.name, *p.dep_names)},
        deferred_keys=tuple(
            t.name
            for t in (target, *p.dependents)
            if p.defers_keys
            and _keys(t)
            and t.name not in p.inline_keys
            and (t is target or t.name not in p.stored)
        ),
    )


def validate(
    previous: sa.Table,
    target: sa.Table,
    column_map: Mapping[str, ColumnMapValue],
    dependents: Sequence[sa.Table],
    on_violation: str,
    dialect_name: str = "duckdb",
) -> None:
    """Refuse arguments that can't work, before anything is planned or run."""
    _check_on_violation(on_violation)
    _check_tables(previous, target, dependents)
    _check_column_map(target, column_map)
    _check_filled(previous, target, column_map)
    if dialect_name == "duckdb":
        _check_duckdb_limits(previous, target, dependents)
    _check_references(target, dependents)


def _check_on_violation(on_violation: str) -> None:
    if on_violation not in ON_VIOLATION_CHOICES:
        raise InvalidOperation(
            f"create_copy_swap: on_violation={on_violation!r} is not one of "
            f"{', '.join(ON_VIOLATION_CHOICES)}. Use 'fail' to stop on rows that violate "
            "the new constraints, or 'quarantine' to move them to <table>_quarantine."
        )


def _check_tables(previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]) -> None:
    for table in (previous, target, *dependents):
        if table.schema is not None:
            raise InvalidOperation(
                f"create_copy_swap works on tables of the connection's current schema, but "
                f"{table.name} is given schema={table.schema!r}. Nothing was changed. Run the "
                f"migration with that schema as the current one (DuckDB: SET schema = "
                f"'{table.schema}'; PostgreSQL: search_path), and leave schema= out."
            )
    if previous.name != target.name:
        raise InvalidOperation(
            f"create_copy_swap rebuilds one table under its own name, but the previous "
            f"definition is {previous.name!r} and the target {target.name!r}. Rename the "
            "table with op.rename_table in a step of its own."
        )


def _check_column_map(target: sa.Table, column_map: Mapping[str, ColumnMapValue]) -> None:
    unknown = sorted(set(column_map) - set(target.columns.keys()))
    if unknown:
        raise InvalidOperation(
            f"create_copy_swap on {target.name}: column_map names {', '.join(unknown)}, "
            f"which the target definition does not have (it has "
            f"{', '.join(target.columns.keys())}). Keys are target columns; values are SQL "
            "expressions over the old row."
        )
    for key, expression in column_map.items():
        if isinstance(expression, sa.ColumnElement):
            continue
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: column_map[{key!r}] must be a "
                "non-empty SQL expression over the old row, such as 'old_name' or "
                "'CAST(old_name AS UUID)'."
            )
        if ";" in _unquoted(expression):
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: column_map[{key!r}] = "
                f"{expression!r} contains a ';'. It must be one SQL expression, not "
                "statements."
            )


def _check_filled(
    previous: sa.Table, target: sa.Table, column_map: Mapping[str, ColumnMapValue]
) -> None:
    """Every NOT NULL column of the target gets a value for the rows already there."""
    old_columns = set(previous.columns.keys())
    for column in target.columns:
        filled = (
            column.name in column_map
            or column.name in old_columns
            or column.server_default is not None
            or _implicit_sequence(column)
            or column.computed is not None
        )
        if not filled and not column.nullable:
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: the new column {column.name} is NOT "
                "NULL but has no server default, no column of the same name in the old "
                f"table, and no column_map entry, so its rows can't be filled. Add "
                f"column_map={{{column.name!r}: '<SQL over the old row>'}} or a "
                "server_default."
            )


def _check_duckdb_limits(
    previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]
) -> None:
    """What a DuckDB rebuild can't do: a column named rowid, a self-referencing FOREIGN KEY."""
    for table in (previous, target, *dependents):
        for column in table.columns:
            if column.name.lower() == "rowid":
                raise InvalidOperation(
                    f"create_copy_swap on {target.name}: table {table.name} has a column "
                    "named rowid, which hides DuckDB's row identifier that the rebuild "
                    "uses to track rows. Rename that column first (op.alter_column)."
                )
        for fk in table.foreign_key_constraints:
            if referred_table(fk) == table.name:
                raise InvalidOperation(
                    f"create_copy_swap on {target.name}: table {table.name} has a "
                    "self-referencing FOREIGN KEY. DuckDB checks it against the rows as "
                    "they were before each statement, so a bulk copy can't satisfy it. "
                    "Keep that reference unenforced (no FOREIGN KEY) on DuckDB."
                )


def _check_references(target: sa.Table, dependents: Sequence[sa.Table]) -> None:
    """Every referencing table still finds the columns it references."""
    target_columns = set(target.columns.keys())
    for dependent in dependents:
        for fk in dependent.foreign_key_constraints:
            if referred_table(fk) != target.name:
                continue
            missing = [c for c in _referred_columns(fk) if c not in target_columns]
            if missing:
                raise InvalidOperation(
                    f"create_copy_swap on {target.name}: {dependent.name} references "
                    f"{target.name}({', '.join(missing)}), which the new definition no "
                    f"longer has. Rebuild {dependent.name} first, in the same revision, to "
                    "reference the new columns."
                )


class _Planner:
    """The SQL text of one plan; every identifier goes through the preparer."""

    #: whether keys are added by ALTER after the copy (see CopySwapPlan.deferred_keys)
    defers_keys = True

    def __init__(
        self,
        dialect: sa.Dialect,
        previous: sa.Table,
        target: sa.Table,
        column_map: dict[str, ColumnMapValue],
        dependents: list[sa.Table],
        changed_checks: Iterable[str] = (),
    ) -> None:
        self.dialect = dialect
        self.changed_checks = frozenset(changed_checks)  # read by the in-place planner
        self.preparer = dialect.identifier_preparer
        self.ddl = dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]
        self.previous = previous
        self.target = target
        self.column_map = column_map
        self.dependents = _creation_order(dependents)
        self.dep_names = [d.name for d in self.dependents]
        self.stored: dict[str, StoredTable] = {}  # dependents' own DDL (plan_copy_swap)
        self.kept_indexes: list[str] = []  # the table's indexes the definition lacks
        # DuckDB 2.0 fails with an INTERNAL error (and invalidates the database)
        # when a FOREIGN KEY is checked against a key that ALTER TABLE ADD
        # PRIMARY KEY/UNIQUE created in the same transaction. Tables that rebuilt
        # tables reference therefore get their keys inline, in CREATE TABLE.
        self.inline_keys = {
            referred_table(fk) for d in self.dependents for fk in d.foreign_key_constraints
        }
        self.name = target.name
        # How rows are told apart while the plan runs: DuckDB's rowid, or
        # PostgreSQL's ctid (stable within the transaction: no row is updated
        # before the rejected ones are moved). Only DuckDB has TRY(...), which
        # turns a failed conversion into NULL, so only DuckDB can report (or
        # quarantine) rows whose values don't convert; elsewhere a failed
        # conversion fails the migration, which is rolled back.
        duckdb = dialect.name == "duckdb"
        self.row_id = "rowid" if duckdb else "ctid"
        self.row_id_type = "BIGINT" if duckdb else "TID"
        self.can_try = duckdb
        # DuckDB keeps a FOREIGN KEY registered under the name its table was
        # created with: a table created as t__ccs_new with a FOREIGN KEY and
        # renamed to t in the same transaction leaves its parent believing
        # t__ccs_new references it, and the parent can no longer be dropped.
        # A table with FOREIGN KEYs is therefore stashed, then created under
        # its own name (one extra, constraint-free copy).
        self.stash_target = bool(target.foreign_key_constraints)
        self.staged = self.name + (STASH_SUFFIX if self.stash_target else NEW_SUFFIX)
        old = {c.name: c for c in previous.columns}
        # target column -> SQL over the old row, and whether it converts a value
        self.values: dict[str, tuple[str, bool]] = {}
        for column in target.columns:
            type_sql = self.type_sql(column.type)
            if column.computed is not None:
                continue  # a generated column computes itself: never copied into
            if column.name in column_map:
                expression = self.expression_sql(column_map[column.name])
                self.values[column.name] = (f"CAST(({expression}) AS {type_sql})", True)
            elif column.name in old:
                same = self.known_type_sql(old[column.name].type) in (type_sql, None)
                ref = self.q(column.name)
                self.values[column.name] = (ref if same else f"CAST({ref} AS {type_sql})", not same)
        self.changed = {name for name, (_, converted) in self.values.items() if converted}

    # -- quoting and rendering -------------------------------------------------

    def q(self, name: str) -> str:
        return str(self.preparer.quote(name))

    def cols(self, names: Iterable[str], prefix: str = "") -> str:
        return ", ".join(prefix + self.q(n) for n in names)

    def expression_sql(self, value: ColumnMapValue) -> str:
        if isinstance(value, str):
            return value
        return str(self.ddl.sql_compiler.process(value, include_table=False, literal_binds=True))

    def try_(self, value: str) -> str:
        return f"TRY({value})" if self.can_try else value

    def type_sql(self, type_: sa.types.TypeEngine[object]) -> str:
        return str(self.dialect.type_compiler_instance.process(type_))

    def known_type_sql(self, type_: sa.types.TypeEngine[object]) -> str | None:
        """A previous column's type as SQL; None when reflection could not name it.

        duckdb-sqlalchemy reflects some DuckDB types (an empty STRUCT, TUPLE)
        as NullType. The target then says what the column is, and the values
        are taken as they are (the target's CREATE TABLE gives the type).
        """
        if isinstance(type_, sa.types.NullType):
            return None
        return self.type_sql(type_)

    def check_sql(self, check: sa.CheckConstraint | sa.Computed) -> str:
        """The SQL of a CHECK's (or a generated column's) expression."""
        return str(
            self.ddl.sql_compiler.process(check.sqltext, include_table=False, literal_binds=True)
        )

    # -- the relation each rule reads -----------------------------------------

    def source(self, safe: bool = True) -> str:
        """The old rows mapped to the target columns, with their row id.

        ``safe`` wraps conversions in TRY(...), so that a failed cast reads as
        NULL here and is reported by its own rule instead of aborting.
        """
        items = [f"{self.row_id} AS {self.q(ROW_ID)}"]
        for column in self.target.columns:
            if column.name in self.values:
                value, converted = self.values[column.name]
                value = self.try_(value) if safe and converted else value
            elif column.computed is not None:  # what the new table will compute
                value = f"({self.check_sql(column.computed)})"
            else:  # a new column: what the copy will give it, its default or NULL
                value = self.new_column_value(column)
            items.append(f"{value} AS {self.q(column.name)}")
        return f"(SELECT {', '.join(items)} FROM {self.q(self.name)})"

    def new_column_value(self, column: sa.Column[object]) -> str:
        """A new column's value in the rows being judged: its server default, else NULL.

        Rules over new columns (a CHECK or FOREIGN KEY that comes with the
        column) read it from the same relation as every other rule.
        """
        type_sql = self.type_sql(column.type)
        if isinstance(column.server_default, sa.DefaultClause) and not _implicit_sequence(column):
            return f"CAST({self.default_sql(column)} AS {type_sql})"
        return f"CAST(NULL AS {type_sql})"

    def default_sql(self, column: sa.Column[object]) -> str:
        """A column's server default as SQL (a plain string becomes a literal)."""
        default = column.server_default
        assert isinstance(default, sa.DefaultClause)
        arg = default.arg
        if isinstance(arg, str):
            return _literal(self.dialect, arg)
        return str(self.ddl.sql_compiler.process(arg, literal_binds=True))  # type: ignore[arg-type]

    def survivors(self, table: str, relation: str) -> str:
        return (
            f"(SELECT * FROM {relation} AS s WHERE s.{self.q(ROW_ID)} NOT IN "
            f"(SELECT rid FROM {self.q(REJECTED)} WHERE tbl = {_literal(self.dialect, table)}))"
        )

    def rows_of(self, table: str) -> str:
        return f"(SELECT {self.row_id} AS {self.q(ROW_ID)}, * FROM {self.q(table)})"

    # -- rules ------------------------------------------------------------------

    def target_rules(self, mode: OnViolation) -> list[Rule]:
        rules: list[Rule] = []
        src = self.source()
        old = {c.name: c for c in self.previous.columns}
        untouched = not self.changed and not self.column_map
        for name in self.changed if self.can_try else ():
            value, _ = self.values[name]
            predicate = f"TRY(({value}) IS NULL) IS NULL"
            rules.append(
                self.rule(self.name, "conversion", name, value, self.rows_of(self.name), predicate)
            )
        for column in self.target.columns:
            if column.nullable or column.name not in self.values:
                continue
            was = old.get(column.name)
            if was is not None and not was.nullable and column.name not in self.changed:
                continue
            predicate = f"{self.q(column.name)} IS NULL"
            if column.name in self.changed and self.can_try:  # a failed conversion: own rule
                value, _ = self.values[column.name]
                predicate += f" AND TRY(({value}) IS NULL) IS NOT NULL"
            rules.append(
                self.rule(
                    self.name,
                    "NOT NULL",
                    f"{self.name}.{column.name}",
                    f"{column.name} IS NOT NULL",
                    src,
                    predicate,
                )
            )
        old_checks = {_norm(self.check_sql(c)) for c in _checks(self.previous)}
        for check in _checks(self.target):
            expression = self.check_sql(check)
            if untouched and _norm(expression) in old_checks:
                continue  # the same CHECK over the same values already holds
            rules.append(
                self.rule(
                    self.name,
                    "CHECK",
                    str(check.name or "check"),
                    expression,
                    src,
                    f"NOT ({expression})",
                )
            )
        # Orphans before duplicates: in quarantine mode each rule sees only the
        # rows earlier rules kept, so a duplicate group whose first row is an
        # orphan keeps its next, valid row.
        old_fks = {_fk_signature(fk) for fk in self.previous.foreign_key_constraints}
        for fk in self.target.foreign_key_constraints:
            if untouched and _fk_signature(fk) in old_fks:
                continue
            parent = f"(SELECT * FROM {self.q(referred_table(fk))})"
            rules.append(self.fk_rule(self.name, fk, src, parent, parent))
        old_keys = {tuple(k) for k in _unique_keys(self.previous)}
        old_keys |= {tuple(columns) for _, columns in unique_indexes(self.previous)}
        for kind, name, columns in _keys(self.target):
            if untouched and tuple(columns) in old_keys:
                continue
            rules.append(self.unique_rule(self.name, kind, name, columns, src))
        for name, columns in unique_indexes(self.target):  # built after the copy: judged first
            if untouched and tuple(columns) in old_keys:
                continue
            rules.append(self.unique_rule(self.name, "UNIQUE INDEX", name, columns, src))
        return rules

    def dependent_rules(self, mode: OnViolation) -> list[Rule]:
        """Rows of referencing tables left without a parent by the rebuild."""
        rules: list[Rule] = []
        keys_change = bool(self.changed or self.column_map)
        for dependent in self.dependents:
            for fk in dependent.foreign_key_constraints:
                parent_name = referred_table(fk)
                if parent_name == self.name:
                    if mode == "fail" and not keys_change:
                        continue  # no parent row is removed and no key value changes
                    planned = self.source()
                    final = self.final_target()
                elif parent_name in self.dep_names:
                    if mode == "fail":
                        continue  # unchanged rows of an unchanged, enforced reference
                    planned = final = self.survivors(parent_name, self.rows_of(parent_name))
                else:
                    continue
                rules.append(
                    self.fk_rule(dependent.name, fk, self.rows_of(dependent.name), planned, final)
                )
        return rules

    def final_target(self) -> str:
        """The target's rows as dependents will see them: the new table."""
        return f"(SELECT * FROM {self.q(self.staged)})"

    def rule(
        self, table: str, kind: str, name: str, expression: str, relation: str, predicate: str
    ) -> Rule:
        # A row-level rule judges every row, even one another rule rejected, so
        # that a quarantined row carries all of its reasons.
        keys = self.sample_keys(table)
        reason = _literal(self.dialect, f"{kind} {name}: {expression}")
        return Rule(
            table=table,
            kind=kind,
            name=name,
            expression=expression,
            relation=relation,
            predicate=predicate,
            count_sql=f"SELECT count(*) FROM {relation} AS s WHERE {predicate}",
            sample_sql=(
                f"SELECT {self.cols(keys)} FROM {relation} AS s WHERE {predicate} "
                f"ORDER BY {self.cols(keys)} LIMIT {SAMPLE_SIZE}"
            ),
            reject_sql=(
                f"INSERT INTO {self.q(REJECTED)} SELECT {_literal(self.dialect, table)}, "
                f"s.{self.q(ROW_ID)}, {reason} FROM {relation} AS s WHERE {predicate}"
            ),
        )

    def unique_rule(
        self, table: str, kind: str, name: str, columns: Sequence[str], relation: str
    ) -> Rule:
        cols = self.cols(columns)
        not_null = " AND ".join(f"{self.q(c)} IS NOT NULL" for c in columns)
        # Which duplicate is kept: the earliest created_at where there is one,
        # then the lowest primary key (post_authors: the first position), then
        # the order the rows were stored in.
        keys = ["created_at"] if self.has_created_at(table) else []
        keys += [c for c in self.pk_columns(table) if c not in columns]
        order = "".join(f"{self.q(k)} ASC NULLS LAST, " for k in keys)
        ranked = (
            f"(SELECT *, row_number() OVER (PARTITION BY {cols} ORDER BY {order}"
            f"{self.q(ROW_ID)}) AS __ccs_rank FROM {{rel}} AS r WHERE {not_null})"
        )
        expression = f"{kind} ({', '.join(columns)})"
        reason = _literal(self.dialect, f"{kind} {name}: duplicate of an earlier row")
        groups = (
            f"SELECT count(*) - 1 AS extra FROM {relation} AS s WHERE {not_null} "
            f"GROUP BY {cols} HAVING count(*) > 1"
        )
        return Rule(
            table=table,
            kind=kind,
            name=name,
            expression=expression,
            count_sql=f"SELECT coalesce(sum(extra), 0)::BIGINT FROM ({groups}) AS g",
            sample_sql=(
                f"SELECT {cols} FROM {relation} AS s WHERE {not_null} GROUP BY {cols} "
                f"HAVING count(*) > 1 ORDER BY {cols} LIMIT {SAMPLE_SIZE}"
            ),
            reject_sql=(
                f"INSERT INTO {self.q(REJECTED)} SELECT {_literal(self.dialect, table)}, "
                f"s.{self.q(ROW_ID)}, {reason} FROM "
                f"{ranked.format(rel=self.survivors(table, relation))} AS s "
                "WHERE __ccs_rank > 1"
            ),
        )

    def fk_rule(
        self,
        table: str,
        fk: sa.ForeignKeyConstraint,
        relation: str,
        planned_parent: str,
        final_parent: str,
    ) -> Rule:
        columns = [c.name for c in fk.columns]
        referred = _referred_columns(fk)
        parent = referred_table(fk)
        not_null = " AND ".join(f"s.{self.q(c)} IS NOT NULL" for c in columns)
        match = " AND ".join(
            f"p.{self.q(r)} = s.{self.q(c)}" for c, r in zip(columns, referred, strict=True)
        )

        def orphan(parents: str) -> str:
            return f"{not_null} AND NOT EXISTS (SELECT 1 FROM {parents} AS p WHERE {match})"

        name = str(fk.name or f"fk_{table}_{'_'.join(columns)}_{parent}")
        expression = f"({', '.join(columns)}) REFERENCES {parent} ({', '.join(referred)})"
        keys = self.sample_keys(table)
        reason = _literal(self.dialect, f"FOREIGN KEY {name}: no row {expression}")
        return Rule(
            table=table,
            kind="FOREIGN KEY",
            name=name,
            expression=expression,
            count_sql=f"SELECT count(*) FROM {relation} AS s WHERE {orphan(planned_parent)}",
            sample_sql=(
                f"SELECT {self.cols(keys, 's.')} FROM {relation} AS s WHERE "
                f"{orphan(planned_parent)} ORDER BY {self.cols(keys, 's.')} LIMIT {SAMPLE_SIZE}"
            ),
            reject_sql=(
                f"INSERT INTO {self.q(REJECTED)} SELECT {_literal(self.dialect, table)}, "
                f"s.{self.q(ROW_ID)}, {reason} FROM {self.survivors(table, relation)} AS s "
                f"WHERE {orphan(final_parent)}"
            ),
        )

    def definition(self, table: str) -> sa.Table:
        if table == self.name:
            return self.target
        return next(d for d in self.dependents if d.name == table)

    def pk_columns(self, table: str) -> list[str]:
        return [c.name for c in self.definition(table).primary_key.columns]

    def has_created_at(self, table: str) -> bool:
        return "created_at" in self.definition(table).columns

    def sample_keys(self, table: str) -> list[str]:
        definition = self.definition(table)
        pk = [c.name for c in definition.primary_key.columns]
        if pk:
            return pk
        for candidate in ("id", f"{table}_id", "task_id"):
            if candidate in definition.columns:
                return [candidate]
        return [next(iter(definition.columns)).name]

    # -- statements -------------------------------------------------------------

    def steps(self, mode: OnViolation, rules: list[Rule], revision: str) -> list[Step]:
        steps: list[Step] = []
        name, staged = self.name, self.staged
        quarantine = mode == "quarantine"
        if quarantine:
            steps.append(
                Step(
                    "quarantine",
                    name,
                    f"CREATE TEMPORARY TABLE {self.q(REJECTED)} "
                    f"(tbl VARCHAR, rid {self.row_id_type}, reason VARCHAR)",
                )
            )
            steps += [Step("quarantine", name, r.reject_sql) for r in rules if r.table == name]
            steps += self.quarantine_steps(self.previous, revision)
        # 1. the new rows: straight into the new table (renamed into place
        #    later), or into a plain stash when the table has FOREIGN KEYs
        select = ", ".join(f"{value} AS {self.q(c)}" for c, (value, _) in self.values.items())
        source = f"SELECT {select} FROM {self.q(name)}{self.not_rejected(name, quarantine)}"
        steps += [
            Step("copy", name, f"CREATE SEQUENCE IF NOT EXISTS {sequence}")
            for sequence in self.implicit_sequences(self.target)
        ]
        if self.stash_target:
            steps.append(Step("stash", name, f"CREATE TABLE {self.q(staged)} AS {source}"))
        else:
            steps.append(Step("copy", name, self.create_sql(self.target, staged)))
            steps.append(Step("copy", name, self.insert_sql(staged, list(self.values), source)))
        # 2. referencing tables: judged against the new rows, then stashed
        for dependent in self.dependents:
            dep = dependent.name
            if quarantine:
                steps += [Step("quarantine", dep, r.reject_sql) for r in rules if r.table == dep]
                steps += self.quarantine_steps(dependent, revision)
            steps.append(
                Step(
                    "stash",
                    dep,
                    f"CREATE TABLE {self.q(dep + STASH_SUFFIX)} AS "
                    f"SELECT * FROM {self.q(dep)}{self.not_rejected(dep, quarantine)}",
                )
            )
        # 3. drop children before parents, then put the new table in place
        for dependent in reversed(self.dependents):
            steps.append(Step("drop", dependent.name, f"DROP TABLE {self.q(dependent.name)}"))
        steps.append(Step("drop", name, f"DROP TABLE {self.q(name)}"))
        if self.stash_target:
            steps += self.restore_steps(self.target, list(self.values))
        else:
            steps.append(
                Step("swap", name, f"ALTER TABLE {self.q(staged)} RENAME TO {self.q(name)}")
            )
            steps += self.finish_steps(self.target)
        steps += self.sequence_steps(self.target)
        # indexes someone else made on the table (not in the definition): again
        steps += [Step("index", name, sql) for sql in self.kept_indexes]
        # 4. referencing tables again, parents first, with their rows
        for dependent in self.dependents:
            stored = self.stored.get(dependent.name)
            if stored is not None:
                steps += self.restore_stored(dependent, stored)
            else:
                steps += self.restore_steps(dependent, list(dependent.columns.keys()))
        if quarantine:
            steps.append(Step("finish", name, f"DROP TABLE {self.q(REJECTED)}"))
        return steps

    def implicit_sequences(self, table: sa.Table) -> list[str]:
        """The sequences duckdb-sqlalchemy backs an integer primary key with.

        Its CREATE TABLE creates them; a table made another way has none, so
        the rebuild creates any that are missing (as the dialect would).
        """
        from duckdb_sqlalchemy import _implicit_sequence_ddl_name

        return [
            _implicit_sequence_ddl_name(self.preparer, c)
            for c in table.columns
            if _implicit_sequence(c)
        ]

    def sequence_steps(self, table: sa.Table) -> list[Step]:
        """Move each implicit sequence past the largest key the copy brought.

        A sequence the rebuild creates starts at 1, while the copied rows may
        already hold 1, 2, 3...: the next insert without an id would fail
        with a duplicate key. ``setval`` moves it forward, never back.
        """
        from duckdb_sqlalchemy import _implicit_sequence_ddl_name

        steps = []
        for column in table.columns:
            if not _implicit_sequence(column):
                continue
            sequence = _implicit_sequence_ddl_name(self.preparer, column)
            name = _literal(self.dialect, sequence.strip('"'))
            steps.append(
                Step(
                    "copy",
                    table.name,
                    f"SELECT setval({_literal(self.dialect, sequence)}, m) FROM "
                    f"(SELECT max({self.q(column.name)}) AS m FROM {self.q(table.name)}) AS k, "
                    f"duckdb_sequences() AS s WHERE s.sequence_name = {name} "
                    "AND s.schema_name = current_schema() AND m IS NOT NULL "
                    "AND (s.last_value IS NULL OR m > s.last_value)",
                )
            )
        return steps

    def not_rejected(self, table: str, quarantine: bool) -> str:
        if not quarantine:
            return ""
        return (
            f" WHERE {self.row_id} NOT IN (SELECT rid FROM {self.q(REJECTED)} "
            f"WHERE tbl = {_literal(self.dialect, table)})"
        )

    def insert_sql(self, into: str, columns: list[str], select: str) -> str:
        return f"INSERT INTO {self.q(into)} ({self.cols(columns)}) {select}"

    def restore_steps(self, table: sa.Table, columns: list[str]) -> list[Step]:
        """Create ``table`` under its own name and fill it from its stash."""
        stash = table.name + STASH_SUFFIX
        select = f"SELECT {self.cols(columns)} FROM {self.q(stash)}"
        return [
            Step("copy", table.name, self.create_sql(table, table.name)),
            Step("copy", table.name, self.insert_sql(table.name, columns, select)),
            Step("cleanup", table.name, f"DROP TABLE {self.q(stash)}"),
            *self.finish_steps(table),
        ]

    def restore_stored(self, table: sa.Table, stored: StoredTable) -> list[Step]:
        """Recreate a dependent from its own stored DDL, then fill it from its stash.

        The operation does not mean to change a dependent: its types,
        collations, defaults, generated columns, keys and indexes come back
        exactly as DuckDB kept them. Generated columns compute themselves.
        """
        name = table.name
        stash = name + STASH_SUFFIX
        columns = [c.name for c in table.columns if c.name not in stored.generated]
        select = f"SELECT {self.cols(columns)} FROM {self.q(stash)}"
        steps = [
            Step("copy", name, stored.create_sql),
            Step("copy", name, self.insert_sql(name, columns, select)),
            Step("cleanup", name, f"DROP TABLE {self.q(stash)}"),
            *(Step("index", name, sql) for sql in stored.index_sql),
        ]
        if stored.comment is not None:
            comment = _literal(self.dialect, stored.comment)
            steps.append(Step("comment", name, f"COMMENT ON TABLE {self.q(name)} IS {comment}"))
        for column, text in stored.column_comments:
            steps.append(
                Step(
                    "comment",
                    name,
                    f"COMMENT ON COLUMN {self.q(name)}.{self.q(column)} IS "
                    f"{_literal(self.dialect, text)}",
                )
            )
        return steps

    def create_sql(self, table: sa.Table, as_name: str) -> str:
        """CREATE TABLE for ``table`` under ``as_name``; keys only where inline_keys says."""
        scratch = sa.MetaData()
        stubs: dict[str, dict[str, sa.types.TypeEngine[object]]] = {}
        for fk in table.foreign_key_constraints:
            ref = stubs.setdefault(referred_table(fk), {})
            for column, referred in zip(fk.columns, _referred_columns(fk), strict=True):
                ref[referred] = column.type
        for ref_name, ref_cols in stubs.items():
            sa.Table(ref_name, scratch, *(sa.Column(c, t) for c, t in ref_cols.items()))
        columns = []
        for column in table.columns:
            generated = (
                [sa.Computed(column.computed.sqltext, persisted=column.computed.persisted)]
                if column.computed is not None
                else []
            )
            copy = sa.Column(
                column.name,
                column.type,
                *generated,
                nullable=column.nullable,
                server_default=None
                if generated
                else _server_default(column, self.preparer, self.dialect),
                autoincrement=False,
            )
            columns.append(copy)
        constraints: list[sa.Constraint] = [
            sa.CheckConstraint(sa.text(self.check_sql(c))) for c in _checks(table)
        ]
        constraints += [
            sa.ForeignKeyConstraint(
                [c.name for c in fk.columns],
                [f"{referred_table(fk)}.{r}" for r in _referred_columns(fk)],
            )
            for fk in table.foreign_key_constraints
        ]
        if table.name in self.inline_keys:
            constraints += [
                sa.PrimaryKeyConstraint(*key_columns)
                if kind == "PRIMARY KEY"
                else sa.UniqueConstraint(*key_columns)
                for kind, _name, key_columns in _keys(table)
            ]
        copy_table = sa.Table(as_name, scratch, *columns, *constraints)
        return str(CreateTable(copy_table).compile(dialect=self.dialect)).strip()

    def finish_steps(self, table: sa.Table) -> list[Step]:
        """Keys, indexes and comments, built after the bulk copy, in that order."""
        steps: list[Step] = []
        for kind, _name, columns in [] if table.name in self.inline_keys else _keys(table):
            clause = "PRIMARY KEY" if kind == "PRIMARY KEY" else "UNIQUE"
            steps.append(
                Step(
                    "index",
                    table.name,
                    f"ALTER TABLE {self.q(table.name)} ADD {clause} ({self.cols(columns)})",
                )
            )
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            steps.append(
                Step(
                    "index",
                    table.name,
                    str(CreateIndex(index).compile(dialect=self.dialect)).strip(),
                )
            )
        if table.comment is not None:
            steps.append(
                Step(
                    "comment",
                    table.name,
                    f"COMMENT ON TABLE {self.q(table.name)} IS "
                    f"{_literal(self.dialect, table.comment)}",
                )
            )
        for column in table.columns:
            if column.comment is not None:
                steps.append(
                    Step(
                        "comment",
                        table.name,
                        f"COMMENT ON COLUMN {self.q(table.name)}.{self.q(column.name)} IS "
                        f"{_literal(self.dialect, column.comment)}",
                    )
                )
        return steps

    def quarantine_steps(self, previous: sa.Table, revision: str) -> list[Step]:
        """Create ``<table>_quarantine`` when missing and move the rejected rows there."""
        name = previous.name
        qname = self.q(name + QUARANTINE_SUFFIX)
        defs = [f"{self.q(c.name)} {self.type_sql(c.type)}" for c in previous.columns]
        defs += [
            f"{self.q(QUARANTINE_COLUMNS[0])} VARCHAR",
            f"{self.q(QUARANTINE_COLUMNS[1])} TIMESTAMP WITH TIME ZONE",
            f"{self.q(QUARANTINE_COLUMNS[2])} VARCHAR",
        ]
        names = [c.name for c in previous.columns] + list(QUARANTINE_COLUMNS)
        rejected = (
            f"(SELECT rid, string_agg(reason, '; ' ORDER BY reason) AS reason "
            f"FROM {self.q(REJECTED)} WHERE tbl = {_literal(self.dialect, name)} GROUP BY rid)"
        )
        return [
            Step("move", name, f"CREATE TABLE IF NOT EXISTS {qname} ({', '.join(defs)})"),
            *(
                Step(
                    "move",
                    name,
                    f"ALTER TABLE {qname} ADD COLUMN IF NOT EXISTS {self.q(c.name)} "
                    f"{self.type_sql(c.type)}",
                )
                for c in previous.columns
            ),
            Step(
                "move",
                name,
                f"INSERT INTO {qname} ({self.cols(names)}) SELECT "
                f"{self.cols(previous.columns.keys(), 'o.')}, r.reason, now(), "
                f"{_literal(self.dialect, revision)} FROM {self.q(name)} AS o "
                f"JOIN {rejected} AS r ON o.{self.row_id} = r.rid",
            ),
        ]


# -- helpers over definitions ---------------------------------------------------


def _checks(table: sa.Table) -> list[sa.CheckConstraint]:
    """Every CHECK of ``table``: declared on the table or on one of its columns."""
    found = all_checks(table)
    return sorted(found, key=lambda c: (str(c.name), str(c.sqltext)))


def _keys(table: sa.Table) -> list[tuple[str, str, list[str]]]:
    """(kind, name, columns) of the PRIMARY KEY and UNIQUE constraints, PK first."""
    keys: list[tuple[str, str, list[str]]] = []
    if table.primary_key.columns:
        name = str(table.primary_key.name or f"pk_{table.name}")
        keys.append(("PRIMARY KEY", name, [c.name for c in table.primary_key.columns]))
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    for unique in sorted(uniques, key=lambda u: [c.name for c in u.columns]):
        columns = [c.name for c in unique.columns]
        keys.append(("UNIQUE", str(unique.name or f"uq_{table.name}_{'_'.join(columns)}"), columns))
    return keys


def _unique_keys(table: sa.Table) -> list[list[str]]:
    return [columns for _, _, columns in _keys(table)]


def referred_table(fk: sa.ForeignKeyConstraint) -> str:
    element = fk.elements[0]
    try:
        return str(element.column.table.name)
    except (sa.exc.NoReferencedTableError, sa.exc.NoReferencedColumnError):
        return str(element._column_tokens[1])  # noqa: SLF001  (schema, table, column)


def _referred_columns(fk: sa.ForeignKeyConstraint) -> list[str]:
    names = []
    for element in fk.elements:
        try:
            names.append(str(element.column.name))
        except (sa.exc.NoReferencedTableError, sa.exc.NoReferencedColumnError):
            names.append(str(element._column_tokens[-1]))  # noqa: SLF001
    return names


def _fk_signature(fk: sa.ForeignKeyConstraint) -> tuple[object, ...]:
    return (tuple(c.name for c in fk.columns), referred_table(fk), tuple(_referred_columns(fk)))


def _creation_order(tables: Sequence[sa.Table]) -> list[sa.Table]:
    """Parents before children among ``tables`` (by the FKs between them)."""
    remaining = {t.name: t for t in tables}
    ordered: list[sa.Table] = []
    while remaining:
        ready = [
            t
            for t in remaining.values()
            if not any(
                referred_table(fk) in remaining and referred_table(fk) != t.name
                for fk in t.foreign_key_constraints
            )
        ]
        if not ready:
            raise InvalidOperation(
                "create_copy_swap: the referencing tables "
                f"{', '.join(sorted(remaining))} reference each other in a cycle, which "
                "DuckDB can't rebuild. Break the cycle first."
            )
        for table in sorted(ready, key=lambda t: t.name):
            ordered.append(remaining.pop(table.name))
    return ordered


def _implicit_sequence(column: sa.Column[object]) -> bool:
    from duckdb_sqlalchemy import _column_needs_implicit_sequence

    return bool(column.table is not None and _column_needs_implicit_sequence(column))


def _server_default(
    column: sa.Column[object], preparer: sa.sql.compiler.IdentifierPreparer, dialect: sa.Dialect
) -> sa.schema.FetchedValue | None:
    # duckdb-sqlalchemy backs an autoincrement integer primary key with an
    # implicit sequence named after the table. The copy is created under
    # another name, so point its default at the table's own sequence.
    if _implicit_sequence(column):
        from duckdb_sqlalchemy import _implicit_sequence_ddl_name

        seq = _implicit_sequence_ddl_name(preparer, column)
        return sa.DefaultClause(sa.text(f"nextval({_literal(dialect, seq)})"))
    default = column.server_default
    if isinstance(default, sa.DefaultClause):
        return sa.DefaultClause(default.arg)  # type: ignore[arg-type]
    return None


def _literal(dialect: sa.Dialect, value: str) -> str:
    return str(
        sa.literal(value, sa.String()).compile(
            dialect=dialect, compile_kwargs={"literal_binds": True}
        )
    )


def _unquoted(sql: str) -> str:
    return re.sub(r"""'(?:[^']|'')*'|"(?:[^"]|"")*\"""", "", sql)


def _norm(sql: str) -> str:
    return normalize_sql(sql)
