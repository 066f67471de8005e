"""The ``-x`` options of this project's migrations: parsed and checked once, before anything runs.

A misspelled ``-x dryrun=true`` must not run the real upgrade, and a bad
value must not even create the database file: :meth:`RunOptions.from_x_args`
refuses both, in one paragraph, before a connection is opened.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from egregora.database.migration.copyswap.model import ON_VIOLATION_CHOICES, OnViolation
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.postgresql.locks import LockPolicy

#: Every -x option this environment reads; anything else is a typo to refuse.
X_OPTIONS = (
    "url",
    "on_violation",
    "dry_run",
    "report",
    "progress_after_ms",
    "memory_limit",
    "lock_timeout",
    "lock_retries",
    "statement_timeout",
    "fuse",
    "naive_timestamps",
)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
#: DuckDB's memory amounts: a number and a unit (checked before it reaches SQL)
_MEMORY = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)


@dataclass(frozen=True)
class RunOptions:
    """What ``-x`` asked of this run, checked."""

    on_violation: OnViolation = "fail"
    dry_run: bool = False
    report: str | None = None
    #: DuckDB: show its progress bar (on a terminal) after this many milliseconds
    progress_after_ms: int = 2000
    #: DuckDB: its memory_limit for the run (``2GB``)
    memory_limit: str | None = None
    #: PostgreSQL: lock_timeout, retries, statement_timeout (checked on every engine)
    lock_policy: LockPolicy = LockPolicy()
    #: DuckDB: hold rebuilds back so that the run writes each table once
    #: (copyswap/held.py); false writes each operation as it comes
    fuse: bool = True
    #: adoption: the zone of a pre-Alembic file's TIMESTAMP values (no time zone),
    #: converted to TIMESTAMP WITH TIME ZONE; None: such a file is refused
    naive_timestamps: str | None = None

    @classmethod
    def from_x_args(cls, x_args: Mapping[str, str]) -> RunOptions:
        """Parse ``-x`` options; refuse an unknown one, or a value that can't be read."""
        unknown = sorted(set(x_args) - set(X_OPTIONS))
        if unknown:
            raise InvalidOperation(
                f"-x {', '.join(unknown)} is not an option of this project's migrations, so "
                f"nothing was run. The options are: {', '.join(X_OPTIONS)} (for example "
                "-x dry_run=true)."
            )
        limit = x_args.get("memory_limit")
        return cls(
            on_violation=_on_violation(x_args.get("on_violation", "fail")),
            dry_run=_boolean("dry_run", x_args.get("dry_run", "false"), DRY_RUN_HINT),
            fuse=_boolean("fuse", x_args.get("fuse", "true"), FUSE_HINT),
            report=_report(x_args.get("report")),
            progress_after_ms=_milliseconds(x_args.get("progress_after_ms", "2000")),
            memory_limit=None if limit is None else _memory(limit),
            lock_policy=LockPolicy.from_x_args(x_args),
            naive_timestamps=_zone(x_args.get("naive_timestamps")),
        )


def _on_violation(value: str) -> OnViolation:
    if value not in ON_VIOLATION_CHOICES:
        raise InvalidOperation(
            f"-x on_violation={value} is not one of {', '.join(ON_VIOLATION_CHOICES)}. "
            "Use fail (the default: stop and report rows that violate new constraints) or "
            "quarantine (move them to <table>_quarantine and go on)."
        )
    return "quarantine" if value == "quarantine" else "fail"


DRY_RUN_HINT = "Use -x dry_run=true to rehearse the upgrade and roll it back."
FUSE_HINT = (
    "Use -x fuse=false to write each create_copy_swap as it comes (the default, true, "
    "writes each table once per run)."
)


def _boolean(name: str, value: str, hint: str) -> bool:
    if value.lower() not in _TRUE + _FALSE:
        raise InvalidOperation(
            f"-x {name}={value} is neither true nor false, so nothing was run. {hint}"
        )
    return value.lower() in _TRUE


def _report(value: str | None) -> str | None:
    if value is not None and not Path(value).expanduser().resolve().parent.is_dir():
        raise InvalidOperation(
            f"-x report={value}: the folder {Path(value).parent} does not exist, so "
            "nothing was run. Give a path in an existing folder."
        )
    return value


def _milliseconds(value: str) -> int:
    if not value.isdigit():
        raise InvalidOperation(
            f"-x progress_after_ms={value} is not a whole number of milliseconds; "
            "for example -x progress_after_ms=2000 (the default)."
        )
    return int(value)


def _memory(value: str) -> str:
    if not _MEMORY.fullmatch(value.strip()):
        raise InvalidOperation(
            f"-x memory_limit={value} is not an amount of memory; give one as DuckDB "
            "takes it, for example -x memory_limit=2GB or -x memory_limit=1500MB."
        )
    return value.strip()


def _zone(value: str | None) -> str | None:
    """A time zone name both engines know (the IANA database's), checked before anything runs."""
    if value is None:
        return None
    zone = value.strip()
    if zone.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidOperation(
            f"-x naive_timestamps={value} is not a time zone, so nothing was run. Give the "
            "zone a file's TIMESTAMP values (no time zone) were written in, as the IANA "
            "database names it: -x naive_timestamps=UTC (what the Egregora application "
            "wrote), or for example -x naive_timestamps=America/Sao_Paulo."
        ) from None
    return zone
