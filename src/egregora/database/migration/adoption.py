"""Adopting Egregora databases made before Alembic (legacy V3).

Such a database has the V3 tables but no ``alembic_version``. The baseline
revision calls :func:`create_or_adopt`: on an empty database it creates the
baseline; on a database whose tables match the baseline exactly (columns,
types, nullability, defaults, and CHECK expressions, since DuckDB drops
constraint names) it creates nothing and lets Alembic stamp the revision.
Anything else is refused before a change is made. Tables, views and macros
that are not part of the baseline (Egregora's other stores, a user's own) are
left alone, and named in one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.schema import CreateTable

from egregora.database.migration.catalog import (
    database_shapes,
    describe_differences,
    expected_shapes,
    macro_names,
    tables_and_views,
)
from egregora.database.migration.errors import AdoptionRefused

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"


def create_or_adopt(
    op: Operations, baseline: sa.MetaData, views: Mapping[str, str], revision: str
) -> None:
    """Create ``baseline`` (and ``views``) on an empty database, or adopt a matching one."""
    context = op.get_context()
    if context.as_sql:
        _create(op, baseline, views, existing_views=set())
        return
    bind = op.get_bind()
    tables, views_present = tables_and_views(bind)
    existing = tables - {VERSION_TABLE}
    if not existing:
        _create(op, baseline, views, existing_views=set())
        return
    # Egregora's other stores (ingested messages, ratings, caches), user views
    # and macros live beside the V3 tables: they are verified by nobody here
    # and left exactly as they are. A file with none of the V3 tables is not
    # an Egregora database to adopt, and is refused as before.
    others = existing - set(baseline.tables) if existing & set(baseline.tables) else set()
    existing -= others
    problems = baseline_differences(bind, baseline, existing)
    if problems:
        raise AdoptionRefused(
            "This database has tables but no alembic_version, and they do not match the "
            f"Egregora {revision} schema, so it was not adopted: "
            + "; ".join(problems)
            + ". Nothing was changed. If this is not an Egregora database, point -x url=... "
            "or EGREGORA_DATABASE_URL at the right file; if it is an Egregora database "
            "changed by hand, bring those tables back to the V3 layout (or restore a backup) "
            "and run the upgrade again."
        )
    log.info(
        "Adopting an existing %s database: its %d tables match, no row is touched.",
        revision,
        len(existing),
    )
    left_alone = describe_left_alone(bind, others, views_present - set(views))
    if left_alone:
        log.info("%s adoption: left alone %s.", revision, left_alone)
    _create_views(op, views, views_present)


def describe_left_alone(bind: sa.Connection, tables: set[str], views: set[str]) -> str:
    """``3 tables (a, b, c), 1 view (v), 1 macro (m)``: what adoption did not look at."""
    kinds = [("table", tables), ("view", views), ("macro", macro_names(bind))]
    return ", ".join(
        f"{len(names)} {kind}{'' if len(names) == 1 else 's'} ({', '.join(sorted(names))})"
        for kind, names in kinds
        if names
    )


def baseline_differences(
    bind: sa.Connection, baseline: sa.MetaData, existing: set[str]
) -> list[str]:
    """What keeps the tables ``existing`` from being exactly ``baseline``.

    Both sides are spelled by the database itself: DuckDB canonicalizes the
    baseline in a scratch in-memory database, a server in a rolled-back
    scratch schema (see catalog.expected_shapes).
    """
    expected = expected_shapes(bind, baseline.tables.values())
    actual = database_shapes(bind, existing)
    problems = [f"table {name} is missing" for name in sorted(expected.keys() - existing)]
    problems += [f"table {name} is not part of it" for name in sorted(existing - expected.keys())]
    for name in sorted(expected.keys() & existing):
        problems += describe_differences(expected[name], actual[name])
    return problems


def _create(
    op: Operations, baseline: sa.MetaData, views: Mapping[str, str], existing_views: set[str]
) -> None:
    for table in baseline.sorted_tables:
        # CreateTable keeps the constraints in definition order (CreateTableOp
        # would rebuild them from a set), so the DDL is the legacy DDL exactly.
        op.execute(CreateTable(table))
    _create_views(op, views, existing_views)


def _create_views(op: Operations, views: Mapping[str, str], present: set[str]) -> None:
    for name, select_sql in views.items():
        if name not in present:
            quoted = op.get_context().dialect.identifier_preparer.quote(name)
            op.execute(f"CREATE VIEW {quoted} AS {select_sql}")
