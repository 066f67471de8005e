"""create_copy_swap on PostgreSQL: the in-place plan (pure), and its runs on a real server."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.migration.copyswap.planner import plan_copy_swap
from egregora.database.migration.errors import ConstraintViolations, MigrationFailed

from ...copy_swap_helpers import apply
from ...test_postgresql import pg_sql

PG = postgresql.psycopg.dialect()  # type: ignore[attr-defined]


def parents(*extra: sa.SchemaItem, meta: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        "parents",
        meta if meta is not None else sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
        *extra,
    )


def children(
    *extra: sa.SchemaItem, n_type: Any = None, meta: sa.MetaData | None = None
) -> sa.Table:
    meta = meta if meta is not None else sa.MetaData()
    if "parents" not in meta.tables:
        parents(meta=meta)
    return sa.Table(
        "children",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("parent_id", sa.String()),
        sa.Column("n", n_type if n_type is not None else sa.String()),
        *extra,
    )


def check() -> sa.CheckConstraint:
    return sa.CheckConstraint("n <> 'x'", name="chk_children_n_ok")


def fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["parent_id"], ["parents.id"], name="fk_children_parent_id_parents"
    )


# -- the plan, without a database -------------------------------------------------------


def test_a_new_check_is_added_not_valid_then_validated_and_nothing_is_copied() -> None:
    plan = plan_copy_swap(children(), children(check()), dialect=PG)
    assert plan.statements() == [
        "ALTER TABLE children ADD CONSTRAINT chk_children_n_ok CHECK (n <> 'x') NOT VALID",
        "ALTER TABLE children VALIDATE CONSTRAINT chk_children_n_ok",
    ]
    assert [(r.kind, r.name) for r in plan.rules] == [("CHECK", "chk_children_n_ok")]
    assert "ctid" in plan.rules[0].sample_sql and "rowid" not in plan.rules[0].sample_sql
    assert plan.deferred_keys == ()


def test_a_foreign_key_is_added_not_valid_and_its_orphans_are_a_rule() -> None:
    plan = plan_copy_swap(children(), children(fk()), dialect=PG)
    assert plan.statements() == [
        "ALTER TABLE children ADD CONSTRAINT fk_children_parent_id_parents FOREIGN KEY "
        "(parent_id) REFERENCES parents (id) NOT VALID",
        "ALTER TABLE children VALIDATE CONSTRAINT fk_children_parent_id_parents",
    ]
    assert [r.kind for r in plan.rules] == ["FOREIGN KEY"]


def test_dropping_constraints_uses_their_names() -> None:
    plan = plan_copy_swap(
        children(check(), fk(), sa.UniqueConstraint("n", name="uq_children_n")),
        children(),
        dialect=PG,
    )
    assert plan.statements() == [
        "ALTER TABLE children DROP CONSTRAINT fk_children_parent_id_parents",
        "ALTER TABLE children DROP CONSTRAINT chk_children_n_ok",
        "ALTER TABLE children DROP CONSTRAINT uq_children_n",
    ]
    assert plan.rules == ()


def test_an_unchanged_named_check_is_kept_and_an_unnamed_one_matches_by_text() -> None:
    named = plan_copy_swap(children(check()), children(check()), dialect=PG)
    assert named.statements() == []
    unnamed = plan_copy_swap(
        children(sa.CheckConstraint("n <> 'bad'")),
        children(sa.CheckConstraint("n <> 'bad'")),
        dialect=PG,
    )
    assert unnamed.statements() == []


def test_columns_are_renamed_added_filled_converted_and_dropped() -> None:
    previous = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("old_name", sa.String()),
        sa.Column("n", sa.String()),
        sa.Column("gone", sa.String()),
    )
    target = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("new_name", sa.String()),
        sa.Column("n", sa.Integer()),
        sa.Column("upper_id", sa.String(), nullable=False),
        sa.Column("lang", sa.String(), nullable=False, server_default="en"),
    )
    plan = plan_copy_swap(
        previous,
        target,
        dialect=PG,
        column_map={"new_name": "old_name", "upper_id": "upper(id)"},
    )
    assert plan.statements() == [
        "ALTER TABLE t RENAME COLUMN old_name TO new_name",
        "ALTER TABLE t ADD COLUMN upper_id VARCHAR",
        "ALTER TABLE t ADD COLUMN lang VARCHAR DEFAULT 'en'",
        "UPDATE t SET upper_id = CAST((upper(id)) AS VARCHAR)",
        "ALTER TABLE t ALTER COLUMN n TYPE INTEGER USING CAST(n AS INTEGER)",
        "ALTER TABLE t DROP COLUMN gone",
        "ALTER TABLE t ALTER COLUMN upper_id SET NOT NULL",
        "ALTER TABLE t ALTER COLUMN lang SET NOT NULL",
    ]


def test_quarantine_deletes_children_before_their_parents() -> None:
    dependent = children(fk())
    plan = plan_copy_swap(
        parents(),
        parents(sa.CheckConstraint("length(name) > 0", name="chk_parents_name")),
        dialect=PG,
        dependents=[dependent],
        on_violation="quarantine",
    )
    statements = plan.statements()
    deletes = [s for s in statements if s.startswith("DELETE FROM")]
    assert [d.split()[2] for d in deletes] == ["children", "parents"]
    assert statements.index(deletes[-1]) < statements.index(
        "ALTER TABLE parents ADD CONSTRAINT chk_parents_name CHECK (length(name) > 0) NOT VALID"
    )
    assert not any("__ccs_stash" in s or "__ccs_new" in s for s in statements)


# -- on a real server ------------------------------------------------------------------


def seed(url: str) -> None:
    meta = sa.MetaData()
    children(meta=meta)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    meta.create_all(engine)
    engine.dispose()
    pg_sql(
        url,
        "INSERT INTO parents VALUES ('p1', 'Ana'), ('p2', '')",
        "INSERT INTO children VALUES ('c1', 'p1', '1'), ('c2', 'p2', '2'), ('c3', 'nobody', '3'),"
        " ('c4', NULL, 'x')",
    )


def test_quarantine_moves_orphans_and_children_of_quarantined_parents(pg_url: str) -> None:
    seed(pg_url)
    meta = sa.MetaData()
    apply(pg_url, children(fk(), meta=meta), on_violation="quarantine")  # c3 is an orphan
    assert pg_sql(pg_url, "SELECT id FROM children ORDER BY id") == [("c1",), ("c2",), ("c4",)]
    apply(
        pg_url,
        parents(sa.CheckConstraint("length(name) > 0", name="chk_parents_name")),
        on_violation="quarantine",
    )
    assert pg_sql(pg_url, "SELECT id FROM parents") == [("p1",)]
    assert pg_sql(pg_url, "SELECT id FROM children ORDER BY id") == [("c1",), ("c4",)]
    assert pg_sql(
        pg_url, "SELECT id, _quarantine_reason FROM children_quarantine ORDER BY id"
    ) == [
        ("c2", "FOREIGN KEY fk_children_parent_id_parents: no row (parent_id) REFERENCES "
         "parents (id)"),
        ("c3", "FOREIGN KEY fk_children_parent_id_parents: no row (parent_id) REFERENCES "
         "parents (id)"),
    ]  # fmt: skip
    assert pg_sql(pg_url, "SELECT id FROM parents_quarantine") == [("p2",)]


def test_fail_mode_reports_and_leaves_the_table_as_it_was(pg_url: str) -> None:
    seed(pg_url)
    with pytest.raises(ConstraintViolations, match=r"1 row \(for example 'c4'\)"):
        apply(pg_url, children(check()))
    assert pg_sql(
        pg_url, "SELECT count(*) FROM pg_constraint WHERE conname = 'chk_children_n_ok'"
    ) == [(0,)]


def test_a_value_that_does_not_convert_fails_cleanly(pg_url: str) -> None:
    seed(pg_url)
    before = pg_sql(pg_url, "SELECT * FROM children ORDER BY id")
    with pytest.raises(MigrationFailed, match='invalid input syntax for type integer: "x"'):
        apply(pg_url, children(n_type=sa.Integer()))
    assert pg_sql(pg_url, "SELECT * FROM children ORDER BY id") == before
    assert pg_sql(
        pg_url, "SELECT data_type FROM information_schema.columns WHERE column_name = 'n'"
    ) == [("character varying",)]


def test_rename_convert_and_fill_on_a_real_table(pg_url: str) -> None:
    seed(pg_url)
    pg_sql(pg_url, "DELETE FROM children WHERE n = 'x'")
    target = sa.Table(
        "children",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("parent", sa.String()),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
    )
    before = pg_sql(pg_url, "SELECT relfilenode FROM pg_class WHERE relname = 'children'")
    apply(pg_url, target, column_map={"parent": "parent_id", "label": "'#' || id"})
    assert pg_sql(pg_url, "SELECT id, parent, n, label FROM children ORDER BY id") == [
        ("c1", "p1", 1, "#c1"),
        ("c2", "p2", 2, "#c2"),
        ("c3", "nobody", 3, "#c3"),
    ]
    # converting a column's type rewrites the table (PostgreSQL does that for
    # ALTER COLUMN TYPE); the point is that it is one ALTER, not a copy and swap
    assert pg_sql(pg_url, "SELECT relfilenode FROM pg_class WHERE relname = 'children'") != before


def test_a_check_that_keeps_its_name_but_changes_is_replaced(pg_url: str) -> None:
    seed(pg_url)
    pg_sql(pg_url, "DELETE FROM children WHERE n = 'x'")
    apply(pg_url, children(check()))
    changed = sa.CheckConstraint("n <> '3'", name="chk_children_n_ok")
    with pytest.raises(ConstraintViolations, match=r"chk_children_n_ok on children.*'c3'"):
        apply(pg_url, children(changed))
    pg_sql(pg_url, "DELETE FROM children WHERE n = '3'")
    apply(pg_url, children(sa.CheckConstraint("n <> '3'", name="chk_children_n_ok")))
    assert pg_sql(
        pg_url,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'chk_children_n_ok'",
    ) == [("CHECK (((n)::text <> '3'::text))",)]
    # the same expression again, spelled as written: nothing to do
    apply(pg_url, children(sa.CheckConstraint("n <> '3'", name="chk_children_n_ok")))


def test_rows_the_application_inserts_meanwhile_are_no_error(pg_url: str) -> None:
    """Issue 15's first bug: the row count changed under the migration's feet.

    Another session inserts a row before the migration starts and commits it
    a second later: the migration counts 2 rows, its ALTER waits for that
    session's lock, and then finds 3.
    """
    import threading
    import time

    pg_sql(
        pg_url,
        "CREATE TABLE parents (id VARCHAR PRIMARY KEY, name VARCHAR)",
        "INSERT INTO parents VALUES ('p1', 'Ana'), ('p2', 'Bo')",
    )
    writer = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    inserted = threading.Event()

    def application() -> None:
        with writer.begin() as other:
            other.exec_driver_sql("INSERT INTO parents VALUES ('p3', 'Cy')")
            inserted.set()
            time.sleep(1.0)  # the migration counts meanwhile, then waits for this lock

    thread = threading.Thread(target=application)
    thread.start()
    assert inserted.wait(10)
    apply(pg_url, parents(sa.CheckConstraint("length(name) > 0", name="name_len")))
    thread.join()
    writer.dispose()
    assert pg_sql(pg_url, "SELECT id FROM parents ORDER BY id") == [("p1",), ("p2",), ("p3",)]
    assert pg_sql(pg_url, "SELECT count(*) FROM pg_constraint WHERE conname = 'name_len'") == [(1,)]


def test_not_null_on_an_existing_column_scans_under_a_weak_lock() -> None:
    """Issue 15: a validated CHECK first, so SET NOT NULL itself scans nothing."""
    previous = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("title", sa.String()),
    )
    target = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("title", sa.String(), nullable=False),
    )
    assert plan_copy_swap(previous, target, dialect=PG).statements()[-4:] == [
        "ALTER TABLE t ADD CONSTRAINT t_title_not_null CHECK (title IS NOT NULL) NOT VALID",
        "ALTER TABLE t VALIDATE CONSTRAINT t_title_not_null",
        "ALTER TABLE t ALTER COLUMN title SET NOT NULL",
        "ALTER TABLE t DROP CONSTRAINT t_title_not_null",
    ]


def test_not_null_through_a_check_on_a_real_table(pg_url: str) -> None:
    pg_sql(
        pg_url,
        "CREATE TABLE parents (id VARCHAR PRIMARY KEY, name VARCHAR)",
        "INSERT INTO parents VALUES ('p1', 'Ana'), ('p2', NULL)",
    )
    target = sa.Table(
        "parents",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
    )
    with pytest.raises(ConstraintViolations, match="NOT NULL parents.name"):
        apply(pg_url, target)
    apply(pg_url, target, on_violation="quarantine")
    assert pg_sql(
        pg_url,
        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'parents' "
        "AND column_name = 'name'",
    ) == [("NO",)]
    assert pg_sql(pg_url, "SELECT conname FROM pg_constraint WHERE conname LIKE 'parents%'") == [
        ("parents_pkey",)
    ]
