"""Autogenerate that understands DuckDB: compare, then choose the operation.

Alembic's flow is compare -> ops -> render. This module adds to the first
two steps, through Alembic's documented extension points:

- **compare**: a comparator plugin (``egregora.autogenerate.checks``) that
  detects added, dropped and changed CHECK constraints by their normalized
  expression (DuckDB does not keep constraint names, so Alembic's own
  name-based comparison can't see them), and added or dropped PRIMARY KEYs
  (which Alembic's comparison skips).
- **ops**: :func:`process_revision_directives` hands each table's
  operations to :mod:`.rewrite`. Where DuckDB's ``ALTER TABLE`` can do the
  job and no existing row can break it, Alembic's plain operations stay;
  otherwise every change to that table becomes one ``op.create_copy_swap``
  carrying the complete target and previous definitions. The choice is the
  same against PostgreSQL, so one history runs on both engines.

On PostgreSQL, which keeps constraint names, CHECKs are compared by name
and PRIMARY KEYs as on DuckDB.

Rendering of the new operation lives in :mod:`..copyswap.render`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.runtime.plugins import Plugin
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy.sql.elements import conv

from egregora.database.integrity import foreign_key_violations
from egregora.database.migration.autogenerate.rewrite import rewrite_operations
from egregora.database.migration.catalog import (
    canonical_check_expressions,
    changed_check_names,
    driver,
    snapshot,
)
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.definitions import all_checks
from egregora.database.migration.dialects import ours
from egregora.database.migration.errors import ReferenceViolations
from egregora.database.migration.fkactions import NO_REVISION

log = logging.getLogger(__name__)

PLUGIN_NAME = "egregora.autogenerate.checks"
#: What env.py passes as ``autogenerate_plugins``: Alembic's own, and ours.
AUTOGENERATE_PLUGINS = ["alembic.autogenerate.*", PLUGIN_NAME]


# -- compare --------------------------------------------------------------------


def compare_check_constraints(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    """Add/drop CHECK operations, matching constraints by DuckDB's own expression."""
    if conn_table is None or metadata_table is None or autogen_context.connection is None:
        return PriorityDispatchResult.CONTINUE
    raw = driver(autogen_context.connection)
    reflected = snapshot(raw, [tname]).get(tname)
    have = {
        c.expression: c for c in (reflected.constraints if reflected else ()) if c.kind == "CHECK"
    }
    want = {
        expression: check
        for check, expression in canonical_check_expressions(
            metadata_table, autogen_context.dialect
        )
    }
    stub = sa.Table(tname, sa.MetaData(), schema=schema)  # leaves conn_table as reflected
    for expression in sorted(have.keys() - want.keys(), key=str):
        constraint = sa.CheckConstraint(sa.text(str(expression)))
        stub.append_constraint(constraint)
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(constraint))
        log.info("Detected removed CHECK (%s) on table %r", expression, tname)
    for expression in sorted(want.keys() - have.keys(), key=str):
        modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(want[expression]))
        log.info("Detected added CHECK (%s) on table %r", expression, tname)
    return PriorityDispatchResult.STOP


def compare_named_check_constraints(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    """Add/drop CHECK operations on a database that keeps constraint names (PostgreSQL).

    Alembic does not compare CHECK constraints at all. PostgreSQL keeps their
    names, and the metadata names every CHECK through its naming convention,
    so they are matched by name; a CHECK that keeps its name but changes its
    expression is found by letting the server spell the new expression
    (catalog.changed_check_names) and becomes a drop and an add.
    """
    if conn_table is None or metadata_table is None or autogen_context.connection is None:
        return PriorityDispatchResult.CONTINUE
    inspector = sa.inspect(autogen_context.connection)
    # name -> the server's text, so that a drop's reverse (the downgrade)
    # re-creates the CHECK that was there
    have = {
        str(c["name"]): str(c["sqltext"])
        for c in inspector.get_check_constraints(tname, schema=schema)
    }
    want = {str(c.name): c for c in all_checks(metadata_table) if c.name is not None}
    changed = changed_check_names(autogen_context.connection, metadata_table) & have.keys()
    stub = sa.Table(tname, sa.MetaData(), schema=schema)  # leaves conn_table as reflected
    for name in sorted((have.keys() - want.keys()) | changed):
        # conv(): the name is final, not to go through the naming convention again
        constraint = sa.CheckConstraint(sa.text(have[name]), name=conv(name))
        stub.append_constraint(constraint)
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(constraint))
        log.info("Detected removed CHECK %s on table %r", name, tname)
    for name in sorted((want.keys() - have.keys()) | changed):
        modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(want[name]))
        log.info(
            "Detected %s CHECK %s on table %r",
            "changed" if name in changed else "added",
            name,
            tname,
        )
    return PriorityDispatchResult.STOP


