"""fusion.py: planning a table's consecutive rebuilds as one, without a database.

The SQL it writes is then run on an in-memory DuckDB, to show that the
relations it chains read what each stage would have written.
"""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa
from duckdb_sqlalchemy import Dialect as DuckDBDialect

from egregora.database.migration.copyswap.fusion import (
    can_follow,
    declared_indexes,
    plan_judged,
    plan_rebuild,
)
from egregora.database.migration.copyswap.model import OnViolation, Stage

DIALECT = DuckDBDialect()


def table(*extra: sa.SchemaItem, qty: sa.types.TypeEngine[object] | None = None) -> sa.Table:
    return sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("qty", qty if qty is not None else sa.String()),
        *extra,
    )


def stage(
    previous: sa.Table, target: sa.Table, revision: str, mode: OnViolation = "quarantine"
) -> Stage:
    return Stage(previous, target, {}, revision, mode, declared=previous)


CHECKED = table(sa.CheckConstraint("length(id) > 1", name="ck_id"))
CONVERTED = table(sa.CheckConstraint("length(id) > 1", name="ck_id"), qty=sa.Integer())
STAGES = [
    stage(table(), CHECKED, "r1 upgrade"),
    stage(CHECKED, CONVERTED, "r2 upgrade"),
]


def test_a_later_stage_reads_the_earlier_stages_output_and_one_copy_is_written() -> None:
    plan = plan_rebuild(STAGES, dialect=DIALECT)
    assert [p.stage.revision for p in plan.stages] == ["r1 upgrade"]
    earlier = plan.stages[0]
    assert [rule.name for rule in earlier.rules] == ["ck_id"]
    copies = [s.sql for s in plan.final.steps if s.phase == "copy" and "INSERT" in s.sql]
    assert len(copies) == 1 and earlier.output in copies[0]
    assert plan.cleanup == (f"DROP TABLE {earlier.rejected}",)
    text = str(plan)
    assert "stage r1 upgrade: read, not written" in text and "stage r2 upgrade: written" in text


def test_each_stage_quarantines_rows_in_its_own_shape_and_tag() -> None:
    (earlier,) = plan_rebuild(STAGES, dialect=DIALECT).stages
    (move,) = [s.sql for s in earlier.moves if s.sql.startswith("INSERT")]
    assert "'r1 upgrade'" in move and f"FROM {earlier.rejected} " in move
    assert "SELECT o.id, o.qty," in move  # the row as r1 found it


def test_the_chained_relations_read_what_each_stage_would_write() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (id VARCHAR, qty VARCHAR)")
    con.execute("INSERT INTO t VALUES ('a', '1'), ('bb', '2'), ('cc', 'x'), ('dd', '4')")
    plan = plan_rebuild(STAGES, dialect=DIALECT)
    earlier = plan.stages[0]
    con.execute(earlier.create_rejected)
    for rule in earlier.rules:
        con.execute(rule.reject_sql)
    passed = con.execute(f"SELECT id, qty FROM {earlier.output} AS s ORDER BY id").fetchall()
    assert passed == [("bb", "2"), ("cc", "x"), ("dd", "4")]  # 'a' rejected by r1
    conversion = [r for r in plan.final.rules if r.kind == "conversion"]
    assert [con.execute(r.count_sql).fetchone()[0] for r in conversion] == [1]  # type: ignore[index]


def test_judging_plans_every_stage_with_tables_named_for_the_table() -> None:
    plans = plan_judged(STAGES, dialect=DIALECT)
    assert [p.rejected for p in plans] == ["__ccs_rejected_t_1", "__ccs_rejected_t_2"]
    assert [p.keeps_values for p in plans] == [True, False]  # r2 converts qty
    assert plans[1].input == plans[0].output


def test_a_referenced_table_is_read_from_what_the_run_would_leave() -> None:
    child = sa.Table(
        "c",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("t_id", sa.String()),
        sa.ForeignKeyConstraint(["t_id"], ["t.id"]),
    )
    plain = sa.Table(
        "c", sa.MetaData(), sa.Column("id", sa.String()), sa.Column("t_id", sa.String())
    )
    (judged,) = plan_judged(
        [stage(plain, child, "r3 upgrade")], dialect=DIALECT, parents={"t": "(SELECT 'x' AS id)"}
    )
    (fk,) = [r for r in judged.rules if r.kind == "FOREIGN KEY"]
    assert "(SELECT 'x' AS id)" in fk.count_sql and 'FROM "t"' not in fk.count_sql


@pytest.mark.parametrize(
    ("default", "follows"),
    [
        ("x", True),
        (sa.text("now()"), True),
        (sa.text("uuid()"), False),
        (sa.text("nextval('s')"), False),
    ],
)
def test_a_stage_that_fills_a_column_from_a_volatile_default_is_not_read_again(
    default: str | sa.TextClause, follows: bool
) -> None:
    def added() -> sa.Table:
        return table(sa.Column("extra", sa.String(), server_default=default))

    first = stage(table(), added(), "r1 upgrade")
    later = stage(added(), added(), "r2 upgrade")
    assert can_follow(first, later) is follows


def test_stages_of_different_modes_are_not_fused() -> None:
    assert can_follow(STAGES[0], STAGES[1])
    assert not can_follow(STAGES[0], stage(CHECKED, CONVERTED, "r2 upgrade", "fail"))


def test_every_stage_declares_its_indexes() -> None:
    indexed = table(sa.Index("ix_qty", "qty"))
    assert declared_indexes([stage(table(), indexed, "r1 upgrade")]) == {"ix_qty"}
