"""Counting what a destructive operation drops, for the run's report (and dry runs).

A dropped column's non-NULL values and a dropped table's rows are counted
just before they go, inside the migration's transaction, so that
``alembic -x dry_run=true upgrade head`` says what the real run would destroy.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from egregora.database.migration.report import DestroyedData, RunReport


def record_dropped(
    connection: sa.Connection,
    report: RunReport | None,
    revision: str,
    table: str,
    columns: Iterable[str] | None,
) -> None:
    """Add to ``report`` the non-NULL values of ``columns`` of ``table`` (None: its rows)."""
    if report is None:
        return
    quote = connection.dialect.identifier_preparer.quote
    if columns is None:
        count = connection.exec_driver_sql(f"SELECT count(*) FROM {quote(table)}").scalar_one()
        report.destroyed.append(DestroyedData(revision, table, None, int(count)))
        return
    for column in columns:
        count = connection.exec_driver_sql(
            f"SELECT count({quote(column)}) FROM {quote(table)}"
        ).scalar_one()
        report.destroyed.append(DestroyedData(revision, table, column, int(count)))
