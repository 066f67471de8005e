"""Counting what a destructive operation drops, for the run's report (and dry runs).

A dropped column's non-NULL values and a dropped table's rows are counted
just before they go, inside the migration's transaction, so that
``alembic -x dry_run=true upgrade head`` says what the real run would destroy.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from egregora.database.migration.report import DestroyedData, RunReport

__all__ = ["record_dropped"]


def record_dropped(
    connection: sa.Connection,
    report: RunReport | None,
    revision: str,
    table: str,
    columns: Iterable[str] | None,
    relation: str | None = None,
) -> None:
    """Add to ``report`` the non-NULL values of ``columns`` of ``table`` (None: its rows).

    ``relation``: where the table's rows are read instead (a fused rebuild's
    earlier stage, whose rows no table holds yet).
    """
    if report is None:
        return
    quote = connection.dialect.identifier_preparer.quote
    source = quote(table) if relation is None else f"{relation} AS s"
    if columns is None:
        count = connection.exec_driver_sql(f"SELECT count(*) FROM {source}").scalar_one()
        report.destroyed.append(DestroyedData(revision, table, None, int(count)))
        return
    for column in columns:
        count = connection.exec_driver_sql(
            f"SELECT count({quote(column)}) FROM {source}"
        ).scalar_one()
        report.destroyed.append(DestroyedData(revision, table, column, int(count)))
