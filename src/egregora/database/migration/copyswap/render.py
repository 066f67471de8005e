"""Rendering ``op.create_copy_swap(...)`` into revision scripts.

The table definitions are written inline (``sa.Table(name, sa.MetaData(),
...)``) so that a revision is frozen history and never imports the live
metadata. Columns and constraints are rendered by Alembic's own renderers,
so they read like ``op.create_table`` output.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic.autogenerate import render as alembic_render
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import renderers
from alembic.operations import ops

from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.definitions import column_checks

_INDENT = "    "


@renderers.dispatch_for(CreateCopySwapOp)
def render_create_copy_swap(autogen_context: AutogenContext, op: CreateCopySwapOp) -> str:
    prefix = alembic_render._alembic_autogenerate_prefix(autogen_context)  # noqa: SLF001
    args = [render_table(op.table, autogen_context)]
    if op.previous is not None:
        args.append("previous=" + render_table(op.previous, autogen_context))
    if op.column_map:
        items = ", ".join(f"{k!r}: {_render_value(v)}" for k, v in op.column_map.items())
        args.append(f"column_map={{{items}}}")
    if op.on_violation is not None:
        args.append(f"on_violation={op.on_violation!r}")
    if op.dependents:
        tables = ",\n".join(_indent(render_table(t, autogen_context)) for t in op.dependents)
        args.append(f"dependents=[\n{tables},\n]")
    if op.reverse_column_map is not None:
        items = ", ".join(f"{k!r}: {_render_value(v)}" for k, v in op.reverse_column_map.items())
        args.append(f"reverse_column_map={{{items}}}")
    body = ",\n".join(_indent(a) for a in args)
    return "".join(f"{line}\n" for line in destruction_comments(op)) + (
        f"{prefix}create_copy_swap(\n{body},\n)"
    )


def destruction_comments(op: CreateCopySwapOp) -> list[str]:
    """``# destroys ...`` lines: what the rebuild drops or may not be able to keep."""
    name = op.table.name
    lines = [f"# destroys {name}.{c} and every value in it" for c in op.dropped_columns()]
    for column, old, new in op.changed_types():
        lines += [
            f"# converts {name}.{column} from {old} to {new}:",
            "#   rows whose values don't fit are refused (or quarantined), never cut",
        ]
        if rewrites_on_postgresql(old, new):
            lines += [
                f"#   BLOCKS on PostgreSQL: ALTER COLUMN ... TYPE rewrites {name} under ACCESS",
                "#   EXCLUSIVE, and the application waits for the whole rewrite (run it off-peak)",
            ]
    return lines


_TEXT = re.compile(r"^(VARCHAR|TEXT|CHARACTER VARYING)(\((\d+)\))?$")


def rewrites_on_postgresql(old: str, new: str) -> bool:
    """Whether PostgreSQL rewrites the table to change a column from ``old`` to ``new``.

    Widening a text type (VARCHAR(n) to a longer VARCHAR, VARCHAR or TEXT) is
    binary-coercible: a catalog change. Every other change is taken as a rewrite.
    """
    before, after = _TEXT.match(old), _TEXT.match(new)
    if before is None or after is None:
        return True
    if after.group(3) is None:
        return False
    return before.group(3) is None or int(after.group(3)) < int(before.group(3))


@renderers.dispatch_for(ops.DropColumnOp, replace=True)
def render_drop_column(autogen_context: AutogenContext, op: ops.DropColumnOp) -> list[str]:
    """Alembic's ``op.drop_column``, saying what it destroys."""
    return [
        f"# destroys {op.table_name}.{op.column_name} and every value in it",
        alembic_render._drop_column(autogen_context, op),  # noqa: SLF001
    ]


@renderers.dispatch_for(ops.DropTableOp, replace=True)
def render_drop_table(autogen_context: AutogenContext, op: ops.DropTableOp) -> list[str]:
    """Alembic's ``op.drop_table``, saying what it destroys."""
    return [
        f"# destroys table {op.table_name} and every row in it",
        alembic_render._drop_table(autogen_context, op),  # noqa: SLF001
    ]


def render_table(table: sa.Table, autogen_context: AutogenContext) -> str:
    """``sa.Table(name, sa.MetaData(), columns..., constraints..., indexes...)``."""
    sa_prefix = alembic_render._sqlalchemy_autogenerate_prefix(autogen_context)  # noqa: SLF001
    columns = [
        alembic_render._render_column(c, autogen_context)  # noqa: SLF001
        for c in table.columns
    ]
    constraints = sorted(
        rendered
        for rendered in (
            alembic_render._render_constraint(c, autogen_context, table.metadata)  # noqa: SLF001
            for c in (*table.constraints, *column_checks(table))
        )
        if rendered is not None
    )
    indexes = sorted(_render_index(i, sa_prefix) for i in table.indexes)
    args = [repr(table.name), f"{sa_prefix}MetaData()", *columns, *constraints, *indexes]
    if table.comment is not None:
        args.append(f"comment={table.comment!r}")
    inner = ",\n".join(_indent(a) for a in args)
    return f"{sa_prefix}Table(\n{inner},\n)"


def _render_index(index: sa.Index, sa_prefix: str) -> str:
    columns = ", ".join(repr(c.name) for c in index.columns)
    unique = ", unique=True" if index.unique else ""
    return f"{sa_prefix}Index({str(index.name)!r}, {columns}{unique})"


def _render_value(value: object) -> str:
    if isinstance(value, sa.sql.elements.ColumnClause) and value.table is None:
        return f"sa.column({value.name!r})"
    return repr(value)


def _indent(text: str) -> str:
    return "\n".join(_INDENT + line if line else line for line in text.splitlines())


@renderers.dispatch_for(ops.CreatePrimaryKeyOp, replace=True)
def render_create_primary_key(autogen_context: AutogenContext, op: ops.CreatePrimaryKeyOp) -> str:
    """``op.create_primary_key(...)``: Alembic has no renderer of its own for it."""
    prefix = alembic_render._alembic_autogenerate_prefix(autogen_context)  # noqa: SLF001
    name = alembic_render._render_gen_name(autogen_context, op.constraint_name)  # noqa: SLF001
    schema = f", schema={op.schema!r}" if op.schema else ""
    return f"{prefix}create_primary_key({name!r}, {op.table_name!r}, {list(op.columns)!r}{schema})"
