"""Planning create-copy-swap on DuckDB: the table is rebuilt, in one transaction.

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

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from egregora.database.foreign_keys import enforced_by, enforced_fks
from egregora.database.migration.copyswap.model import (
    NEW_SUFFIX,
    OLD_SUFFIX,
    STASH_SUFFIX,
    OnViolation,
    Rule,
    Step,
)
from egregora.database.migration.copyswap.steps import StepPlanner
from egregora.database.migration.definitions import (
    StoredTable,
    key_constraints,
    referred_columns,
    referred_table,
    sorted_checks,
    sorted_fks,
)
from egregora.database.migration.duckdb_versions import features
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.fkactions import NOTHING_CHANGED, refuse_on_duckdb
from egregora.database.migration.sequences import implicit_sequence, implicit_sequence_name

__all__ = ["RebuildPlanner"]


class RebuildPlanner(StepPlanner):
    """Create the table anew, copy the rows, swap it into place; referencing tables too."""

    # DuckDB's rowid tells rows apart; TRY(...) turns a failed conversion into NULL
    row_id = "rowid"
    row_id_type = "BIGINT"
    can_try = True
    # measured (DuckDB 2.0.1, 3M post_authors rows): two FOREIGN KEY counts in one
    # scan took 0.33 s, one query each 0.42 s + 0.23 s; DuckDB makes each NOT EXISTS
    # in a FILTER a mark join, as it does in a WHERE
    shares_reference_scans = True
    # measured (DuckDB 2.0.1, 3M post_authors rows, keys free of duplicates):
    # count(*) - count(DISTINCT hash(key)) took 0.19 and 0.23 s where GROUP BY
    # key HAVING count(*) > 1 took 0.26 and 0.39 s. Equal keys hash equal, so
    # as many hashes as rows proves there is no duplicate; on 1.4 hash() ignores
    # a collation that GROUP BY honours (duckdb_versions.py): not screened there
    screens_duplicates = features().hash_follows_collation
    defers_keys = True

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        # DuckDB 2.0 fails with an INTERNAL error (and invalidates the database)
        # when a FOREIGN KEY is checked against a key that ALTER TABLE ADD
        # PRIMARY KEY/UNIQUE created in the same transaction. Tables that rebuilt
        # tables reference therefore get their keys inline, in CREATE TABLE.
        self.inline_keys = {
            referred_table(fk) for d in self.dependents for fk in d.foreign_key_constraints
        }
        if self.inline_target_keys:
            self.inline_keys.add(self.name)
        # DuckDB 1.4 has no ALTER TABLE ... ADD UNIQUE (duckdb_versions.py): there
        # a table with a UNIQUE constraint declares its keys in CREATE TABLE.
        if not features().add_unique:
            self.inline_keys |= {
                t.name
                for t in (self.target, *self.dependents)
                if any(kind == "UNIQUE" for kind, _, _ in key_constraints(t))
            }
        # DuckDB keeps a FOREIGN KEY registered under the name its table was
        # created with: a table created as t__ccs_new with a FOREIGN KEY and
        # renamed to t in the same transaction leaves its parent believing
        # t__ccs_new references it, and the parent can no longer be dropped.
        # A table with FOREIGN KEYs is therefore stashed, then created under
        # its own name (one extra, constraint-free copy).
        self.stash_target = bool(enforced_fks(self.target, self.dialect))
        self.staged = self.name + (STASH_SUFFIX if self.stash_target else NEW_SUFFIX)
        # Unless the table can be moved aside: renamed, then the new one created
        # under its name and filled from the old one, dropped after. That spares
        # the stash's second copy (measured, V3 to V4 at 500,000 rows: post_authors
        # and annotations stashed 0.26 s of a 2.8 s upgrade). DuckDB renames only
        # a table with no index or key that nothing references (catalog.renamable).
        self.move_aside = (
            self.stash_target
            and self.renamable
            and not self.dependents
            and not self.kept_indexes
            and (self.origin is None or self.copy_origin is not None)
        )
        self.aside = self.name + OLD_SUFFIX

    @classmethod
    def check_limits(
        cls, previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]
    ) -> None:
        """What a rebuild can't do: a column named rowid, a self-referencing FOREIGN KEY,
        a FOREIGN KEY option DuckDB can't parse (fkactions.py)."""
        refuse_on_duckdb((target, *dependents), NOTHING_CHANGED)
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

    def final_target(self) -> str:
        """The target's rows as dependents will see them: the new table."""
        return f"(SELECT * FROM {self.q(self.staged)})"

    def guard_sql(self, count_sql: str, message: str) -> str:
        return f"SELECT error({self.literal(message)}) FROM ({count_sql}) AS v(n) WHERE n > 0"

    def deferred_keys(self) -> tuple[str, ...]:
        return tuple(
            t.name
            for t in (self.target, *self.dependents)
            if key_constraints(t)
            and t.name not in self.inline_keys
            and (t is self.target or t.name not in self.stored)
        )

    # -- statements -------------------------------------------------------------

    def steps(self, mode: OnViolation, rules: list[Rule], revision: str) -> list[Step]:
        quarantine = mode == "quarantine"
        steps: list[Step] = []
        if quarantine:
            steps.append(self.rejected_table())
            steps += [
                Step("quarantine", self.name, r.reject_sql) for r in rules if r.table == self.name
            ]
            steps += self.quarantine_steps(self.previous, revision)
        if self.move_aside:
            steps += self.moved_aside(quarantine)
            if quarantine:
                steps.append(Step("finish", self.name, f"DROP TABLE {self.q(self.rejected)}"))
            return steps
        steps += self.new_rows(quarantine)
        steps += self.stash_dependents(rules, revision, quarantine)
        # drop children before parents, then put the new table in place
        steps += [
            Step("drop", d.name, f"DROP TABLE {self.q(d.name)}") for d in reversed(self.dependents)
        ]
        steps.append(Step("drop", self.name, f"DROP TABLE {self.q(self.name)}"))
        steps += self.swap()
        # referencing tables again, parents first, with their rows
        for dependent in self.dependents:
            stored = self.stored.get(dependent.name)
            if stored is not None:
                steps += self.restore_stored(dependent, stored)
            else:
                steps += self.restore_steps(dependent, list(dependent.columns.keys()))
        if quarantine:
            steps.append(Step("finish", self.name, f"DROP TABLE {self.q(self.rejected)}"))
        return steps

    def new_rows(self, quarantine: bool) -> list[Step]:
        """The new rows: straight into the new table (renamed into place later),
        or into a plain stash when the table has FOREIGN KEYs."""
        name, staged = self.name, self.staged
        select = ", ".join(f"{value} AS {self.q(c)}" for c, (value, _) in self.values.items())
        source = f"SELECT {select} FROM {self.own_rows}{self.not_rejected(name, quarantine)}"
        steps = [
            Step("copy", name, f"CREATE SEQUENCE IF NOT EXISTS {sequence}")
            for sequence in self.implicit_sequences(self.target)
        ]
        if self.stash_target:
            steps.append(Step("stash", name, f"CREATE TABLE {self.q(staged)} AS {source}"))
        else:
            steps.append(self.create_step(self.target, staged))
            steps.append(Step("copy", name, self.insert_sql(staged, list(self.values), source)))
        return steps

    def moved_aside(self, quarantine: bool) -> list[Step]:
        """The table renamed aside, created anew under its name, filled, the old one dropped."""
        name, aside = self.name, self.aside
        select = ", ".join(f"{value} AS {self.q(c)}" for c, (value, _) in self.values.items())
        rows = self.q(aside) if self.origin is None else self.copy_origin
        source = f"SELECT {select} FROM {rows}{self.not_rejected(name, quarantine)}"
        return [
            *(
                Step("copy", name, f"CREATE SEQUENCE IF NOT EXISTS {sequence}")
                for sequence in self.implicit_sequences(self.target)
            ),
            Step("swap", name, f"ALTER TABLE {self.q(name)} RENAME TO {self.q(aside)}"),
            self.create_step(self.target, name),
            Step("copy", name, self.insert_sql(name, list(self.values), source)),
            Step("drop", name, f"DROP TABLE {self.q(aside)}"),
            *self.finish_steps(self.target),
            *self.sequence_steps(self.target),
        ]

    def stash_dependents(self, rules: list[Rule], revision: str, quarantine: bool) -> list[Step]:
        """Referencing tables: judged against the new rows, then stashed."""
        steps: list[Step] = []
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
        return steps

    def swap(self) -> list[Step]:
        """The new table under the table's name, its keys, sequences and kept indexes."""
        if self.stash_target:
            steps = self.restore_steps(self.target, list(self.values))
        else:
            rename = f"ALTER TABLE {self.q(self.staged)} RENAME TO {self.q(self.name)}"
            steps = [Step("swap", self.name, rename), *self.finish_steps(self.target)]
        steps += self.sequence_steps(self.target)
        # indexes someone else made on the table (not in the definition): again
        return steps + [Step("index", self.name, sql) for sql in self.kept_indexes]

    def implicit_sequences(self, table: sa.Table) -> list[str]:
        """The sequences duckdb-sqlalchemy backs an integer primary key with.

        Its CREATE TABLE creates them; a table made another way has none, so
        the rebuild creates any that are missing (as the dialect would).
        """
        return [
            implicit_sequence_name(self.preparer, c) for c in table.columns if implicit_sequence(c)
        ]

    def sequence_steps(self, table: sa.Table) -> list[Step]:
        """Move each implicit sequence past the largest key the copy brought.

        A sequence the rebuild creates starts at 1, while the copied rows may
        already hold 1, 2, 3...: the next insert without an id would fail
        with a duplicate key. ``setval`` moves it forward, never back.
        """
        steps = []
        for column in table.columns:
            if not implicit_sequence(column):
                continue
            sequence = implicit_sequence_name(self.preparer, column)
            name = self.literal(sequence.strip('"'))
            largest = f"(SELECT max({self.q(column.name)}) AS m FROM {self.q(table.name)}) AS k"
            this = f"s.sequence_name = {name} AND s.schema_name = current_schema()"
            if features().setval:
                sql = (
                    f"SELECT setval({self.literal(sequence)}, m) FROM {largest}, "
                    f"duckdb_sequences() AS s WHERE {this} AND m IS NOT NULL "
                    "AND (s.last_value IS NULL OR m > s.last_value)"
                )
            else:
                # DuckDB 1.4 has no setval (duckdb_versions.py): draw the values up
                # to the largest key instead (0.35 s per million keys, measured)
                sql = (
                    f"SELECT count(nextval({self.literal(sequence)})) FROM range(("
                    f"SELECT greatest(0, coalesce(m, 0) - coalesce(s.last_value, "
                    f"s.start_value - 1)) FROM {largest}, duckdb_sequences() AS s WHERE {this}))"
                )
            steps.append(Step("copy", table.name, sql))
        return steps

    def not_rejected(self, table: str, quarantine: bool) -> str:
        if not quarantine:
            return ""
        return (
            f" WHERE {self.own_id if table == self.name else self.row_id} NOT IN "
            f"(SELECT rid FROM {self.q(self.rejected)} "
            f"WHERE tbl = {self.literal(table)})"
        )

    def insert_sql(self, into: str, columns: list[str], select: str) -> str:
        return f"INSERT INTO {self.q(into)} ({self.cols(columns)}) {select}"

    def restore_steps(self, table: sa.Table, columns: list[str]) -> list[Step]:
        """Create ``table`` under its own name and fill it from its stash."""
        stash = table.name + STASH_SUFFIX
        select = f"SELECT {self.cols(columns)} FROM {self.q(stash)}"
        return [
            self.create_step(table, table.name),
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
            steps.append(Step("comment", name, self.comment_sql(name, None, stored.comment)))
        for column, text in stored.column_comments:
            steps.append(Step("comment", name, self.comment_sql(name, column, text)))
        return steps

    def create_step(self, table: sa.Table, as_name: str) -> Step:
        """The CREATE TABLE step; it builds the key indexes it declares (inline_keys)."""
        keys = len(key_constraints(table)) if table.name in self.inline_keys else 0
        return Step("copy", table.name, self.create_sql(table, as_name), keys=keys)

    def create_sql(self, table: sa.Table, as_name: str) -> str:
        """CREATE TABLE for ``table`` under ``as_name``; keys only where inline_keys says."""
        scratch = sa.MetaData()
        stubs: dict[str, dict[str, sa.types.TypeEngine[object]]] = {}
        for fk in sorted_fks(table):
            ref = stubs.setdefault(referred_table(fk), {})
            for column, referred in zip(fk.columns, referred_columns(fk), strict=True):
                ref[referred] = column.type
        for ref_name, ref_cols in stubs.items():
            sa.Table(ref_name, scratch, *(sa.Column(c, t) for c, t in ref_cols.items()))
        columns = [self.column_copy(column) for column in table.columns]
        copy_table = sa.Table(as_name, scratch, *columns, *self.constraint_copies(table))
        created = str(CreateTable(copy_table).compile(dialect=self.dialect)).strip()
        if table.name not in self.inline_keys or not key_constraints(table):
            return created
        # Keys declared last, in the order ALTER TABLE adds them after a copy: DuckDB
        # keeps constraints in the order given, and SQLAlchemy would put the PRIMARY
        # KEY first. Either way of building a table then stores the same DDL (found
        # by a round-trip test once fusion declared keys inline where it had not).
        keys = [
            f"{kind if kind == 'PRIMARY KEY' else 'UNIQUE'} ({self.cols(key_columns)})"
            for kind, _name, key_columns in key_constraints(table)
        ]
        assert created.endswith(")")
        return created[:-1].rstrip() + ", \n\t" + ", \n\t".join(keys) + "\n)"

    def column_copy(self, column: sa.Column[object]) -> sa.Column[object]:
        if column.computed is not None:
            generated = sa.Computed(column.computed.sqltext, persisted=column.computed.persisted)
            return sa.Column(
                column.name, column.type, generated, nullable=column.nullable, autoincrement=False
            )
        return sa.Column(
            column.name,
            column.type,
            nullable=column.nullable,
            server_default=self.server_default(column),
            autoincrement=False,
        )

    def constraint_copies(self, table: sa.Table) -> list[sa.Constraint]:
        constraints: list[sa.Constraint] = [
            sa.CheckConstraint(sa.text(self.check_sql(c))) for c in sorted_checks(table)
        ]
        constraints += [
            sa.ForeignKeyConstraint(
                [c.name for c in fk.columns],
                [f"{referred_table(fk)}.{r}" for r in referred_columns(fk)],
            )
            for fk in sorted_fks(table)
            if enforced_by(fk, self.dialect)  # the others: checked (integrity.py)
        ]
        return constraints  # keys: see create_sql

    def server_default(self, column: sa.Column[object]) -> sa.schema.FetchedValue | None:
        # duckdb-sqlalchemy backs an autoincrement integer primary key with an
        # implicit sequence named after the table. The copy is created under
        # another name, so point its default at the table's own sequence.
        if implicit_sequence(column):
            sequence = implicit_sequence_name(self.preparer, column)
            return sa.DefaultClause(sa.text(f"nextval({self.literal(sequence)})"))
        default = column.server_default
        if isinstance(default, sa.DefaultClause):
            return sa.DefaultClause(default.arg)
        return None

    def finish_steps(self, table: sa.Table) -> list[Step]:
        """Keys, indexes and comments, built after the bulk copy, in that order."""
        steps: list[Step] = []
        for kind, _name, columns in (
            [] if table.name in self.inline_keys else key_constraints(table)
        ):
            clause = "PRIMARY KEY" if kind == "PRIMARY KEY" else "UNIQUE"
            sql = f"ALTER TABLE {self.q(table.name)} ADD {clause} ({self.cols(columns)})"
            steps.append(Step("index", table.name, sql))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            sql = str(CreateIndex(index).compile(dialect=self.dialect)).strip()
            steps.append(Step("index", table.name, sql))
        return steps + self.comment_steps(table)
