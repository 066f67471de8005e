"""Deferrable FOREIGN KEYs: checked at COMMIT on PostgreSQL, left out of DuckDB's DDL.

The measurements behind the design (docs/app-on-head.md) are kept as tests:
they run on the DuckDB this project installs, and fail if a DuckDB ever
defers keys or lets the application's writes through an enforced one.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateTable

from egregora.database import schemas
from egregora.database.foreign_keys import deferrable, enforced_by, enforced_fks

DUCKDB = sa.create_engine("duckdb:///:memory:").dialect


def family(**timing: object) -> sa.MetaData:
    """parents (composite key, a list column) and a child referencing them."""
    meta = sa.MetaData()
    sa.Table(
        "parents",
        meta,
        sa.Column("a", sa.String(), primary_key=True),
        sa.Column("b", sa.Integer(), primary_key=True),
        sa.Column("tags", sa.ARRAY(sa.String())),
        sa.Column("title", sa.String()),
    )
    sa.Table(
        "children",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("pa", sa.String()),
        sa.Column("pb", sa.Integer()),
        sa.ForeignKeyConstraint(["pa", "pb"], ["parents.a", "parents.b"], name="fk_c_p", **timing),
    )
    return meta


def test_which_keys_each_engine_enforces() -> None:
    plain, deferred, immediate = (
        family(),
        family(deferrable=True, initially="DEFERRED"),
        family(deferrable=True),
    )
    for meta, checked_on_duckdb in ((plain, False), (deferred, True), (immediate, True)):
        (fk,) = meta.tables["children"].foreign_key_constraints
        assert deferrable(fk) is checked_on_duckdb
        assert enforced_by(fk, "postgresql")
        assert enforced_by(fk, "duckdb") is not checked_on_duckdb
        assert enforced_fks(meta.tables["children"], "duckdb") == (
            [] if checked_on_duckdb else [fk]
        )
    # the schema's three keys into posts and profiles are deferred
    deferred_keys = {
        str(fk.name)
        for table in schemas.metadata.sorted_tables
        for fk in table.foreign_key_constraints
        if deferrable(fk)
    }
    assert deferred_keys == {
        "fk_annotations_author_id_profiles",
        "fk_post_authors_post_id_posts",
        "fk_post_authors_profile_id_profiles",
    }


def test_duckdb_ddl_leaves_a_deferrable_key_out_and_keeps_a_plain_one() -> None:
    for meta, kept in ((family(), True), (family(deferrable=True, initially="DEFERRED"), False)):
        ddl = str(CreateTable(meta.tables["children"]).compile(dialect=DUCKDB))
        assert ("FOREIGN KEY" in ddl) is kept
        assert "DEFERRABLE" not in ddl  # DuckDB's parser refuses it
        con = duckdb.connect()
        for table in meta.sorted_tables:
            con.execute(str(CreateTable(table).compile(dialect=DUCKDB)))
        found = con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'"
        ).fetchall()
        assert found == [(1 if kept else 0,)]


def test_the_schema_creates_on_duckdb_with_create_all() -> None:
    engine = sa.create_engine("duckdb:///:memory:")
    schemas.metadata.create_all(engine)
    with engine.connect() as connection:
        tables = connection.exec_driver_sql(
            "SELECT table_name, constraint_type FROM duckdb_constraints() "
            "WHERE constraint_type = 'FOREIGN KEY'"
        ).all()
    assert tables == []


APP_WRITES = {
    "DELETE then INSERT": [
        "DELETE FROM parents WHERE a = 'p'",
        "INSERT INTO parents VALUES ('p', 1, ['y'], 'again')",
    ],
    "UPDATE of a list": ["UPDATE parents SET tags = ['z'] WHERE a = 'p'"],
    "ON CONFLICT DO UPDATE of a list": [
        "INSERT INTO parents VALUES ('p', 1, ['y'], 't') "
        "ON CONFLICT (a, b) DO UPDATE SET tags = excluded.tags"
    ],
    "INSERT OR REPLACE": ["INSERT OR REPLACE INTO parents VALUES ('p', 1, ['y'], 't')"],
}


def duckdb_family(meta: sa.MetaData) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in meta.sorted_tables:
        con.execute(str(CreateTable(table).compile(dialect=DUCKDB)))
    con.execute("INSERT INTO parents VALUES ('p', 1, ['x'], 't')")
    con.execute("INSERT INTO children VALUES (1, 'p', 1)")
    return con


@pytest.mark.parametrize("write", sorted(APP_WRITES))
def test_duckdb_refuses_the_apps_writes_under_a_key_and_takes_them_without(write: str) -> None:
    """Measured on DuckDB 1.4.3 and 2.0.1 (docs/app-on-head.md); this runs the installed one."""
    enforced = duckdb_family(family())
    with pytest.raises(duckdb.ConstraintException, match="still referenced"):
        enforced.execute("BEGIN")
        for statement in APP_WRITES[write]:
            enforced.execute(statement)
    checked = duckdb_family(family(deferrable=True, initially="DEFERRED"))
    checked.execute("BEGIN")
    for statement in APP_WRITES[write]:
        checked.execute(statement)
    checked.execute("COMMIT")
    assert checked.execute("SELECT a, b, tags FROM parents").fetchall()[0][:2] == ("p", 1)
    # a scalar update of a referenced row passes either way
    enforced.execute("ROLLBACK")
    enforced.execute("UPDATE parents SET title = 'new' WHERE a = 'p'")


@pytest.fixture
def pg_family(pg_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_url)
    family(deferrable=True, initially="DEFERRED").create_all(engine)
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO parents VALUES ('p', 1, ARRAY['x'], 't')")
        c.exec_driver_sql("INSERT INTO children VALUES (1, 'p', 1)")
    yield engine
    engine.dispose()


def test_postgresql_checks_a_deferred_key_at_commit(pg_family: sa.Engine) -> None:
    with pg_family.begin() as c:  # the app's upsert, in one transaction: passes
        c.exec_driver_sql("DELETE FROM parents WHERE a = 'p'")
        c.exec_driver_sql("INSERT INTO parents VALUES ('p', 1, ARRAY['y'], 'again')")
    with pytest.raises(sa.exc.IntegrityError, match="fk_c_p"), pg_family.begin() as c:
        c.exec_driver_sql("DELETE FROM parents WHERE a = 'p'")  # alone: refused at COMMIT
    with pytest.raises(sa.exc.IntegrityError, match="fk_c_p"), pg_family.begin() as c:
        c.exec_driver_sql("INSERT INTO children VALUES (2, 'ghost', 1)")
    with pg_family.connect() as c:
        assert c.exec_driver_sql("SELECT a, tags FROM parents").all() == [("p", ["y"])]
        assert c.exec_driver_sql(
            "SELECT condeferrable, condeferred FROM pg_constraint WHERE conname = 'fk_c_p'"
        ).all() == [(True, True)]
