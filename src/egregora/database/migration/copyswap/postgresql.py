"""Planning ``create_copy_swap`` on PostgreSQL: the same rules, altered in place.

PostgreSQL's ``ALTER TABLE`` can add and drop every kind of constraint, so
nothing is copied. The plan keeps what the DuckDB rebuild promises (the same
rules, the same preflight, ``fail`` or ``quarantine``, the same report) and
changes the table where it stands:

- quarantine: the rows the rules reject are copied to ``<table>_quarantine``
  and deleted, children before parents, before any constraint is added;
- columns are added, filled from ``column_map``, converted (``USING``) and
  dropped; a ``column_map`` entry that only renames becomes ``RENAME COLUMN``;
- CHECK and FOREIGN KEY constraints are added ``NOT VALID`` and then
  validated (``VALIDATE CONSTRAINT`` scans under a weaker lock and never
  rewrites the table); NOT NULL goes through such a CHECK; PRIMARY KEY and
  UNIQUE build their index ``CONCURRENTLY`` and attach it (``USING INDEX``).
  Those steps carry their non-blocking form in ``Step.online``, which runs
  after the migration's commit (:mod:`...afterwards`); ``Step.sql`` is the
  same change inside the transaction, for runs that can't defer.

Constraints are matched by name, as PostgreSQL keeps them; a CHECK that
keeps its name but changes its expression is dropped and added again when
the caller says so (``changed_checks``: online, the engine asks the server, which
spells both expressions its own way). Unnamed CHECKs are matched by text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex

from egregora.database.migration.copyswap.model import OnViolation, Phase, Rule, Step
from egregora.database.migration.copyswap.steps import StepPlanner
from egregora.database.migration.definitions import (
    fk_name,
    fk_signature,
    key_constraints,
    plain_column,
    referred_columns,
    referred_table,
    sorted_checks,
)
from egregora.database.migration.sqltext import normalize_sql

__all__ = ["InPlacePlanner", "concurrently"]

_CREATE_INDEX = re.compile(r"^\s*CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)", re.IGNORECASE)


def concurrently(create_index: str) -> str:
    """``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS ...`` from a CREATE INDEX."""
    return _CREATE_INDEX.sub(
        lambda m: f"CREATE {m.group(1) or ''}INDEX CONCURRENTLY IF NOT EXISTS ", create_index, 1
    )


class InPlacePlanner(StepPlanner):
    """A planner whose steps alter the table instead of rebuilding it."""

    # How rows are told apart while the plan runs: ctid, stable within the
    # transaction (no row is updated before the rejected ones are moved).
    # PostgreSQL has no TRY(...): a value that doesn't convert fails the
    # migration, which is rolled back, instead of being reported by a rule.
    row_id = "ctid"
    row_id_type = "TID"
    can_try = False
    defers_keys = False  # PostgreSQL checks FOREIGN KEYs against any key

    def guard_sql(self, count_sql: str, message: str) -> str:
        # PostgreSQL has no error() function: a DO block raises instead (% is
        # RAISE's placeholder, so it is doubled; $$ can't occur in names the
        # preparer quotes, nor in our generated SQL).
        text = self.literal(message.replace("%", "%%"))
        return f"DO $$ BEGIN IF ({count_sql}) > 0 THEN RAISE EXCEPTION {text}; END IF; END $$"

    def final_target(self) -> str:
        # the table stays where it is: its rows, minus those rejected
        return self.survivors(self.name, self.source())

    def steps(self, mode: OnViolation, rules: list[Rule], revision: str) -> list[Step]:
        steps: list[Step] = []
        quarantine = mode == "quarantine"
        tables = [self.previous, *self.dependents]
        if quarantine:
            steps.append(self.rejected_table())
            steps += [Step("quarantine", r.table, r.reject_sql) for r in rules]
            for table in tables:
                steps += self.quarantine_steps(table, revision)
            # children first: a parent row goes only once nothing references it
            for table in reversed(tables):
                steps.append(
                    Step(
                        "move",
                        table.name,
                        f"DELETE FROM {self.q(table.name)} WHERE {self.row_id} IN "
                        f"(SELECT rid FROM {self.q(self.rejected)} "
                        f"WHERE tbl = {self.literal(table.name)})",
                    )
                )
        deferred = self.deferred_references() if quarantine else ""
        if deferred:  # the moves left trigger events, and ALTER TABLE refuses to run over them
            steps.append(Step("move", self.name, f"SET CONSTRAINTS {deferred} IMMEDIATE"))
        steps += self.alter_steps()
        if deferred:
            steps.append(Step("move", self.name, f"SET CONSTRAINTS {deferred} DEFERRED"))
        if quarantine:
            steps.append(Step("finish", self.name, f"DROP TABLE {self.q(self.rejected)}"))
        return steps

    def deferred_references(self) -> str:
        """The FOREIGN KEYs into the table that are checked at COMMIT (INITIALLY DEFERRED).

        Quarantine deletes rows: each such key then holds a trigger event until
        it is checked, and PostgreSQL refuses to ALTER a table with pending
        trigger events. Checked at once after the moves (the rows that
        referenced the moved ones moved with them), then deferred again.
        """
        names = sorted(
            self.q(str(fk.name))
            for table in self.dependents
            for fk in table.foreign_key_constraints
            if fk.name
            and fk.deferrable
            and str(fk.initially or "").upper() == "DEFERRED"
            and referred_table(fk) in {self.name, *(t.name for t in self.dependents)}
        )
        return ", ".join(names)

    # -- the ALTER statements ---------------------------------------------------

    def alter(self, clause: str) -> str:
        return f"ALTER TABLE {self.q(self.name)} {clause}"

    def alter_steps(self) -> list[Step]:
        old = {c.name: c for c in self.previous.columns}
        new = {c.name: c for c in self.target.columns}
        renames = self.renames(old, new)
        return [
            *self.drop_old_constraints(),  # before columns change
            *self.column_steps(old, new, renames),
            *self.nullability_and_defaults(old, renames),
            *self.add_new_constraints(),
            *self.comment_steps(self.target),
        ]

    def old_and_new_keys(
        self,
    ) -> tuple[dict[tuple[str, tuple[str, ...]], str], dict[tuple[str, tuple[str, ...]], str]]:
        old = {(kind, tuple(cols)): name for kind, name, cols in self.reflected_keys()}
        new = {(kind, tuple(cols)): name for kind, name, cols in key_constraints(self.target)}
        return old, new

    def drop_old_constraints(self) -> list[Step]:
        """1. FOREIGN KEYs, CHECKs, keys and indexes that go away."""
        previous, target, step = self.previous, self.target, self.step
        old_fks = {fk_signature(fk): fk for fk in previous.foreign_key_constraints}
        new_fks = {fk_signature(fk) for fk in target.foreign_key_constraints}
        steps = [step("alter", self.drop_constraint(old_fks[s])) for s in old_fks.keys() - new_fks]
        dropped_checks, added_checks = self.check_changes()
        unnamed = {
            self.check_name(c, i) for i, c in enumerate(sorted_checks(previous)) if c.name is None
        }
        steps += [
            step("alter", f"DROP CONSTRAINT {self.q(name)}")
            for name in dropped_checks
            if name not in unnamed
        ]
        if unnamed & set(dropped_checks):
            adding = {id(check) for _, check in added_checks}
            kept = [c for c in sorted_checks(target) if id(c) not in adding]
            steps.append(Step("alter", self.name, self.drop_checks_but(kept)))
        # UNIQUE before the PRIMARY KEY; a key other tables reference can't go
        # (PostgreSQL refuses and the migration rolls back, with its message)
        old_keys, new_keys = self.old_and_new_keys()
        for key in sorted(old_keys.keys() - new_keys.keys(), reverse=True):
            steps.append(step("alter", f"DROP CONSTRAINT {self.q(old_keys[key])}"))
        new_indexes = {str(i.name) for i in target.indexes}
        for index in sorted(previous.indexes, key=lambda i: str(i.name)):
            if str(index.name) not in new_indexes:
                steps.append(Step("alter", self.name, f"DROP INDEX {self.q(str(index.name))}"))
        return steps

    def column_steps(
        self,
        old: dict[str, sa.Column[object]],
        new: dict[str, sa.Column[object]],
        renames: dict[str, str],
    ) -> list[Step]:
        """2. Columns: renamed, added and filled, converted, dropped."""
        step = self.step
        steps = [
            step("alter", f"RENAME COLUMN {self.q(source)} TO {self.q(dest)}")
            for source, dest in renames.items()
        ]
        added = [
            c for c in self.target.columns if c.name not in old and c.name not in renames.values()
        ]
        steps += [step("alter", f"ADD COLUMN {self.column_sql(column)}") for column in added]
        fills = [c.name for c in added if c.name in self.column_map]
        if fills:
            assignments = ", ".join(f"{self.q(c)} = {self.values[c][0]}" for c in fills)
            steps.append(Step("alter", self.name, f"UPDATE {self.q(self.name)} SET {assignments}"))
        for name in (c.name for c in self.target.columns):
            if name in old and name in self.changed:
                value, _ = self.values[name]
                type_sql = self.type_sql(new[name].type)
                steps.append(
                    step("alter", f"ALTER COLUMN {self.q(name)} TYPE {type_sql} USING {value}")
                )
        steps += [
            step("alter", f"DROP COLUMN {self.q(name)}")
            for name in old
            if name not in new and name not in renames
        ]
        return steps

    def nullability_and_defaults(
        self, old: dict[str, sa.Column[object]], renames: dict[str, str]
    ) -> list[Step]:
        """3. Nullability and defaults of the columns that stay."""
        steps: list[Step] = []
        for column in self.target.columns:
            was = old.get(column.name)
            if was is None:
                was = old.get(_key_for(renames, column.name))
            if was is None:
                if not column.nullable:
                    steps.append(
                        self.step("alter", f"ALTER COLUMN {self.q(column.name)} SET NOT NULL")
                    )
                continue
            steps += self.nullability(was, column) + self.default(was, column)
        return steps

    def nullability(self, was: sa.Column[object], column: sa.Column[object]) -> list[Step]:
        if was.nullable and not column.nullable:
            return self.set_not_null(column.name)
        if not was.nullable and column.nullable and not column.primary_key:
            return [self.step("alter", f"ALTER COLUMN {self.q(column.name)} DROP NOT NULL")]
        return []

    def default(self, was: sa.Column[object], column: sa.Column[object]) -> list[Step]:
        default = column.server_default
        if isinstance(default, sa.DefaultClause):
            default_sql = self.default_sql(column)
            return [
                self.step("alter", f"ALTER COLUMN {self.q(column.name)} SET DEFAULT {default_sql}")
            ]
        if default is None and was.server_default is not None:
            return [self.step("alter", f"ALTER COLUMN {self.q(column.name)} DROP DEFAULT")]
        return []

    def add_new_constraints(self) -> list[Step]:
        """4. Keys, then CHECKs and FOREIGN KEYs (added NOT VALID, then validated), indexes."""
        step = self.step
        old_keys, new_keys = self.old_and_new_keys()
        steps = [
            self.key_step(new_keys[key], key[0], key[1])
            for key in sorted(new_keys.keys() - old_keys.keys())
        ]
        for name, check in self.check_changes()[1]:
            check_sql = f"CHECK ({self.check_sql(check)})"
            steps.append(step("alter", f"ADD CONSTRAINT {self.q(name)} {check_sql} NOT VALID"))
            steps.append(self.later("validate", f"VALIDATE CONSTRAINT {self.q(name)}"))
        old_fks = {fk_signature(fk) for fk in self.previous.foreign_key_constraints}
        new_fks = {fk_signature(fk): fk for fk in self.target.foreign_key_constraints}
        for signature in sorted(new_fks.keys() - old_fks, key=repr):
            fk = new_fks[signature]
            name = fk_name(self.name, fk)
            columns = [c.name for c in fk.columns]
            steps.append(
                step(
                    "alter",
                    f"ADD CONSTRAINT {self.q(name)} FOREIGN KEY ({self.cols(columns)}) "
                    f"REFERENCES {self.q(referred_table(fk))} "
                    f"({self.cols(referred_columns(fk))}){self.fk_actions(fk)} NOT VALID",
                )
            )
            steps.append(self.later("validate", f"VALIDATE CONSTRAINT {self.q(name)}"))
        old_indexes = {str(i.name) for i in self.previous.indexes}
        for index in sorted(self.target.indexes, key=lambda i: str(i.name)):
            if str(index.name) not in old_indexes:
                steps.append(self.index_step(index))
        return steps

    def set_not_null(self, column: str) -> list[Step]:
        """SET NOT NULL without scanning under ACCESS EXCLUSIVE.

        A plain SET NOT NULL scans the whole table while it blocks reads and
        writes. A CHECK (column IS NOT NULL) added NOT VALID and then
        validated scans under SHARE UPDATE EXCLUSIVE, which lets the
        application read and write; PostgreSQL 12+ then sees the validated
        CHECK and sets NOT NULL without scanning, and the CHECK goes.
        """
        check = self.q(f"{self.name}_{column}_not_null"[:63])
        return [
            self.step(
                "alter", f"ADD CONSTRAINT {check} CHECK ({self.q(column)} IS NOT NULL) NOT VALID"
            ),
            self.later("validate", f"VALIDATE CONSTRAINT {check}"),
            self.later("alter", f"ALTER COLUMN {self.q(column)} SET NOT NULL"),
            self.later("alter", f"DROP CONSTRAINT {check}"),
        ]

    def step(self, phase: Phase, clause: str) -> Step:
        return Step(phase, self.name, self.alter(clause))

    def later(self, phase: Phase, clause: str) -> Step:
        """An ALTER that may wait until after the migration's transaction (Step.online)."""
        sql = self.alter(clause)
        return Step(phase, self.name, sql, online=(sql,))

    def key_step(self, name: str, kind: str, columns: Sequence[str]) -> Step:
        """A new PRIMARY KEY or UNIQUE: its index built CONCURRENTLY, then attached.

        ``ADD CONSTRAINT ... UNIQUE (cols)`` builds the index under ACCESS
        EXCLUSIVE; ``CREATE UNIQUE INDEX CONCURRENTLY`` builds it while the
        application reads and writes, and ``ADD CONSTRAINT ... USING INDEX``
        then only changes the catalog.
        """
        index = (
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {self.q(name)} "
            f"ON {self.q(self.name)} ({self.cols(columns)})"
        )
        attach = self.alter(f"ADD CONSTRAINT {self.q(name)} {kind} USING INDEX {self.q(name)}")
        sql = self.alter(f"ADD CONSTRAINT {self.q(name)} {kind} ({self.cols(columns)})")
        return Step("index", self.name, sql, online=(index, attach))

    def index_step(self, index: sa.Index) -> Step:
        """A new index: built CONCURRENTLY after the transaction (plain CREATE INDEX blocks
        writes for the whole build)."""
        sql = str(CreateIndex(index).compile(dialect=self.dialect))
        return Step("index", self.name, sql, online=(concurrently(sql),))

    # -- matching old and new definitions --------------------------------------

    def check_changes(self) -> tuple[list[str], list[tuple[str, sa.CheckConstraint]]]:
        """(names of CHECKs to drop, (name, CHECK) to add): matched by name, else by text."""
        old = {self.check_name(c, i): c for i, c in enumerate(sorted_checks(self.previous))}
        old_text = {normalize_sql(self.check_sql(c)): name for name, c in old.items()}
        kept: set[str] = set()
        added: list[tuple[str, sa.CheckConstraint]] = []
        for index, check in enumerate(sorted_checks(self.target)):
            if check.name is not None and str(check.name) in old:
                if str(check.name) in self.changed_checks:  # same name, new expression
                    added.append((str(check.name), check))
                else:
                    kept.add(str(check.name))
                continue
            same_text = old_text.get(normalize_sql(self.check_sql(check)))
            if check.name is None and same_text is not None:
                kept.add(same_text)
                continue
            added.append((self.check_name(check, index), check))
        return sorted(old.keys() - kept), added

    def drop_checks_but(self, keep: list[sa.CheckConstraint]) -> str:
        """Drop every CHECK of the table but those named in ``keep``, whatever their names.

        A ``previous=`` written from DuckDB, which forgets constraint names,
        can't name a CHECK the target drops. Online the table is reflected
        and every name is known; offline (``--sql``) this block finds them.
        """
        names = ", ".join(self.literal(str(c.name)) for c in keep if c.name)
        table = self.literal(self.q(self.name))
        return (
            "DO $$ DECLARE c record; BEGIN FOR c IN SELECT conname FROM pg_constraint "
            f"WHERE conrelid = {table}::regclass AND contype = 'c' "
            f"AND conname::text <> ALL (ARRAY[{names}]::text[]) LOOP "
            "EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', "
            f"{self.literal(self.name)}, c.conname); END LOOP; END $$"
        )

    def check_name(self, check: sa.CheckConstraint, index: int) -> str:
        return str(check.name) if check.name is not None else f"chk_{self.name}_{index + 1}"

    def reflected_keys(self) -> list[tuple[str, str, list[str]]]:
        """The previous keys, named as the database names them."""
        keys = key_constraints(self.previous)
        pk_name = self.previous.primary_key.name
        if keys and keys[0][0] == "PRIMARY KEY" and pk_name is None:
            keys[0] = ("PRIMARY KEY", f"{self.name}_pkey", keys[0][2])  # PostgreSQL's default
        return keys

    def drop_constraint(self, fk: sa.ForeignKeyConstraint) -> str:
        return f"DROP CONSTRAINT {self.q(fk_name(self.name, fk))}"

    def fk_actions(self, fk: sa.ForeignKeyConstraint) -> str:
        actions = ""
        if fk.ondelete:
            actions += f" ON DELETE {fk.ondelete}"
        if fk.onupdate:
            actions += f" ON UPDATE {fk.onupdate}"
        if fk.deferrable:
            actions += " DEFERRABLE"
        if fk.initially:
            actions += f" INITIALLY {fk.initially}"
        return actions

    def renames(
        self, old: dict[str, sa.Column[object]], new: dict[str, sa.Column[object]]
    ) -> dict[str, str]:
        """column_map entries that only move an old column to a new name, same type."""
        found: dict[str, str] = {}
        for dest, value in self.column_map.items():
            if dest in old or not isinstance(value, str):
                continue
            source = plain_column(value)
            if (
                source is not None
                and source in old
                and source not in new
                and source not in found
                and self.type_sql(old[source].type) == self.type_sql(new[dest].type)
            ):
                found[source] = dest
        return found

    def column_sql(self, column: sa.Column[object]) -> str:
        sql = f"{self.q(column.name)} {self.type_sql(column.type)}"
        if isinstance(column.server_default, sa.DefaultClause):
            sql += f" DEFAULT {self.default_sql(column)}"
        return sql


def _key_for(mapping: dict[str, str], value: str) -> str:
    return next((k for k, v in mapping.items() if v == value), "")
