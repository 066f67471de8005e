"""What a migration run did (or, in a dry run, would do), for people and for CI.

``alembic -x dry_run=true upgrade head`` runs everything inside a transaction
on the real file, fills a :class:`RunReport`, and rolls back. The report is
printed, and written as JSON with ``-x report=PATH``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass
class ViolationReport:
    kind: str
    name: str
    expression: str
    rows: int
    samples: list[list[Any]]


@dataclass
class TableReport:
    revision: str
    table: str
    rows_before: int
    rows_copied: int
    rows_quarantined: int
    indexes_built: int
    seconds: float
    reasons: dict[str, int] = field(default_factory=dict)
    violations: list[ViolationReport] = field(default_factory=list)
    #: PostgreSQL: altered where it stands; rows_copied then counts the rows kept
    in_place: bool = False

    @property
    def kept(self) -> str:
        """``1 row copied``, ``3 rows kept in place``."""
        return rows_kept(self.rows_copied, self.in_place)


@dataclass
class RevisionReport:
    revision: str
    direction: str
    seconds: float
    #: rows this revision added to each ``<table>_quarantine`` (counted in the tables)
    quarantined: dict[str, int] = field(default_factory=dict)


@dataclass
class DestroyedData:
    """What a dropped column or table held: non-NULL values, or rows."""

    revision: str
    table: str
    column: str | None  # None: the whole table
    values: int

    def describe(self) -> str:
        if self.column is None:
            return f"table {self.table}: {plural(self.values, 'row')}"
        return f"{self.table}.{self.column}: {plural(self.values, 'non-NULL value')}"


@dataclass
class LockReport:
    """PostgreSQL: one statement of the run, the lock it takes and what it does holding it."""

    revision: str
    statement: str
    lock: str
    does: str
    blocks: bool
    after_commit: bool = False

    def describe(self, when: bool = True) -> str:
        first = "after the commit: " if self.after_commit and when else ""
        wait = "; the application waits for all of it" if self.blocks else ""
        head = " ".join(self.statement.split())
        head = head if len(head) <= 90 else head[:87] + "..."
        return f"{first}{head}: {self.lock}, {self.does}{wait}"


@dataclass
class RunReport:
    dry_run: bool
    on_violation: str
    revisions: list[RevisionReport] = field(default_factory=list)
    tables: list[TableReport] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    destroyed: list[DestroyedData] = field(default_factory=list)
    #: PostgreSQL: each statement's lock, and whether it scans under it (postgresql/lockreport.py)
    locks: list[LockReport] = field(default_factory=list)
    #: DuckDB: the rebuilds held back to the end of the run, written then (copyswap/held.py)
    rebuild_seconds: float = 0.0
    #: a pre-Alembic file adopted: each difference from V3 taken forward (adoption.py)
    adopted: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, float]:
        moved = [n for r in self.revisions for n in r.quarantined.values()]
        return {
            "rows_copied": sum(t.rows_copied for t in self.tables),
            # what the quarantine tables received, whoever moved the rows there
            # (create_copy_swap, or a revision's own SQL)
            "rows_quarantined": sum(moved)
            if any(r.quarantined for r in self.revisions)
            else sum(t.rows_quarantined for t in self.tables),
            "indexes_built": sum(t.indexes_built for t in self.tables),
            "seconds": round(sum(r.seconds for r in self.revisions) + self.rebuild_seconds, 3),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "totals": self.totals}

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    def to_text(self) -> str:
        title = "Dry run (rolled back, nothing was changed)" if self.dry_run else "Migration"
        lines = [f"{title}, on_violation={self.on_violation}:"]
        if self.adopted:
            n = plural(len(self.adopted), "difference")
            lines.append(f"  adopted a file made before Alembic, taking forward {n} from V3:")
            lines += [f"    - {difference}" for difference in self.adopted]
        for revision in self.revisions:
            lines.append(
                f"  revision {revision.revision} ({revision.direction}): {revision.seconds:.2f} s"
            )
            moved = ", ".join(
                f"{table} +{n}" for table, n in sorted(revision.quarantined.items()) if n
            )
            if moved:
                lines.append(f"    moved to quarantine: {moved}")
            for item in (d for d in self.destroyed if _of(d.revision, revision.revision)):
                lines.append(f"    destroys {item.describe()}")
            for lock in (k for k in self.locks if _of(k.revision, revision.revision)):
                if lock.after_commit:
                    continue  # listed below, after the run's total
                lines.append(f"    {'BLOCKS ' if lock.blocks else ''}{lock.describe()}")
            for table in (t for t in self.tables if _of(t.revision, revision.revision)):
                lines.append(
                    f"    {table.table}: {table.kept}, {table.rows_quarantined} quarantined, "
                    f"{plural(table.indexes_built, 'index', 'indexes')} built, "
                    f"{table.seconds:.2f} s"
                )
                for violation in table.violations:
                    samples = ", ".join(sample_text(s) for s in violation.samples)
                    lines.append(
                        f"      {violation.kind} {violation.name} ({violation.expression}): "
                        f"{plural(violation.rows, 'row')}, for example {samples}"
                    )
        if self.rebuild_seconds:
            lines.append(
                "  rebuilds held back to the end of the run, each table written once: "
                f"{self.rebuild_seconds:.2f} s"
            )
        totals = self.totals
        in_place = bool(self.tables) and all(t.in_place for t in self.tables)
        indexes = plural(int(totals["indexes_built"]), "index", "indexes")
        lines.append(
            f"  total: {rows_kept(int(totals['rows_copied']), in_place)}, "
            f"{totals['rows_quarantined']} quarantined, {indexes} built, "
            f"{totals['seconds']:.2f} s"
        )
        later = [k for k in self.locks if k.after_commit]
        if later:
            lines.append("  after the commit, each on its own, while the application goes on:")
            lines += [f"    - {k.revision.split()[0]}: {k.describe(when=False)}" for k in later]
        if self.refused:
            lines.append("  the real run would be refused (on_violation=fail):")
            lines += [f"    - {line}" for line in self.refused]
        return "\n".join(lines)


def _of(tagged: str, revision: str) -> bool:
    """Whether ``tagged`` (``"<revision> upgrade"``) belongs to ``revision``."""
    return tagged.startswith(revision + " ")


def plural(count: int, singular: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``0 rows``; ``1 index``, ``2 indexes``."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def rows_kept(rows: int, in_place: bool) -> str:
    """``3 rows copied`` (a rebuild), ``3 rows kept in place`` (altered in place)."""
    return f"{plural(rows, 'row')} {'kept in place' if in_place else 'copied'}"


def sample_text(values: Sequence[Any]) -> str:
    """A violating row's key as reports show it, in SQL's spelling.

    ``7``, ``NULL``, ``'8bbd...'`` (a UUID), ``DATE '2024-01-02'``, or
    ``(DATE '2024-01-02', 7)`` for several columns: what a user pastes into a
    ``WHERE`` clause, on DuckDB or PostgreSQL.
    """
    spelled = [sql_literal(v) for v in values]
    return spelled[0] if len(spelled) == 1 else f"({', '.join(spelled)})"


def sql_literal(value: Any) -> str:
    """``value`` as an SQL literal that DuckDB and PostgreSQL both read back as it is."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return str(value) if math.isfinite(value) else f"'{value}'"
    if isinstance(value, datetime):
        kind = "TIMESTAMP" if value.tzinfo is None else "TIMESTAMPTZ"
        return f"{kind} {_quoted(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"DATE {_quoted(value.isoformat())}"
    if isinstance(value, time):
        return f"TIME {_quoted(value.isoformat())}"
    return _quoted(str(value))  # text, UUID, and whatever else reads back from text


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
