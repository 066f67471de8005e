"""Alembic's operations applied to a table definition, without a database (opchange.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.operations import ops

from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.opchange import changed, changed_by_all, rows_can_break


def _profiles() -> sa.Table:
    metadata = sa.MetaData()
    sa.Table("parents", metadata, sa.Column("id", sa.String(), primary_key=True))
    return sa.Table(
        "profiles",
        metadata,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("title", sa.String(), server_default="untitled", comment="shown"),
        sa.Column("slug", sa.String()),
        sa.Column("parent_id", sa.String(), sa.ForeignKey("parents.id", name="fk_parent")),
        sa.CheckConstraint("length(title) > 0", name="chk_profiles_title_not_empty"),
        sa.UniqueConstraint("slug", name="uq_profiles_slug"),
        sa.Index("ix_profiles_slug", "slug"),
    )


def _names(table: sa.Table) -> set[str]:
    return {str(c.name) for c in table.constraints if c.name}


def test_nothing_is_lost_when_nothing_changes() -> None:
    table = _profiles()
    target, column_map = changed_by_all(table, [])
    assert [c.name for c in target.columns] == ["id", "title", "slug", "parent_id"]
    assert _names(target) == _names(table)
    assert {i.name for i in target.indexes} == {"ix_profiles_slug"}
    assert target.c.title.comment == "shown" and target.c.title.server_default is not None
    assert column_map == {}
    assert table.c.title.table is table  # the original is untouched


def test_add_column_not_null_with_a_check() -> None:
    column = sa.Column("n", sa.Integer(), sa.CheckConstraint("n > 0", name="positive"))
    column.nullable = False
    target, _ = changed(_profiles(), ops.AddColumnOp("profiles", column))
    assert target.c.n.nullable is False
    assert "positive" in _names(target)


def test_drop_column_takes_its_keys_checks_and_indexes() -> None:
    target, _ = changed(_profiles(), ops.DropColumnOp("profiles", "slug"))
    assert "slug" not in target.c
    assert "uq_profiles_slug" not in _names(target) and not target.indexes
    target, _ = changed(_profiles(), ops.DropColumnOp("profiles", "title"))
    assert "chk_profiles_title_not_empty" not in _names(target)


def test_rename_a_column_maps_its_values_and_moves_its_keys() -> None:
    op = ops.AlterColumnOp("profiles", "slug", modify_name="handle")
    target, column_map = changed(_profiles(), op)
    assert [c.name for c in target.columns] == ["id", "title", "handle", "parent_id"]
    assert str(column_map["handle"]) == "slug"
    unique = next(c for c in target.constraints if c.name == "uq_profiles_slug")
    assert [c.name for c in unique.columns] == ["handle"]
    assert [c.name for c in next(iter(target.indexes)).columns] == ["handle"]


def test_renaming_a_column_a_check_reads_is_refused() -> None:
    with pytest.raises(InvalidOperation, match="drop the CHECK first"):
        changed(_profiles(), ops.AlterColumnOp("profiles", "title", modify_name="name"))


def test_alter_nullability_type_default_and_comment() -> None:
    op = ops.AlterColumnOp(
        "profiles",
        "title",
        modify_nullable=False,
        modify_type=sa.Text(),
        modify_server_default=None,
        modify_comment="the name",
    )
    target, _ = changed(_profiles(), op)
    column = target.c.title
    assert column.nullable is False and isinstance(column.type, sa.Text)
    assert column.server_default is None and column.comment == "the name"


def test_constraints_added_and_dropped_by_name() -> None:
    table = _profiles()
    add = ops.CreateCheckConstraintOp("positive", "profiles", "length(slug) > 1")
    drop = ops.DropConstraintOp("fk_parent", "profiles", type_="foreignkey")
    target, _ = changed_by_all(table, [add, drop])
    assert "positive" in _names(target) and "fk_parent" not in _names(target)
    with pytest.raises(InvalidOperation, match="No constraint of table profiles is named nope"):
        changed(table, ops.DropConstraintOp("nope", "profiles", type_="check"))


def test_primary_key_added_makes_its_columns_not_null() -> None:
    metadata = sa.MetaData()
    tags = sa.Table("tags", metadata, sa.Column("name", sa.String()))
    target, _ = changed(tags, ops.CreatePrimaryKeyOp("pk_tags", "tags", ["name"]))
    assert target.primary_key.name == "pk_tags" and target.c.name.nullable is False
    with pytest.raises(InvalidOperation, match="PRIMARY KEY already"):
        changed(target, ops.CreatePrimaryKeyOp("pk2", "tags", ["name"]))


def test_a_batch_is_one_target() -> None:
    operations = [
        ops.AddColumnOp("profiles", sa.Column("n", sa.Integer())),
        ops.AlterColumnOp("profiles", "slug", modify_name="handle"),
        ops.AlterColumnOp("profiles", "handle", modify_nullable=False),
        ops.CreateIndexOp("ux_n", "profiles", ["n"], unique=True),
    ]
    target, column_map = changed_by_all(_profiles(), operations)
    assert target.c.handle.nullable is False
    assert str(column_map["handle"]) == "slug" and "n" not in column_map
    assert {i.name for i in target.indexes} == {"ix_profiles_slug", "ux_n"}


def test_a_self_reference_follows_a_renamed_table() -> None:
    metadata = sa.MetaData()
    nodes = sa.Table(
        "nodes",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("up", sa.Integer(), sa.ForeignKey("nodes.id")),
    )
    target, _ = changed(nodes, ops.RenameTableOp("nodes", "tree"))
    [fk] = target.foreign_key_constraints
    assert target.name == "tree" and fk.elements[0].target_fullname == "tree.id"


@pytest.mark.parametrize(
    ("op", "breaks"),
    [
        (ops.AlterColumnOp("t", "c", modify_nullable=False), True),
        (ops.AlterColumnOp("t", "c", modify_nullable=True), False),
        (ops.AlterColumnOp("t", "c", modify_type=sa.Integer()), True),
        (ops.AlterColumnOp("t", "c", modify_name="d"), False),
        (ops.CreateUniqueConstraintOp("u", "t", ["c"]), True),
        (ops.CreateIndexOp("i", "t", ["c"], unique=True), True),
        (ops.CreateIndexOp("i", "t", ["c"]), False),
        (ops.AddColumnOp("t", sa.Column("c", sa.String())), False),
        (ops.AddColumnOp("t", sa.Column("c", sa.String(), nullable=False)), True),
        (ops.DropColumnOp("t", "c"), False),
    ],
)
def test_which_operations_rows_can_break(op: ops.MigrateOperation, breaks: bool) -> None:
    assert rows_can_break(op) is breaks
