"""Adopting Egregora databases made before Alembic (legacy V3), as the field has them.

Such a database has V3's tables but no ``alembic_version``. The baseline
revision calls :func:`create_or_adopt`: on an empty database it creates the
baseline; on a file made by the Egregora application (whose code wrote V3
with small differences that changed week by week: docs/field-files.md), it
takes forward every difference the history can take without losing anything
(assessment.py says which, and what happens to each), and lets Alembic stamp
the revision. It changes a table only where V3 requires it: a missing table
is created empty, a V3 CHECK the application forgot is added by a rebuild
(``op.create_copy_swap``: every row checked first, refused or quarantined by
the run's ``-x on_violation``), and a conversion asked for is made. A file
that can't be taken forward so is refused before any change. Tables, views,
macros and sequences that are not the schema's are left alone, and named.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.schema import CreateTable

from egregora.database.migration.assessment import Assessment, Inputs, assess
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.dialects import catalog_of
from egregora.database.migration.errors import AdoptionRefused
from egregora.database.migration.runstate import run_of

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"


def create_or_adopt(
    op: Operations, baseline: sa.MetaData, views: Mapping[str, str], revision: str
) -> None:
    """Create ``baseline`` (and ``views``) on an empty database, or adopt a V3 file."""
    context = op.get_context()
    if context.as_sql:
        _create(op, baseline.sorted_tables, views, existing_views=set())
        return
    bind = op.get_bind()
    found = assess(bind, _inputs(context.opts, baseline, views))
    if found.empty:
        _create(op, baseline.sorted_tables, views, existing_views=set())
        return
    if found.refusals:
        raise AdoptionRefused(refusal(found, revision))
    log.info(
        "Adopting an existing %s database: %s",
        revision,
        differences_line(found) or "its tables match V3 exactly, no row is touched.",
    )
    left_alone = describe_left_alone(found.others)
    if left_alone:
        log.info("%s adoption: left alone %s.", revision, left_alone)
    report = run_of(context.opts).report
    if report is not None:
        report.adopted = [d.describe() for d in found.differences]
    # tables and views first: the rebuilds are then held back (copyswap/held.py) and
    # written with the later revisions' rebuilds of the same tables, each table once
    tables = [baseline.tables[n] for n in found.create]
    _create(op, tables, views, existing_views=catalog_of(bind).tables_and_views()[1])
    for _, rebuild in sorted(found.rebuilds.items()):
        op.invoke(CreateCopySwapOp(rebuild.target, column_map=rebuild.column_map))


def _inputs(
    opts: MutableMapping[str, Any], baseline: sa.MetaData, views: Mapping[str, str]
) -> Inputs:
    head = opts.get("target_metadata")
    return Inputs(
        baseline=baseline,
        views=tuple(views),
        head=head if isinstance(head, sa.MetaData) else None,
        naive_zone=run_of(opts).naive_timestamps,
    )


def differences_line(found: Assessment) -> str:
    """Every difference taken forward, in one line (empty when there is none)."""
    if not found.differences:
        return ""
    n = len(found.differences)
    return (
        f"{n} difference{'' if n == 1 else 's'} from V3 taken forward: "
        + "; ".join(d.describe() for d in found.differences)
        + "."
    )


def refusal(found: Assessment, revision: str) -> str:
    """The one paragraph of a file that is not adopted: why, and that nothing changed."""
    reasons = "; ".join(found.refusals)
    taken = len(found.differences)
    also = (
        f" (Its {taken} other difference{'' if taken == 1 else 's'} from V3 could be taken "
        "forward: `alembic current` lists them.)"
        if taken
        else ""
    )
    return (
        "This database has tables but no alembic_version, so it would be adopted as an "
        f"Egregora {revision} file, but it was not adopted: {reasons}. Nothing was changed."
        f"{also} If it is not an Egregora database at all, point -x url=... or "
        "EGREGORA_DATABASE_URL at the right file."
    )


def describe_left_alone(others: Mapping[str, list[str]]) -> str:
    """``3 tables (a, b, c), 1 view (v), 1 macro (m), 1 sequence (s)``: what adoption
    did not look at."""
    return ", ".join(
        f"{len(names)} {kind}{'' if len(names) == 1 else 's'} ({', '.join(names)})"
        for kind, names in others.items()
        if names
    )


def note_for_current(context: EnvironmentContext) -> None:
    """``alembic current`` on a file that is not under Alembic yet: say what it is.

    Alembic prints nothing for a database without ``alembic_version``. Such a
    file is assessed (read only, as adoption would) and described: a V3 file
    that ``alembic upgrade head`` will adopt, with its differences, or one it
    would refuse, and why. Read through the configured migration context's
    connection.
    """
    connection = context.get_context().connection
    assert connection is not None, "alembic current runs online"
    began = not connection.in_transaction()
    try:
        tables, _ = catalog_of(connection).tables_and_views()
        base = _baseline(context)
        if VERSION_TABLE in tables or base is None:
            return
        revision, baseline, views = base
        found = assess(connection, _inputs(context.get_context().opts, baseline, views))
        context.config.print_stdout(describe_unadopted(found, revision))
    finally:
        if began and connection.in_transaction():
            connection.rollback()  # only read; the command goes on as Alembic's


def describe_unadopted(found: Assessment, revision: str) -> str:
    """What ``alembic current`` says of a database with no ``alembic_version``."""
    if found.empty:
        return (
            "No alembic_version: this database is empty. `alembic upgrade head` will create "
            "the schema."
        )
    if found.refusals:
        reasons = "".join(f"\n  - {reason}" for reason in found.refusals)
        return (
            "No alembic_version: a file made before Alembic, which `alembic upgrade head` "
            f"would refuse to adopt as an Egregora {revision} file:{reasons}"
        )
    lines = [
        f"No alembic_version: an Egregora {revision} file made before Alembic. `alembic "
        f"upgrade head` will adopt it (stamp it at {revision}) and upgrade it, "
        + (
            f"taking forward {len(found.differences)} differences from V3:"
            if found.differences
            else "no table changed: they match V3 exactly."
        )
    ]
    lines += [f"  - {difference.describe()}" for difference in found.differences]
    left_alone = describe_left_alone(found.others)
    if left_alone:
        lines.append(f"Not the schema's, left alone: {left_alone}.")
    return "\n".join(lines)


def _baseline(context: EnvironmentContext) -> tuple[str, sa.MetaData, dict[str, str]] | None:
    """The base revision's frozen baseline: its ``metadata`` and ``VIEWS``."""
    script = ScriptDirectory.from_config(context.config)
    for base in sorted(script.get_bases()):
        found = script.get_revision(base)
        metadata = getattr(found.module, "metadata", None) if found is not None else None
        if isinstance(metadata, sa.MetaData):
            return base, metadata, dict(getattr(found.module, "VIEWS", {}))
    return None


def _create(
    op: Operations, tables: list[sa.Table], views: Mapping[str, str], existing_views: set[str]
) -> None:
    for table in tables:
        # CreateTable keeps the constraints in definition order (CreateTableOp
        # would rebuild them from a set), so the DDL is the legacy DDL exactly.
        op.execute(CreateTable(table))
    _create_views(op, views, existing_views)


def _create_views(op: Operations, views: Mapping[str, str], present: set[str]) -> None:
    for name, select_sql in views.items():
        if name not in present:
            quoted = op.get_context().dialect.identifier_preparer.quote(name)
            op.execute(f"CREATE VIEW {quoted} AS {select_sql}")
