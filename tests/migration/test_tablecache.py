"""The run's reflected tables: read together once, read again after a change."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from egregora.database.migration.catalog import driver, reflect
from egregora.database.migration.namerecord import keep_names
from egregora.database.migration.tablecache import TableCache, changed_tables


@pytest.mark.parametrize(
    ("statement", "changed"),
    [
        ("SELECT * FROM posts", set()),
        ("  insert into posts VALUES (1)", set()),
        ("UPDATE posts SET a = 1", set()),
        ("WITH x AS (SELECT 1) SELECT * FROM x", set()),
        ("SELECT schema_name FROM duckdb_tables() WHERE database_name = current_database()", set()),
        ("ALTER TABLE posts ADD COLUMN b INTEGER", {"alter", "table", "posts", "add", "column"}),
        ('DROP TABLE "Posts"', {"drop", "table", "posts"}),
        ("COMMENT ON TABLE posts IS 'x'", {"comment", "on", "table", "posts", "is", "x"}),
        ("DROP SCHEMA app CASCADE", None),
        ("ATTACH 'other.duckdb' AS other", None),
        ("DELETE FROM egregora_constraint_names WHERE table_name = 'posts'", None),
    ],
)
def test_which_tables_a_statement_may_change(statement: str, changed: set[str] | None) -> None:
    found = changed_tables(statement)
    if changed is None or not changed:
        assert found == changed
    else:
        assert found is not None and changed <= found


@pytest.fixture
def connection(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'cache.duckdb'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE owners (id VARCHAR PRIMARY KEY, name VARCHAR)")
        conn.exec_driver_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, owner_id VARCHAR REFERENCES owners (id), "
            "qty INTEGER NOT NULL, CHECK (qty >= 0))"
        )
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def shape(table: sa.Table) -> tuple[object, ...]:
    columns = [(c.name, str(c.type), c.nullable) for c in table.columns]
    keys = sorted(c.name for c in table.primary_key.columns)
    fks = sorted(fk.target_fullname for fk in table.foreign_keys)
    checks = sorted(str(c.sqltext) for c in table.constraints if isinstance(c, sa.CheckConstraint))
    return columns, keys, fks, checks


def test_an_answer_is_what_reflecting_the_table_alone_gives(connection: sa.Connection) -> None:
    cache = TableCache()
    for name in ("items", "owners"):
        assert shape(cache.get(connection, name)) == shape(reflect(connection, name))
    items = cache.get(connection, "items")
    assert set(items.metadata.tables) == {"items", "owners"}  # with the table it references
    assert next(iter(items.foreign_keys)).column.table is items.metadata.tables["owners"]


def test_each_answer_is_a_copy_the_caller_may_change(connection: sa.Connection) -> None:
    cache = TableCache()
    first = cache.get(connection, "items")
    first.append_column(sa.Column("extra", sa.String()))
    first.c.qty.type = sa.String()
    again = cache.get(connection, "items")
    assert "extra" not in again.c
    assert isinstance(again.c.qty.type, sa.Integer)


def test_it_serves_until_a_statement_may_have_changed_the_catalog(
    connection: sa.Connection,
) -> None:
    cache = TableCache()
    assert "note" not in cache.get(connection, "owners").c
    # a change SQLAlchemy does not see (the driver's own statement) is not read...
    driver(connection).execute("ALTER TABLE owners ADD COLUMN note VARCHAR")
    cache.after("SELECT count(*) FROM owners")
    cache.after("INSERT INTO owners VALUES ('o', 'n', 'x')")
    assert "note" not in cache.get(connection, "owners").c
    # ...until a statement that may change it runs, or the run says so; a statement
    # naming another table makes that one (and those referencing it) be read again
    driver(connection).execute("ALTER TABLE items ADD COLUMN other VARCHAR")
    cache.after("ALTER TABLE items ADD COLUMN other VARCHAR")
    assert "other" in cache.get(connection, "items").c
    assert "note" not in cache.get(connection, "owners").c
    cache.after("ALTER TABLE owners ADD COLUMN note VARCHAR")
    assert "note" in cache.get(connection, "owners").c
    assert "note" in cache.get(connection, "items").metadata.tables["owners"].c  # its parent
    driver(connection).execute("ALTER TABLE owners ADD COLUMN later VARCHAR")
    cache.forget()
    assert "later" in cache.get(connection, "owners").c


def test_a_table_made_after_the_read_is_reflected_when_asked(connection: sa.Connection) -> None:
    cache = TableCache()
    cache.get(connection, "owners")
    driver(connection).execute("CREATE TABLE later (a INTEGER)")
    assert list(cache.get(connection, "later").c.keys()) == ["a"]
    with pytest.raises(sa.exc.NoSuchTableError):
        cache.get(connection, "missing")


def test_it_reads_the_tables_together_beside_the_name_record(connection: sa.Connection) -> None:
    """DuckDB's reflection does not list the name record (namerecord.py): the batch
    must not ask for it by name, else every answer is one table's own reflection."""
    named = sa.Table(
        "owners",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
    )
    assert keep_names(driver(connection), named, connection.dialect)  # the record now exists
    cache = TableCache()
    assert "note" not in cache.get(connection, "owners").c
    driver(connection).execute("ALTER TABLE owners ADD COLUMN note VARCHAR")
    assert "note" not in cache.get(connection, "owners").c  # served from the batch


def _failing_once(connection: sa.Connection, statement: str) -> list[str]:
    """Replace the first catalog query of the batch read by one DuckDB fails on."""
    failed: list[str] = []

    def rewrite(conn, cursor, sql, params, context, executemany):  # type: ignore[no-untyped-def]
        if not failed:
            failed.append(sql)
            return statement, ()
        return sql, params

    sa.event.listen(connection, "before_cursor_execute", rewrite, retval=True)
    return failed


def test_a_database_error_while_reading_is_not_swallowed(connection: sa.Connection) -> None:
    """DuckDB aborts the transaction on any error: the run must see it, not carry on
    with each table read alone on an aborted transaction."""
    failed = _failing_once(connection, "SELECT error('the catalog query failed')")
    with pytest.raises(sa.exc.DBAPIError, match="the catalog query failed"):
        TableCache().get(connection, "items")
    assert failed


def test_ctrl_c_while_reading_reaches_the_run(connection: sa.Connection) -> None:
    """A real interrupt, from another thread, while the batch read runs a long query."""
    import threading

    raw = driver(connection)
    failed = _failing_once(connection, "SELECT count(*) FROM range(10000000000)")
    timer = threading.Timer(0.3, raw.interrupt)
    timer.start()
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            TableCache().get(connection, "items")
    finally:
        timer.cancel()
    assert failed
    assert "interrupt" in str(caught.value).lower()
