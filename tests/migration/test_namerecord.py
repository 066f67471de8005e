"""The record of constraint names on DuckDB files (namerecord.py), and resolving names there."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.namerecord import RECORD_TABLE, resolve_constraint

from .. import legacy
from ..copy_swap_helpers import apply, rows, sql, table_names


def _engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)


def _reflected_names(path: Path, table: str) -> dict[str, list[str]]:
    engine = _engine(path)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        names = {
            "pk": [str(inspector.get_pk_constraint(table)["name"])],
            "unique": sorted(str(u["name"]) for u in inspector.get_unique_constraints(table)),
            "fk": sorted(str(f["name"]) for f in inspector.get_foreign_keys(table)),
            "check": sorted(str(c["name"]) for c in inspector.get_check_constraints(table)),
        }
    engine.dispose()
    return names


def _record(path: Path) -> list[tuple[str, str]]:
    if RECORD_TABLE not in table_names(path):
        return []
    return rows(path, f"SELECT table_name, constraint_name FROM {RECORD_TABLE} ORDER BY ALL")


def _resolve(path: Path, table: str, name: str, type_: str | None = None) -> str:
    engine = _engine(path)
    with engine.connect() as connection:
        found = resolve_constraint(connection, table, name, type_)
    engine.dispose()
    return found.shape.describe()


def _authors_and_books() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table("authors", meta, sa.Column("id", sa.Integer(), primary_key=True))
    sa.Table(
        "books",
        meta,
        sa.Column("id", sa.Integer()),
        sa.Column("author_id", sa.Integer()),
        sa.Column("pages", sa.Integer(), sa.CheckConstraint("pages > 0", name="positive")),
        sa.Column("isbn", sa.String()),
        sa.PrimaryKeyConstraint("id", name="pk_books"),
        sa.ForeignKeyConstraint(["author_id"], ["authors.id"], name="fk2"),
        sa.UniqueConstraint("isbn", name="uq_books_isbn"),
        sa.CheckConstraint("pages < 10000"),
    )
    return meta


def test_create_all_keeps_only_the_names_nothing_else_gives_back(tmp_path: Path) -> None:
    path = tmp_path / "books.duckdb"
    engine = _engine(path)
    with engine.begin() as connection:
        _authors_and_books().create_all(connection)
    engine.dispose()
    # pk_books and uq_books_isbn are the convention's: derived, not recorded
    assert _record(path) == [("books", "fk2"), ("books", "positive")]
    assert _reflected_names(path, "books") == {
        "pk": ["pk_books"],
        "unique": ["uq_books_isbn"],
        "fk": ["fk2"],
        "check": ["chk_books_pages_2", "positive"],  # the unnamed one: the convention's, numbered
    }
    assert _reflected_names(path, "authors")["pk"] == ["pk_authors"]
    assert _resolve(path, "books", "fk2", "foreignkey") == (
        "FOREIGN KEY (author_id) REFERENCES authors (id)"
    )
    assert _resolve(path, "books", "positive", "check") == "CHECK (pages > 0)"


def test_a_dropped_table_takes_its_names_along(tmp_path: Path) -> None:
    path = tmp_path / "books.duckdb"
    engine = _engine(path)
    meta = _authors_and_books()
    with engine.begin() as connection:
        meta.create_all(connection)
    with engine.begin() as connection:
        meta.drop_all(connection)
    engine.dispose()
    assert _record(path) == []


def test_alembic_operations_keep_rename_and_add_names(tmp_path: Path) -> None:
    path = tmp_path / "ops.duckdb"
    engine = _engine(path)
    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        op.create_table(
            "drafts",
            sa.Column("id", sa.Integer()),
            sa.Column("words", sa.Integer()),
            sa.Column("slug", sa.String()),
            sa.CheckConstraint("words >= 0", name="words_counted"),
        )
        op.create_unique_constraint("one_slug", "drafts", ["slug"])  # DuckDB can ALTER this one
    engine.dispose()
    assert _record(path) == [("drafts", "one_slug"), ("drafts", "words_counted")]
    assert _reflected_names(path, "drafts")["unique"] == ["one_slug"]
    # a plain table renamed by Alembic: its names follow it
    other = tmp_path / "rename.duckdb"
    engine = _engine(other)
    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        op.create_table(
            "notes", sa.Column("n", sa.Integer(), sa.CheckConstraint("n > 0", name="n_positive"))
        )
        op.rename_table("notes", "memos")
    engine.dispose()
    assert _record(other) == [("memos", "n_positive")]
    assert _resolve(other, "memos", "n_positive") == "CHECK (n > 0)"


@pytest.mark.parametrize("batch", [False, True], ids=["alter_column", "batch_alter_table"])
def test_a_renamed_column_leaves_each_constraint_its_name(tmp_path: Path, batch: bool) -> None:
    """DuckDB rewrites the column into the CHECK and the key and keeps no name; the names
    (a recorded one, the convention's over the old column) follow, as PostgreSQL keeps them."""
    path = tmp_path / "renamed.duckdb"
    engine = _engine(path)
    with engine.begin() as connection:
        _authors_and_books().create_all(connection)
        connection.exec_driver_sql("INSERT INTO authors VALUES (1)")
        connection.exec_driver_sql("INSERT INTO books VALUES (1, 1, 120, 'x-1')")
    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        if batch:
            with op.batch_alter_table("books") as batch_op:
                batch_op.alter_column("pages", new_column_name="page_count")
                batch_op.alter_column("isbn", new_column_name="code")
        else:
            op.alter_column("books", "pages", new_column_name="page_count")
            op.alter_column("books", "isbn", new_column_name="code")
    engine.dispose()
    names = _reflected_names(path, "books")
    assert names["unique"] == ["uq_books_isbn"]  # not the convention's uq_books_code
    assert "positive" in names["check"]
    assert _resolve(path, "books", "positive", "check") == "CHECK (page_count > 0)"
    assert _resolve(path, "books", "uq_books_isbn", "unique") == "UNIQUE (code)"
    engine = _engine(path)
    with engine.begin() as connection:  # a later revision drops them by those names
        op = Operations(MigrationContext.configure(connection))
        op.drop_constraint("positive", "books", type_="check")
        op.drop_constraint("uq_books_isbn", "books", type_="unique")
    engine.dispose()
    names = _reflected_names(path, "books")
    assert names["unique"] == [] and "positive" not in names["check"]
    assert rows(path, "SELECT id, page_count, code FROM books") == [(1, 120, "x-1")]


def test_a_history_name_follows_its_column_on_an_upgraded_file(db_path: Path, upgrade) -> None:
    """chk_profiles_title_not_empty is V4's name for length(title) > 0 (names.HISTORY_NAMES):
    after profiles.title is renamed, the CHECK still answers to it."""
    path = db_path
    upgrade("head")
    engine = _engine(path)
    with engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        with op.batch_alter_table("profiles") as batch_op:
            batch_op.alter_column("title", new_column_name="display_name")
    engine.dispose()
    assert "chk_profiles_title_not_empty" in _reflected_names(path, "profiles")["check"]
    assert _resolve(path, "profiles", "chk_profiles_title_not_empty") == (
        "CHECK (length(display_name) > 0)"
    )


def test_ddl_made_outside_alembic_leaves_a_record_that_matches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "books.duckdb"
    engine = _engine(path)
    with engine.begin() as connection:
        _authors_and_books().create_all(connection)
    engine.dispose()
    # the user's own script rebuilds books with another rule, past SQLAlchemy
    sql(
        path,
        "DROP TABLE books",
        "CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER, pages INTEGER "
        "CHECK (pages > 1), isbn VARCHAR)",
    )
    assert ("books", "positive") in _record(path)  # still there: nothing told the record
    assert _reflected_names(path, "books")["check"] == ["chk_books_pages"]
    assert _reflected_names(path, "books")["fk"] == []
    with pytest.raises(InvalidOperation) as refused:
        _resolve(path, "books", "positive", "check")
    assert "CHECK (pages > 1) as chk_books_pages (or books_pages_check)" in str(refused.value)


def test_the_record_is_the_migrations_own_and_is_not_reflected(tmp_path: Path) -> None:
    path = tmp_path / "books.duckdb"
    engine = _engine(path)
    with engine.begin() as connection:
        _authors_and_books().create_all(connection)
    with engine.connect() as connection:
        assert RECORD_TABLE not in sa.inspect(connection).get_table_names()
        reflected = sa.MetaData()
        reflected.reflect(connection)
        assert sorted(reflected.tables) == ["authors", "books"]
    engine.dispose()
    assert RECORD_TABLE in table_names(path)


def test_create_copy_swap_keeps_the_names_of_its_definition(tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    sql(
        path,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER)",
        "INSERT INTO items VALUES (1, 5), (2, 7)",
    )

    def items(*extra: sa.SchemaItem) -> sa.Table:
        return sa.Table(
            "items",
            sa.MetaData(),
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("price", sa.Integer()),
            sa.PrimaryKeyConstraint("id", name="pk_items"),
            *extra,
        )

    priced = sa.CheckConstraint("price > 0", name="chk_items_price_positive")
    apply(path, items(priced), previous=items())
    assert _record(path) == [("items", "chk_items_price_positive")]
    assert _reflected_names(path, "items")["check"] == ["chk_items_price_positive"]
    assert _resolve(path, "items", "price_positive", "check") == "CHECK (price > 0)"
    # the way back: the CHECK and its name go
    apply(path, items(), previous=items(priced))
    assert _record(path) == []
    assert rows(path, "SELECT id, price FROM items ORDER BY id") == [(1, 5), (2, 7)]


def test_a_failed_migration_takes_its_names_back(tmp_path: Path) -> None:
    path = tmp_path / "ops.duckdb"
    engine = _engine(path)
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
        op = Operations(MigrationContext.configure(connection))
        op.create_table(
            "drafts", sa.Column("words", sa.Integer(), sa.CheckConstraint("words >= 0", name="w"))
        )
        op.execute("SELECT * FROM no_such_table")
    engine.dispose()
    assert "drafts" not in table_names(path)
    assert _record(path) == []


# -- files this history made, and adopted V3 files ----------------------------------


@pytest.mark.parametrize(
    ("table", "name", "type_", "means"),
    [
        ("profiles", "chk_profiles_title_not_empty", "check", "CHECK (length(title) > 0)"),
        ("profiles", "title_not_empty", "check", "CHECK (length(title) > 0)"),
        ("journals", "chk_journals_window_order", "check", "CHECK (window_end >= window_start)"),
        (
            "annotations",
            "fk_annotations_author_id_profiles",
            "foreignkey",
            "FOREIGN KEY (author_id) REFERENCES profiles (id)",
        ),
        ("media", "uq_media_phash", "unique", "UNIQUE (phash)"),
        ("posts", "pk_posts", "primary", "PRIMARY KEY (id)"),
        ("post_authors", "pk_post_authors", None, "PRIMARY KEY (post_id, position)"),
    ],
)
def test_names_this_history_gives_resolve_on_a_file_it_made(
    db_path: Path, upgrade, table: str, name: str, type_: str | None, means: str
) -> None:
    upgrade("v4g")
    assert _resolve(db_path, table, name, type_) == means
    assert RECORD_TABLE not in table_names(db_path)  # every one is derived or the history's


def test_names_resolve_on_an_adopted_v3_file(db_path: Path, upgrade) -> None:
    con = duckdb.connect(str(db_path))
    legacy.create(con)
    con.close()
    upgrade("v3")
    assert _resolve(db_path, "posts", "chk_posts_status", "check").startswith("CHECK (status in")
    assert _resolve(db_path, "tasks", "task_type", "check").startswith("CHECK (task_type in")
    with pytest.raises(InvalidOperation, match="Table journals has no constraints"):
        _resolve(db_path, "journals", "chk_journals_window_order", "check")