def compare_primary_key(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    """Add/drop PRIMARY KEY operations: Alembic's own comparison skips primary keys."""
    if conn_table is None or metadata_table is None:
        return PriorityDispatchResult.CONTINUE
    want = [c.name for c in metadata_table.primary_key.columns]
    have = [c.name for c in conn_table.primary_key.columns]
    if want == have:
        return PriorityDispatchResult.CONTINUE
    if not want and not {c.name for c in metadata_table.columns} & set(have):
        # every column of the key is dropped, and the key with them: a drop of
        # the key first would come before the drop_column Alembic reports
        # (found by Alembic's dialect suite, test_remove_identity_column)
        return PriorityDispatchResult.CONTINUE
    if have:
        if conn_table.primary_key.name is None:  # DuckDB reflects no name
            conn_table.primary_key.name = f"{tname}_pkey"
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(conn_table.primary_key))
        log.info("Detected removed PRIMARY KEY (%s) on table %r", ", ".join(have), tname)
    if want:
        modify_table_ops.ops.append(
            ops.CreatePrimaryKeyOp.from_constraint(metadata_table.primary_key)
        )
        log.info("Detected added PRIMARY KEY (%s) on table %r", ", ".join(want), tname)
    return PriorityDispatchResult.CONTINUE


def setup(plugin: Plugin) -> None:
    for dialect in ("duckdb", "postgresql"):
        plugin.add_autogenerate_comparator(
            compare_primary_key, "table", "primarykey", qualifier=dialect
        )
    # Ours win: Alembic runs FIRST before MEDIUM (its default), and a STOP ends
    # the "checkconstraints" subgroup, so a CHECK comparator that a later
    # Alembic registers there (by name, which DuckDB does not keep) never runs
    # beside ours and never proposes the same change twice.
    plugin.add_autogenerate_comparator(
        compare_named_check_constraints,
        "table",
        "checkconstraints",
        qualifier="postgresql",
        priority=DispatchPriority.FIRST,
    )
    plugin.add_autogenerate_comparator(
        compare_check_constraints,
        "table",
        "checkconstraints",
        qualifier="duckdb",
        priority=DispatchPriority.FIRST,
    )


Plugin.setup_plugin_from_module(sys.modules[__name__], PLUGIN_NAME)


# -- ops: choose plain ALTER or create_copy_swap (rewrite.py) -------------------


def process_revision_directives(
    context: MigrationContext, revision: Any, directives: list[ops.MigrationScript]
) -> None:
    """Write nothing when nothing changed; else merge what needs it into create_copy_swap.

    Both engines get the same choice (see :mod:`egregora.database.migration.autogenerate.rewrite`),
    so a revision generated against either runs on both.
    """
    if context.connection is None:
        return
    metadata = context.opts["target_metadata"]
    if not _autogenerating(context) and all(
        s.upgrade_ops is None or s.upgrade_ops.is_empty() for s in directives
    ):  # alembic check, on a database that matches the metadata: then its rows
        check_references(context.connection, metadata)
    for script in list(directives):
        if script.upgrade_ops is None:
            continue
        if _autogenerating(context) and script.upgrade_ops.is_empty():
            directives.remove(script)
            print("No changes in schema detected: no revision written.")  # noqa: T201
            continue
        impl = ours(context.impl)
        upgrade, downgrade = rewrite_operations(impl, metadata, script.upgrade_ops.ops)
        impl.refuse_foreign_key_options(tables_written(upgrade), NO_REVISION)
        script.upgrade_ops.ops = upgrade
        script.downgrade_ops = ops.DowngradeOps(ops=downgrade)


def tables_written(operations: list[ops.MigrateOperation]) -> Iterator[sa.Table]:
    """The tables the operations create or rebuild, as they will be declared."""
    for op in operations:
        if isinstance(op, ops.OpContainer):
            yield from tables_written(op.ops)
        elif isinstance(op, ops.CreateTableOp):
            yield op.to_table()
        elif isinstance(op, CreateCopySwapOp):
            yield op.table
            yield from op.dependents


def check_references(connection: sa.Connection, metadata: sa.MetaData) -> None:
    """``alembic check``: refuse rows that break a FOREIGN KEY the database does not enforce.

    On DuckDB a deferrable key is not in the DDL (egregora.database.foreign_keys);
    this is its check, as Django's ``foreign_key_check`` is SQLite's.
    """
    found = foreign_key_violations(connection, metadata)
    if not found:
        return
    raise ReferenceViolations(
        "Rows reference rows that do not exist, through FOREIGN KEYs that "
        "the database does not enforce itself (deferrable keys, on DuckDB: the "
        "application replaces the rows they reference, see docs/app-on-head.md): "
        + "; ".join(o.describe() for o in found)
        + ". Nothing was changed. Insert the missing rows, or correct or delete the "
        "referencing ones, then run alembic check again; the next rebuild of such a table "
        "reports them too, or quarantines them with -x on_violation=quarantine."
    )


def _autogenerating(context: MigrationContext) -> bool:
    """``alembic revision --autogenerate``, not ``alembic check``.

    Both run this hook; only the command line's ``revision`` has the
    ``--autogenerate`` flag (``check`` needs the empty script it compares).
    """
    config = context.config
    cmd_opts = getattr(config, "cmd_opts", None) if config is not None else None
    return bool(getattr(cmd_opts, "autogenerate", False))
