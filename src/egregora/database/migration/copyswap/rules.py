"""The rules a create-copy-swap checks: SQL that finds the rows a new definition rejects.

:class:`RulePlanner` maps the old rows to the target's columns (the relation
every rule reads) and writes one :class:`~.model.Rule` per constraint the
rows could break: conversions, NOT NULL, CHECK, FOREIGN KEY, PRIMARY KEY,
UNIQUE and unique indexes, and the references of referencing tables. How an
engine tells rows apart (``row_id``) and whether it can try a conversion
(``can_try``) are its planner's class attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import sqlalchemy as sa

from egregora.database.foreign_keys import enforced_by
from egregora.database.migration.copyswap.model import (
    ROW_ID,
    SAMPLE_SIZE,
    STAGE_ID,
    Facts,
    OnViolation,
    Rule,
    Source,
    Stage,
)
from egregora.database.migration.copyswap.writer import SqlWriter
from egregora.database.migration.definitions import (
    creation_order,
    fk_name,
    fk_reference,
    key_columns,
    key_constraints,
    referred_columns,
    referred_table,
    sorted_checks,
    sorted_fks,
    unique_indexes,
)
from egregora.database.migration.sequences import implicit_sequence
from egregora.database.migration.sqltext import normalize_sql

__all__ = ["CONVERTS", "RulePlanner"]

#: a rule relation's column saying whether a converted column's value converts
CONVERTS = "__ccs_converts_"


class RulePlanner(SqlWriter):
    """The inputs of one plan, the relation its rules read, and the rules."""

    #: how rows are told apart while the plan runs, and that id's SQL type
    row_id: ClassVar[str]
    row_id_type: ClassVar[str]
    #: whether TRY(...) turns a failed conversion into NULL, so that rows whose
    #: values don't convert can be reported (and quarantined) by a rule
    can_try: ClassVar[bool] = False
    #: whether a FOREIGN KEY rule's NOT EXISTS is counted in the shared scan of
    #: its relation (``count(*) FILTER (WHERE ... NOT EXISTS ...)``), which the
    #: engine must turn into a join rather than a lookup per row
    shares_reference_scans: ClassVar[bool] = False
    #: whether a duplicate-key count is screened first by counting distinct
    #: hashes of the key (preflight.py): 0 then means no duplicate at all
    screens_duplicates: ClassVar[bool] = False

    def __init__(
        self, dialect: sa.Dialect, stage: Stage, facts: Facts, source: Source | None = None
    ) -> None:
        """The change (``stage``), what the catalog says (``facts``), where rows are read.

        ``source`` serves the stages of a fused rebuild (fusion.py): rows read
        from an earlier stage's output, rejected rows kept apart, referenced
        tables read as the run would leave them.
        """
        super().__init__(dialect)
        source = source or Source()
        self.origin = source.origin
        self.rejected = source.rejected
        self.parents = dict(source.parents)
        self.reads = source.reads or stage.target.name
        self.previous = stage.previous
        self.target = stage.target
        self.name = stage.target.name
        self.column_map = dict(stage.column_map)
        self.dependents = creation_order(facts.dependents)
        self.dep_names = [d.name for d in self.dependents]
        self.changed_checks = frozenset(facts.changed_checks)
        self.policy = stage.policy
        #: target column -> (SQL over the old row, whether it converts a value)
        self.values = self._values()
        self.changed = {name for name, (_, converted) in self.values.items() if converted}

    def _values(self) -> dict[str, tuple[str, bool]]:
        old = {c.name: c for c in self.previous.columns}
        values: dict[str, tuple[str, bool]] = {}
        for column in self.target.columns:
            type_sql = self.value_type_sql(column.type)
            if column.computed is not None:
                continue  # a generated column computes itself: never copied into
            if column.name in self.column_map:
                expression = self.expression_sql(self.column_map[column.name])
                values[column.name] = (f"CAST(({expression}) AS {type_sql})", True)
            elif column.name in old:
                known = old[column.name].type
                same = self.known_type_sql(known) is None or self.value_type_sql(known) == type_sql
                ref = self.q(column.name)
                values[column.name] = (ref if same else f"CAST({ref} AS {type_sql})", not same)
        return values

    def try_(self, value: str) -> str:
        return f"TRY({value})" if self.can_try else value

    # -- the relation each rule reads -----------------------------------------

    def source(self, safe: bool = True) -> str:
        """The old rows mapped to the target columns, with their row id.

        ``safe`` wraps conversions in TRY(...), so that a failed cast reads as
        NULL here and is reported by its own rule instead of aborting.
        """
        items = [f"{self.own_id} AS {self.q(ROW_ID)}"]
        items += self.target_values(safe)
        for name in sorted(self.changed) if self.can_try else ():
            # whether the value converts, judged on the old row: a rule over this
            # relation can't repeat the conversion, whose column it renamed or holds
            value, _ = self.values[name]
            items.append(f"TRY(({value}) IS NULL) IS NOT NULL AS {self.q(CONVERTS + name)}")
        return f"(SELECT {', '.join(items)} FROM {self.own_rows})"

    def target_values(self, safe: bool) -> list[str]:
        """``value AS column`` for every target column, as the new table will hold it."""
        items = []
        for column in self.target.columns:
            if column.name in self.values:
                value, converted = self.values[column.name]
                value = self.try_(value) if safe and converted else value
            elif column.computed is not None:  # what the new table will compute
                value = f"({self.check_sql(column.computed)})"
            else:  # a new column: what the copy will give it, its default or NULL
                value = self.new_column_value(column)
            items.append(f"{value} AS {self.q(column.name)}")
        return items

    @property
    def own_rows(self) -> str:
        """Where the table's rows are read: the table, or an earlier stage's output."""
        return self.q(self.reads) if self.origin is None else self.origin

    @property
    def own_id(self) -> str:
        """The row id of ``own_rows``."""
        return self.row_id if self.origin is None else self.q(STAGE_ID)

    def stage_output(self) -> str:
        """The rows this plan would write, with their row id, for a later stage to read.

        Conversions are tried (TRY): a later stage's predicates are pushed
        below the filter that drops the rows whose values don't convert
        (measured: DuckDB then raised its conversion error); for the rows
        that pass, a tried conversion is the conversion.
        """
        items = [f"{self.own_id} AS {self.q(STAGE_ID)}", *self.target_values(safe=True)]
        return (
            f"(SELECT {', '.join(items)} FROM {self.own_rows} WHERE {self.own_id} NOT IN "
            f"(SELECT rid FROM {self.q(self.rejected)} WHERE tbl = {self.literal(self.name)}))"
        )

    def new_column_value(self, column: sa.Column[object]) -> str:
        """A new column's value in the rows being judged: its server default, else NULL.

        Rules over new columns (a CHECK or FOREIGN KEY that comes with the
        column) read it from the same relation as every other rule.
        """
        type_sql = self.type_sql(column.type)
        if isinstance(column.server_default, sa.DefaultClause) and not implicit_sequence(column):
            return f"CAST({self.default_sql(column)} AS {type_sql})"
        return f"CAST(NULL AS {type_sql})"

    def survivors(self, table: str, relation: str) -> str:
        return (
            f"(SELECT * FROM {relation} AS s WHERE s.{self.q(ROW_ID)} NOT IN "
            f"(SELECT rid FROM {self.q(self.rejected)} WHERE tbl = {self.literal(table)}))"
        )

    def rows_of(self, table: str) -> str:
        if table == self.name and self.origin is not None:
            return f"(SELECT {self.own_id} AS {self.q(ROW_ID)}, * FROM {self.origin})"
        return f"(SELECT {self.row_id} AS {self.q(ROW_ID)}, * FROM {self.q(table)})"

    def final_target(self) -> str:
        """The target's rows as referencing tables will see them once the plan has run."""
        raise NotImplementedError

    # -- rules ------------------------------------------------------------------

    def target_rules(self) -> list[Rule]:
        """The rules over the table's own rows; orphans before duplicates.

        In quarantine mode each rule sees only the rows earlier rules kept, so
        a duplicate group whose first row is an orphan keeps its next, valid row.
        """
        untouched = not self.changed and not self.column_map
        src = self.source()
        return [
            *self.conversion_rules(),
            *self.not_null_rules(src),
            *self.check_rules(src, untouched),
            *self.foreign_key_rules(src, untouched),
            *self.key_rules(src, untouched),
        ]

    def conversion_rules(self) -> list[Rule]:
        rules = []
        for name in sorted(self.changed) if self.can_try else ():
            value, _ = self.values[name]
            predicate = f"TRY(({value}) IS NULL) IS NULL"
            rules.append(
                self.rule(self.name, "conversion", name, value, self.rows_of(self.name), predicate)
            )
        return rules

    def not_null_rules(self, src: str) -> list[Rule]:
        old = {c.name: c for c in self.previous.columns}
        rules = []
        for column in self.target.columns:
            if column.nullable or column.name not in self.values:
                continue
            was = old.get(column.name)
            if was is not None and not was.nullable and column.name not in self.changed:
                continue
            predicate = f"{self.q(column.name)} IS NULL"
            if column.name in self.changed and self.can_try:  # a failed conversion: own rule
                predicate += f" AND {self.q(CONVERTS + column.name)}"
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
        return rules

    def check_rules(self, src: str, untouched: bool) -> list[Rule]:
        old_checks = {normalize_sql(self.check_sql(c)) for c in sorted_checks(self.previous)}
        rules = []
        for check in sorted_checks(self.target):
            expression = self.check_sql(check)
            if untouched and normalize_sql(expression) in old_checks:
                continue  # the same CHECK over the same values already holds
            name = str(check.name or "check")
            rules.append(
                self.rule(self.name, "CHECK", name, expression, src, f"NOT ({expression})")
            )
        return rules

    def foreign_key_rules(self, src: str, untouched: bool) -> list[Rule]:
        old_fks = {fk_reference(fk): fk for fk in self.previous.foreign_key_constraints}
        rules = []
        for fk in sorted_fks(self.target):
            was = old_fks.get(fk_reference(fk))
            # the rows obey a key the database enforced; one it did not enforce
            # (deferrable, on DuckDB: foreign_keys.py) may have orphans, judged anew
            if untouched and was is not None and enforced_by(was, self.dialect):
                continue
            parent = self.parent_rows(referred_table(fk))
            rules.append(self.fk_rule(self.name, fk, src, parent, parent))
        return rules

    def key_rules(self, src: str, untouched: bool) -> list[Rule]:
        old_keys = {tuple(k) for k in key_columns(self.previous)}
        old_keys |= {tuple(columns) for _, columns in unique_indexes(self.previous)}
        keys = [(kind, name, columns) for kind, name, columns in key_constraints(self.target)]
        # unique indexes are built after the copy: judged like keys, after them
        keys += [("UNIQUE INDEX", name, cols) for name, cols in unique_indexes(self.target)]
        return [
            self.unique_rule(self.name, kind, name, columns, src)
            for kind, name, columns in keys
            if not (untouched and tuple(columns) in old_keys)
        ]

    def parent_rows(self, name: str) -> str:
        """A referenced table's rows: the table, or what the run will make of it."""
        return self.parents.get(name, f"(SELECT * FROM {self.q(name)})")

    def dependent_rules(self, mode: OnViolation) -> list[Rule]:
        """Rows of referencing tables left without a parent by the change."""
        rules: list[Rule] = []
        keys_change = bool(self.changed or self.column_map)
        for dependent in self.dependents:
            for fk in sorted_fks(dependent):
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

    def guard_sql(self, count_sql: str, message: str) -> str:
        """Offline fail mode: a statement that errors when ``count_sql`` counts rows."""
        raise NotImplementedError

    def rule(
        self, table: str, kind: str, name: str, expression: str, relation: str, predicate: str
    ) -> Rule:
        # A row-level rule judges every row, even one another rule rejected, so
        # that a quarantined row carries all of its reasons.
        keys = self.sample_keys(table)
        reason = self.literal(f"{kind} {name}: {expression}")
        return self.finished(
            Rule(
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
                    f"INSERT INTO {self.q(self.rejected)} SELECT {self.literal(table)}, "
                    f"s.{self.q(ROW_ID)}, {reason} FROM {relation} AS s WHERE {predicate}"
                ),
            )
        )

    def finished(self, rule: Rule) -> Rule:
        """``rule`` with its offline guard."""
        return dataclasses.replace(rule, guard_sql=self.guard_sql(rule.count_sql, rule.refusal()))

    def unique_rule(
        self, table: str, kind: str, name: str, columns: Sequence[str], relation: str
    ) -> Rule:
        cols = self.cols(columns)
        not_null = " AND ".join(f"{self.q(c)} IS NOT NULL" for c in columns)
        ranked = (
            f"(SELECT *, row_number() OVER (PARTITION BY {cols} ORDER BY "
            f"{self.keep_order(table, columns)}) AS __ccs_rank "
            f"FROM {{rel}} AS r WHERE {not_null})"
        )
        kept = "a newer" if self.policy.keeps_last(table) else "an earlier"
        reason = self.literal(f"{kind} {name}: duplicate of {kept} row")
        groups = (
            f"SELECT count(*) - 1 AS extra FROM {relation} AS s WHERE {not_null} "
            f"GROUP BY {cols} HAVING count(*) > 1"
        )
        return self.finished(
            Rule(
                table=table,
                kind=kind,
                name=name,
                expression=f"{kind} ({', '.join(columns)})",
                count_sql=f"SELECT coalesce(sum(extra), 0)::BIGINT FROM ({groups}) AS g",
                screen_sql=(
                    f"SELECT count(*) - count(DISTINCT hash({cols})) FROM {relation} AS s "
                    f"WHERE {not_null}"
                    if self.screens_duplicates
                    else ""
                ),
                sample_sql=(
                    f"SELECT {cols} FROM {relation} AS s WHERE {not_null} GROUP BY {cols} "
                    f"HAVING count(*) > 1 ORDER BY {cols} LIMIT {SAMPLE_SIZE}"
                ),
                reject_sql=(
                    f"INSERT INTO {self.q(self.rejected)} SELECT {self.literal(table)}, "
                    f"s.{self.q(ROW_ID)}, {reason} FROM "
                    f"{ranked.format(rel=self.survivors(table, relation))} AS s "
                    "WHERE __ccs_rank > 1"
                ),
            )
        )

    def keep_order(self, table: str, columns: Sequence[str]) -> str:
        """ORDER BY terms choosing the duplicate kept (the first): the policy's columns,
        then the key, then the order the rows were stored in (the row id); all descending
        for a table the policy keeps the last row of (NULLs last either way)."""
        definition = self.definition(table)
        keys = [c for c in self.policy.keep_first_by if c in definition.columns]
        keys += [c.name for c in definition.primary_key.columns if c.name not in columns]
        way = "DESC" if self.policy.keeps_last(table) else "ASC"
        return "".join(f"{self.q(k)} {way} NULLS LAST, " for k in keys) + f"{self.q(ROW_ID)} {way}"

    def fk_rule(
        self,
        table: str,
        fk: sa.ForeignKeyConstraint,
        relation: str,
        planned_parent: str,
        final_parent: str,
    ) -> Rule:
        columns = [c.name for c in fk.columns]
        referred = referred_columns(fk)
        parent = referred_table(fk)
        not_null = " AND ".join(f"s.{self.q(c)} IS NOT NULL" for c in columns)
        match = " AND ".join(
            f"p.{self.q(r)} = s.{self.q(c)}" for c, r in zip(columns, referred, strict=True)
        )

        def orphan(parents: str) -> str:
            return f"{not_null} AND NOT EXISTS (SELECT 1 FROM {parents} AS p WHERE {match})"

        name = fk_name(table, fk)
        expression = f"({', '.join(columns)}) REFERENCES {parent} ({', '.join(referred)})"
        keys = self.cols(self.sample_keys(table), "s.")
        reason = self.literal(f"FOREIGN KEY {name}: no row {expression}")
        shared = self.shares_reference_scans
        return self.finished(
            Rule(
                table=table,
                kind="FOREIGN KEY",
                name=name,
                expression=expression,
                relation=relation if shared else "",
                predicate=orphan(planned_parent) if shared else "",
                count_sql=f"SELECT count(*) FROM {relation} AS s WHERE {orphan(planned_parent)}",
                sample_sql=(
                    f"SELECT {keys} FROM {relation} AS s WHERE {orphan(planned_parent)} "
                    f"ORDER BY {keys} LIMIT {SAMPLE_SIZE}"
                ),
                reject_sql=(
                    f"INSERT INTO {self.q(self.rejected)} SELECT {self.literal(table)}, "
                    f"s.{self.q(ROW_ID)}, {reason} FROM {self.survivors(table, relation)} AS s "
                    f"WHERE {orphan(final_parent)}"
                ),
            )
        )

    def definition(self, table: str) -> sa.Table:
        if table == self.name:
            return self.target
        return next(d for d in self.dependents if d.name == table)

    def sample_keys(self, table: str) -> list[str]:
        """The columns that name a row of ``table`` in reports (see RowPolicy)."""
        definition = self.definition(table)
        pk = [c.name for c in definition.primary_key.columns]
        if pk:
            return pk
        for candidate in self.policy.sample_columns:
            if candidate.format(table=table) in definition.columns:
                return [candidate.format(table=table)]
        return [next(iter(definition.columns)).name]
