"""Finding the rows a plan's rules reject, before any change, and saying so.

:func:`preflight` counts each rule's violations (row-level rules over one
relation in one scan) with a few sample keys; :func:`violation_report` is the
one-paragraph refusal a user reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from egregora.database.migration.copyswap.model import QUARANTINE_SUFFIX, Rule
from egregora.database.migration.duckdb_versions import features
from egregora.database.migration.report import plural, sample_text

__all__ = ["FOLLOWS", "Violation", "preflight", "scalar", "violation_report"]


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
        keys = ", ".join(sample_text(s) for s in self.samples)
        more = ", ..." if self.rows > len(self.samples) else ""
        return (
            f"{self.rule.kind} {self.rule.name} on {self.table} ({self.rule.expression}): "
            f"{plural(self.rows, 'row')} (for example {keys}{more}){where}"
        )


#: the rule of rows that only follow a violating parent (see Violation.follows)
FOLLOWS = Rule("", "FOREIGN KEY", "", "references a row above", "", "", "")


def preflight(
    raw: Any, rules: Sequence[Rule], revision: str = "", rows: dict[str, int] | None = None
) -> list[Violation]:
    """Count the rows each rule rejects, with a few sample keys; no change made.

    Row-level rules over the same relation are counted together, in one scan
    (``count(*) FILTER (WHERE ...)``, on DuckDB and PostgreSQL alike): v4c
    checks up to five of them per table. ``rows``, when given, gets the
    number of rows of each relation so scanned (one more ``count(*)`` in the
    same scan: PostgreSQL's report takes the table's rows from it, instead
    of a scan of its own).
    """
    counts = _row_rule_counts(raw, rules, rows)
    found = []
    for index, rule in enumerate(rules):
        n = counts[index] if index in counts else counted(raw, rule)
        if n:
            samples = [tuple(r) for r in raw.execute(rule.sample_sql).fetchall()]
            found.append(Violation(rule.table, rule, n, samples, revision))
    return found


def _row_rule_counts(
    raw: Any, rules: Sequence[Rule], rows: dict[str, int] | None
) -> dict[int, int]:
    """Violation counts of the row-level rules, one query per relation (and its rows)."""
    groups: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        if rule.relation and rule.predicate:
            groups.setdefault(rule.relation, []).append(index)
    counts: dict[int, int] = {}
    for relation, indexes in groups.items():
        if len(indexes) < 2 and rows is None:
            continue  # the rule's own count_sql is the same query
        if "TRY(" in relation and rows is None and not features().try_in_shared_scans:
            continue  # DuckDB 1.4 would lose the TRY (duckdb_versions.py): one query each
        filters = [f"count(*) FILTER (WHERE {rules[i].predicate})" for i in indexes]
        if rows is not None:
            filters.append("count(*)")
        row = raw.execute(f"SELECT {', '.join(filters)} FROM {relation} AS s").fetchone()
        counts.update({i: int(n or 0) for i, n in zip(indexes, row, strict=False)})
        if rows is not None:
            rows[relation] = int(row[-1] or 0)
    return counts


def counted(raw: Any, rule: Rule) -> int:
    """The rows ``rule`` rejects; its screen first, when it has one (0: none)."""
    if rule.screen_sql and not scalar(raw, rule.screen_sql):
        return 0
    return scalar(raw, rule.count_sql)


def scalar(raw: Any, sql: str) -> int:
    """The one number ``sql`` answers (0 for NULL)."""
    row = raw.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


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
