"""The create-copy-swap plan as a pure function: no database involved."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from duckdb_sqlalchemy import Dialect

from egregora.database.migration.copyswap.model import Facts
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.copyswap.planner import plan_copy_swap
from egregora.database.migration.duckdb_versions import features
from egregora.database.migration.errors import InvalidOperation

DIALECT = Dialect()


def _posts(*extra: sa.SchemaItem, name: str = "posts") -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("slug", sa.String()),
        sa.Column("title", sa.String()),
        sa.Column("status", sa.String()),
        sa.UniqueConstraint("slug"),
        sa.Index("ix_posts_title", "title"),
        *extra,
    )


def test_keys_and_indexes_are_built_after_the_bulk_copy() -> None:
    previous = _posts()
    target = _posts(sa.CheckConstraint("length(title) > 0", name="ck_title"))
    plan = plan_copy_swap(previous, target, dialect=DIALECT)
    statements = plan.statements()
    insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT INTO posts__ccs_new"))
    create = next(
        i for i, s in enumerate(statements) if s.startswith("CREATE TABLE posts__ccs_new")
    )
    assert create < insert
    assert "CHECK (length(title) > 0)" in statements[create]
    after = statements[insert + 1 :]
    assert after[:2] == ["DROP TABLE posts", "ALTER TABLE posts__ccs_new RENAME TO posts"]
    if features().add_unique:
        assert "PRIMARY KEY" not in statements[create] and "UNIQUE" not in statements[create]
        assert "ALTER TABLE posts ADD PRIMARY KEY (id)" in after
        assert "ALTER TABLE posts ADD UNIQUE (slug)" in after
    else:  # DuckDB 1.4 can't ADD UNIQUE: a table with one declares its keys in CREATE TABLE
        assert "PRIMARY KEY (id)" in statements[create] and "UNIQUE (slug)" in statements[create]
        assert not any(s.startswith("ALTER TABLE posts ADD") for s in after)
    assert any(s.startswith("CREATE INDEX ix_posts_title ON posts") for s in after)


def test_only_the_new_check_is_a_rule_when_nothing_else_changes() -> None:
    plan = plan_copy_swap(
        _posts(), _posts(sa.CheckConstraint("length(title) > 0", name="ck_title")), dialect=DIALECT
    )
    assert [(r.kind, r.name) for r in plan.rules] == [("CHECK", "ck_title")]
    assert "NOT (length(title) > 0)" in plan.rules[0].count_sql


def test_fail_mode_has_no_quarantine_steps_and_quarantine_mode_does() -> None:
    target = _posts(sa.CheckConstraint("length(title) > 0", name="ck_title"))
    fail = plan_copy_swap(_posts(), target, dialect=DIALECT)
    assert not any(s.phase in ("quarantine", "move") for s in fail.steps)
    quarantine = plan_copy_swap(_posts(), target, dialect=DIALECT, on_violation="quarantine")
    text = "\n".join(quarantine.statements())
    assert "CREATE TABLE IF NOT EXISTS posts_quarantine" in text
    assert "INSERT INTO __ccs_rejected" in text
    assert quarantine.statements()[-1] == "DROP TABLE __ccs_rejected"


def test_guard_sql_errors_only_when_rows_violate() -> None:
    plan = plan_copy_swap(
        _posts(), _posts(sa.CheckConstraint("length(title) > 0", name="ck")), dialect=DIALECT
    )
    guard = plan.rules[0].guard_sql
    assert guard.startswith("SELECT error(") and "WHERE n > 0" in guard


def test_column_map_renames_and_casts_become_the_insert_select() -> None:
    previous = sa.Table(
        "t", sa.MetaData(), sa.Column("id", sa.String()), sa.Column("name", sa.String())
    )
    target = sa.Table(
        "t", sa.MetaData(), sa.Column("id", sa.Uuid()), sa.Column("title", sa.String())
    )
    plan = plan_copy_swap(previous, target, dialect=DIALECT, column_map={"title": "name"})
    insert = next(s for s in plan.statements() if s.startswith("INSERT INTO t__ccs_new"))
    assert (
        insert == "INSERT INTO t__ccs_new (id, title) "
        "SELECT CAST(id AS UUID) AS id, CAST((name) AS VARCHAR) AS title FROM t"
    )
    kinds = {(r.kind, r.name) for r in plan.rules}
    assert ("conversion", "id") in kinds and ("conversion", "title") in kinds


def test_hostile_names_are_quoted_by_the_preparer() -> None:
    name = 'we"ird; DROP TABLE x; --'
    col = 'sel"ect'
    previous = sa.Table(name, sa.MetaData(), sa.Column(col, sa.String()))
    target = sa.Table(
        name, sa.MetaData(), sa.Column(col, sa.String()), sa.CheckConstraint(sa.column(col) != "x")
    )
    plan = plan_copy_swap(previous, target, dialect=DIALECT, on_violation="quarantine")
    text = "\n".join(plan.statements())
    assert '"we""ird; DROP TABLE x; --"' in text
    assert '"sel""ect"' in text
    outside_quotes = re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", "", text)
    assert "DROP TABLE x" not in outside_quotes and "--" not in outside_quotes


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"on_violation": "ignore"}, "is not one of fail, quarantine"),
        ({"column_map": {"nope": "id"}}, "column_map names nope"),
        ({"column_map": {"title": "1; DROP TABLE posts"}}, "contains a ';'"),
        ({"column_map": {"title": "  "}}, "non-empty SQL expression"),
    ],
)
def test_bad_arguments_are_refused_before_planning(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidOperation, match=says):
        plan_copy_swap(_posts(), _posts(), dialect=DIALECT, **kwargs)  # type: ignore[arg-type]


def test_a_not_null_column_that_cannot_be_filled_is_refused() -> None:
    target = _posts()
    target.append_column(sa.Column("lang", sa.String(), nullable=False))
    with pytest.raises(InvalidOperation, match="lang is NOT NULL but has no server default"):
        plan_copy_swap(_posts(), target, dialect=DIALECT)
    # with a default, or a mapping, it can
    filled = _posts()
    filled.append_column(sa.Column("lang", sa.String(), nullable=False, server_default="en"))
    plan_copy_swap(_posts(), filled, dialect=DIALECT)


def test_reverse_swaps_definitions_and_inverts_renames() -> None:
    previous = sa.Table("t", sa.MetaData(), sa.Column("name", sa.String()))
    target = sa.Table("t", sa.MetaData(), sa.Column("title", sa.String()))
    op = CreateCopySwapOp(target, previous=previous, column_map={"title": "name"})
    back = op.reverse()
    assert back.table is previous and back.previous is target
    assert list(back.column_map) == ["name"]
    assert back.reverse().column_map == {"title": "name"}
    with pytest.raises(ValueError, match="previous="):
        CreateCopySwapOp(target).reverse()


def test_dependents_are_stashed_dropped_and_rebuilt_in_order() -> None:
    meta = sa.MetaData()
    parent = sa.Table("p", meta, sa.Column("id", sa.String(), primary_key=True))
    child = sa.Table(
        "c",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("pid", sa.String(), sa.ForeignKey("p.id")),
    )
    grandchild = sa.Table(
        "g",
        meta,
        sa.Column("cid", sa.String(), sa.ForeignKey("c.id")),
    )
    target = sa.Table(
        "p",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("x", sa.Integer()),
    )
    plan = plan_copy_swap(parent, target, dialect=DIALECT, dependents=[grandchild, child])
    assert plan.tables == ("p", "c", "g")
    s = plan.statements()
    drops = [x for x in s if x.startswith("DROP TABLE") and "stash" not in x]
    assert drops == ["DROP TABLE g", "DROP TABLE c", "DROP TABLE p"]
    # a referenced table gets its keys inline (DuckDB can't check a FOREIGN KEY
    # against a key added by ALTER TABLE in the same transaction)
    create_p = next(x for x in s if x.startswith("CREATE TABLE p__ccs_new"))
    assert "PRIMARY KEY (id)" in create_p
    assert s.index(next(x for x in s if x.startswith("CREATE TABLE c ("))) < s.index(
        next(x for x in s if x.startswith("CREATE TABLE g ("))
    )


def _child(*extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        "child",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("post_id", sa.String()),
        *extra,
    )


@pytest.mark.parametrize("renamable", [True, False])
def test_a_table_gaining_a_foreign_key_is_moved_aside_when_duckdb_can_rename_it(
    renamable: bool,
) -> None:
    """Moved aside, the rows are copied once; otherwise stashed first (twice)."""
    target = _child(sa.ForeignKeyConstraint(["post_id"], ["posts.id"]))
    plan = plan_copy_swap(_child(), target, dialect=DIALECT, facts=Facts(renamable=renamable))
    statements = plan.statements()
    copies = [s for s in statements if s.startswith(("INSERT INTO", "CREATE TABLE child__"))]
    if renamable:
        rename = statements.index("ALTER TABLE child RENAME TO child__ccs_old")
        create = next(i for i, s in enumerate(statements) if s.startswith("CREATE TABLE child ("))
        assert rename < create
        assert copies == [next(s for s in statements if s.startswith("INSERT INTO child "))]
        assert "FROM child__ccs_old" in copies[0]
        assert "DROP TABLE child__ccs_old" in statements
    else:
        assert not any("RENAME" in s for s in statements)
        assert len(copies) == 2  # CREATE TABLE child__ccs_stash AS ..., INSERT INTO child
