"""Alembic's calls on an impl, as operations (handops.py).

End to end, on real rows: tests/test_hand_written_ops.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic.operations import ops

from egregora.database.migration.handops import batch_operation, describe, dropped


def _table() -> sa.Table:
    return sa.Table(
        "posts",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("slug", sa.String()),
    )


def test_a_batch_entry_is_the_operation_it_records() -> None:
    op = batch_operation(
        "posts", "alter_column", ("posts", "slug"), {"name": "handle", "nullable": False}
    )
    assert isinstance(op, ops.AlterColumnOp)
    assert (op.column_name, op.modify_name, op.modify_nullable) == ("slug", "handle", False)
    assert op.modify_server_default is False and op.modify_comment is False  # left as they are
    column = _table().c.slug
    assert batch_operation("posts", "drop_column", ("posts", column), {}).column_name == "slug"
    index = sa.Index("ux_slug", _table().c.slug, unique=True)
    created = batch_operation("posts", "create_index", (index,), {})
    assert isinstance(created, ops.CreateIndexOp) and created.unique


def test_a_dropped_constraint_keeps_its_name_and_kind() -> None:
    table = _table()
    for constraint, kind in [
        (sa.CheckConstraint("length(slug) > 0", name="chk_posts_slug"), "check"),
        (sa.UniqueConstraint("slug", name="uq_posts_slug"), "unique"),
        (sa.ForeignKeyConstraint(["slug"], ["other.id"], name="fk_slug"), "foreignkey"),
    ]:
        table.append_constraint(constraint)
        op = dropped(constraint)
        assert (op.constraint_name, op.table_name, op.constraint_type) == (
            constraint.name,
            "posts",
            kind,
        )


def test_operations_are_described_as_a_revision_spells_them() -> None:
    operations = [
        ops.AlterColumnOp("posts", "slug", modify_name="handle"),
        ops.AlterColumnOp("posts", "id", modify_nullable=False),
        ops.CreateCheckConstraintOp("c", "posts", "length(slug) > 0"),
    ]
    assert describe(operations) == "alter_column, create_check_constraint"
