"""Questions about table definitions: one answer for comparison, planning and rendering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from egregora.database.migration.definitions import (
    all_checks,
    checks_changed_in_text,
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


def test_checks_changed_in_text_are_named_ones_whose_expression_differs() -> None:
    def tasks(types: str, other: str = "x > 0") -> sa.Table:
        return sa.Table(
            "tasks",
            sa.MetaData(),
            sa.Column("task_type", sa.String()),
            sa.Column("x", sa.Integer(), sa.CheckConstraint(other, name="chk_x")),
            sa.CheckConstraint(f"task_type IN ({types})", name="chk_tasks_task_type"),
            sa.CheckConstraint("x < 9"),  # nameless: matched by text elsewhere, not here
        )

    old = tasks("'a', 'b'")
    assert checks_changed_in_text(old, tasks("'a', 'b', 'c'")) == {"chk_tasks_task_type"}
    assert checks_changed_in_text(old, tasks("'a',   'b'")) == set()  # spacing is no change
    assert checks_changed_in_text(old, tasks("'a', 'b'", "X > 0")) == set()  # nor case
    assert checks_changed_in_text(old, tasks("'a', 'b'", "x > 1")) == {"chk_x"}


def test_a_deferrable_key_differs_from_an_immediate_one() -> None:
    def fk(**timing: object) -> sa.ForeignKeyConstraint:
        t = sa.Table("c", sa.MetaData(), sa.Column("p", sa.String()))
        key = sa.ForeignKeyConstraint(["p"], ["parents.id"], **timing)
        t.append_constraint(key)
        return key

    immediate, deferred = fk(), fk(deferrable=True, initially="DEFERRED")
    assert fk_signature(immediate)[:3] == fk_signature(deferred)[:3]
    assert fk_signature(immediate) != fk_signature(deferred)
