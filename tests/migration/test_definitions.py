"""Questions about table definitions: one answer for comparison, planning and rendering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from egregora.database.migration.definitions import (
    all_checks,
    creation_order,
    fk_name,
    fk_signature,
    key_constraints,
    plain_column,
    referred_columns,
    referred_table,
)
from egregora.database.migration.errors import InvalidOperation


def _tables() -> tuple[sa.Table, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    parent = sa.Table("parent", metadata, sa.Column("id", sa.Integer, primary_key=True))
    child = sa.Table(
        "child",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id")),
        sa.Column("n", sa.Integer, sa.CheckConstraint("n > 0")),
        sa.UniqueConstraint("n"),
    )
    grandchild = sa.Table(
        "grandchild", metadata, sa.Column("child_id", sa.Integer, sa.ForeignKey("child.id"))
    )
    return parent, child, grandchild


def test_column_level_checks_are_checks() -> None:
    _, child, _ = _tables()
    assert [str(c.sqltext) for c in all_checks(child)] == ["n > 0"]


def test_keys_primary_first_then_unique() -> None:
    _, child, _ = _tables()
    assert key_constraints(child) == [
        ("PRIMARY KEY", "pk_child", ["id"]),
        ("UNIQUE", "uq_child_n", ["n"]),
    ]


def test_a_foreign_key_outside_its_metadata_still_names_its_target() -> None:
    lone = sa.Table("lone", sa.MetaData(), sa.Column("p", sa.Integer, sa.ForeignKey("far.pid")))
    (fk,) = lone.foreign_key_constraints
    assert (referred_table(fk), referred_columns(fk)) == ("far", ["pid"])
    assert fk_signature(fk) == (("p",), "far", ("pid",), False)
    assert fk_name("lone", fk) == "fk_lone_p_far"


def test_parents_come_first_and_a_cycle_is_refused() -> None:
    parent, child, grandchild = _tables()
    assert [t.name for t in creation_order([grandchild, child, parent])] == [
        "parent",
        "child",
        "grandchild",
    ]
    metadata = sa.MetaData()
    a = sa.Table("a", metadata, sa.Column("b_id", sa.Integer, sa.ForeignKey("b.id")))
    b = sa.Table(
        "b",
        metadata,
        sa.Column("id", sa.Integer),
        sa.Column("a_id", sa.Integer, sa.ForeignKey("a.b_id")),
    )
    with pytest.raises(InvalidOperation, match="reference each other in a cycle"):
        creation_order([a, b])


@pytest.mark.parametrize(
    ("value", "column"),
    [
        ("old", "old"),
        ("  old_name ", "old_name"),
        (sa.column("Mixed"), "Mixed"),
        ("Title", None),  # PostgreSQL folds it to title: not the column "Title"
        ("old || 'x'", None),
        ("CAST(old AS INTEGER)", None),
        (sa.literal("old"), None),
        (sa.func.lower(sa.column("old")), None),
    ],
)
def test_a_plain_column_is_only_a_bare_name(value: object, column: str | None) -> None:
    assert plain_column(value) == column
