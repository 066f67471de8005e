"""What every engine's plan shares: the planner interface, quarantine and comment steps.

A planner per engine (:mod:`.duckdb` rebuilds, :mod:`.postgresql` alters in
place) subclasses :class:`StepPlanner` and writes its own ``steps``; the
registry in :mod:`.planner` (``PLANNERS``) picks one by dialect name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import sqlalchemy as sa

from egregora.database.migration.copyswap.model import (
    QUARANTINE_COLUMNS,
    QUARANTINE_SUFFIX,
    Facts,
    OnViolation,
    Rule,
    Source,
    Stage,
    Step,
)
from egregora.database.migration.copyswap.rules import RulePlanner

__all__ = ["StepPlanner"]


class StepPlanner(RulePlanner):
    """A :class:`RulePlanner` that also writes the statements of the change."""

    #: whether keys are added by ALTER after the copy (see CopySwapPlan.deferred_keys)
    defers_keys: ClassVar[bool] = False

    @classmethod
    def check_limits(
        cls, previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]
    ) -> None:
        """Refuse what this engine can't do, before anything is planned (none by default)."""

    def __init__(
        self, dialect: sa.Dialect, stage: Stage, facts: Facts, source: Source | None = None
    ) -> None:
        """RulePlanner's, and what the catalog says where an engine reads it (Facts).

        An engine that alters in place keeps indexes and referencing tables
        where they stand and ignores the rebuild's facts.
        """
        super().__init__(dialect, stage, facts, source)
        self.stored = dict(facts.stored)
        self.kept_indexes = list(facts.kept_indexes)
        self.inline_target_keys = facts.inline_keys
        self.renamable = facts.renamable
        self.copy_origin = (source or Source()).copy_origin

    def steps(self, mode: OnViolation, rules: list[Rule], revision: str) -> list[Step]:
        raise NotImplementedError

    def deferred_keys(self) -> tuple[str, ...]:
        """Tables whose keys the plan adds by ALTER TABLE (see CopySwapPlan.deferred_keys)."""
        return ()

    def rejected_table(self) -> Step:
        """The temporary table of (table, row id, reason) of the rows to quarantine."""
        return Step(
            "quarantine",
            self.name,
            f"CREATE TEMPORARY TABLE {self.q(self.rejected)} "
            f"(tbl VARCHAR, rid {self.row_id_type}, reason VARCHAR)",
        )

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
        rows, row_id = (
            (self.own_rows, self.own_id) if name == self.name else (self.q(name), self.row_id)
        )
        rejected = (
            f"(SELECT rid, string_agg(reason, '; ' ORDER BY reason) AS reason "
            f"FROM {self.q(self.rejected)} WHERE tbl = {self.literal(name)} GROUP BY rid)"
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
                f"{self.literal(revision)} FROM {rows} AS o "
                f"JOIN {rejected} AS r ON o.{row_id} = r.rid",
            ),
        ]

    def comment_steps(self, table: sa.Table) -> list[Step]:
        """The table's and its columns' comments."""
        steps = []
        if table.comment is not None:
            steps.append(
                Step("comment", table.name, self.comment_sql(table.name, None, table.comment))
            )
        for column in table.columns:
            if column.comment is not None:
                sql = self.comment_sql(table.name, column.name, column.comment)
                steps.append(Step("comment", table.name, sql))
        return steps
