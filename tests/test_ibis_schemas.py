"""ibis schemas from the metadata: equal to what ibis reads at head, on both engines, and used
the way the application uses its own (insert, filter, join posts, post_authors, profiles)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import pytest
import sqlalchemy as sa

from egregora.database import schemas
from egregora.database.ibis_schemas import (
    SCHEMAS,
    NotAtHead,
    ibis_schema,
    ibis_type,
    open_table,
)

from .conftest import HEAD, alembic_cfg

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def ibis_connect(url: str) -> Any:
    """An ibis connection to the database at ``url`` (a DuckDB file or PostgreSQL)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "duckdb":
        return ibis.duckdb.connect(parsed.database)
    return ibis.postgres.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database
    )


@pytest.fixture(params=["duckdb", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'app.duckdb'}"
    return str(request.getfixturevalue("pg_url"))


def upgraded(url: str, target: str = "head") -> Any:
    from alembic import command

    command.upgrade(alembic_cfg(url), target)
    return ibis_connect(url)


@pytest.fixture
def con(url: str) -> Iterator[Any]:
    connection = upgraded(url)
    yield connection
    connection.disconnect()


def test_every_table_is_what_ibis_reads_at_head(con: Any) -> None:
    assert set(SCHEMAS) == set(schemas.metadata.tables)
    for name, schema in SCHEMAS.items():
        assert con.get_schema(name) == schema, name
        assert open_table(con, name).schema() == schema


def test_types_and_nullability_come_from_the_columns() -> None:
    tasks = SCHEMAS["tasks"]
    assert tasks["task_id"] == ibis.dtype("!uuid")
    assert tasks["payload"] == ibis.dtype("json")
    assert tasks["created_at"] == ibis.dtype("!timestamp('UTC', 6)")
    assert SCHEMAS["posts"]["tags"] == ibis.dtype("array<string>")
    assert SCHEMAS["post_authors"]["position"] == ibis.dtype("!int32")
    assert SCHEMAS["posts"]["date"] == ibis.dtype("date")


KINDS = sa.Table(
    "kinds",
    sa.MetaData(),
    sa.Column("a", sa.Text()),
    sa.Column("b", sa.BigInteger(), nullable=False),
    sa.Column("c", sa.SmallInteger()),
    sa.Column("d", sa.Boolean()),
    sa.Column("e", sa.Double()),
    sa.Column("f", sa.Numeric(10, 2)),
    sa.Column("g", sa.DateTime()),
    sa.Column("h", sa.Time()),
    sa.Column("i", sa.LargeBinary()),
    sa.Column("j", sa.ARRAY(sa.Integer())),
    sa.Column("k", sa.Uuid(), primary_key=True),
    sa.Column("l", sa.JSON(), nullable=False),
    sa.Column("m", sa.Enum("x", "y", name="xy")),
)


def test_other_types_are_what_ibis_reads_on_either_engine(url: str) -> None:
    """A table of types the schema doesn't use yet, made by SQLAlchemy, read back by ibis."""
    import egregora.database.migration.config  # noqa: F401  (duckdb:// is duckdb-sqlalchemy's)

    engine = sa.create_engine(url)
    KINDS.metadata.create_all(engine)
    engine.dispose()
    con = ibis_connect(url)
    assert con.get_schema("kinds") == ibis_schema(KINDS)
    con.disconnect()


@pytest.mark.parametrize(
    ("type_", "why"), [(sa.Float(), "4 bytes"), (sa.String(30), "length"), (sa.Interval(), "")]
)
def test_a_type_the_engines_read_differently_is_refused(type_: Any, why: str) -> None:
    with pytest.raises(TypeError, match="DuckDB and PostgreSQL read it differently") as caught:
        ibis_type(type_)
    assert why in str(caught.value)


def test_a_table_not_at_head_is_named_with_each_difference(url: str) -> None:
    con = upgraded(url, "v3")
    with pytest.raises(NotAtHead) as caught:
        open_table(con, "posts")
    message = str(caught.value)
    assert "column authors is not in the schema" in message
    assert "It records revision v3." in message
    assert "alembic upgrade head" in message
    with pytest.raises(NotAtHead, match="there is no table post_authors"):
        open_table(con, "post_authors")
    con.disconnect()


def test_a_changed_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "odd.duckdb"
    con = ibis.duckdb.connect(str(path))
    con.raw_sql("CREATE TABLE journals (id VARCHAR, title INTEGER)")
    with pytest.raises(NotAtHead) as caught:
        open_table(con, "journals")
    message = str(caught.value)
    assert "column title is int32, not string" in message
    assert "column content is missing" in message
    assert "no alembic_version table" in message


def _rows() -> dict[str, list[dict[str, Any]]]:
    profiles = [
        {"id": f"p{i}", "created_at": NOW, "title": f"Author {i}", "interests": ["x"]}
        for i in range(3)
    ]
    statuses = schemas.ALLOWED_VALUES["posts"]["status"]
    posts = [
        {"id": f"post{i}", "created_at": NOW, "title": f"Post {i}", "status": statuses[i % 2]}
        for i in range(4)
    ]
    authors = [
        {"post_id": "post0", "position": 0, "profile_id": "p2"},
        {"post_id": "post0", "position": 1, "profile_id": "p0"},
        {"post_id": "post1", "position": 0, "profile_id": "p1"},
    ]
    return {"profiles": profiles, "posts": posts, "post_authors": authors}


def _memtable(name: str, rows: list[dict[str, Any]]) -> Any:
    full = [{column: row.get(column) for column in SCHEMAS[name].names} for row in rows]
    return ibis.memtable(full, schema=SCHEMAS[name])


def test_the_application_inserts_filters_and_joins_with_them(con: Any) -> None:
    for name, rows in _rows().items():
        con.insert(name, _memtable(name, rows))
    posts, post_authors, profiles = (
        open_table(con, n) for n in ("posts", "post_authors", "profiles")
    )
    published = schemas.ALLOWED_VALUES["posts"]["status"][1]
    assert sorted(posts.filter(posts.status == published).id.to_pyarrow().to_pylist()) == [
        "post1",
        "post3",
    ]
    joined = (
        posts.join(post_authors, posts.id == post_authors.post_id)
        .join(profiles, post_authors.profile_id == profiles.id)
        .select(post=posts.id, position=post_authors.position, author=profiles.title)
        .order_by(["post", "position"])
    )
    assert joined.to_pyarrow().to_pylist() == [
        {"post": "post0", "position": 0, "author": "Author 2"},
        {"post": "post0", "position": 1, "author": "Author 0"},
        {"post": "post1", "position": 0, "author": "Author 1"},
    ]


def test_rows_that_break_a_check_are_refused_by_the_database(con: Any) -> None:
    """The allowed values are the CHECK's: a task type outside them never lands."""
    good = {
        "task_id": str(uuid.uuid4()),
        "task_type": schemas.ALLOWED_VALUES["tasks"]["task_type"][0],
        "status": schemas.ALLOWED_VALUES["tasks"]["status"][0],
        "created_at": NOW,
    }
    # ibis 12 casts the JSON column to VARCHAR on PostgreSQL, which refuses it
    # (DatatypeMismatch), even for NULLs: leave payload out there (it is NULL)
    # (docs/using-the-schema.md says so)
    columns = [c for c in SCHEMAS["tasks"].names if c != "payload"]
    con.insert("tasks", _memtable("tasks", [good]).select(columns))
    bad = {**good, "task_id": str(uuid.uuid4()), "task_type": "not-a-task-type"}
    with pytest.raises(Exception, match="(?i)check"):
        con.insert("tasks", _memtable("tasks", [bad]).select(columns))
    assert open_table(con, "tasks").count().to_pyarrow().as_py() == 1


def test_the_app_s_own_way_of_inserting_a_journal_needs_the_schema_on_postgresql(
    con: Any, url: str
) -> None:
    """The application inserts a list of dicts (its repository.py): ibis infers each
    column's type from the values, and a column of NULLs has none. DuckDB takes it;
    PostgreSQL needs the types, which the schema gives."""
    row = {
        "id": "j1",
        "content": "window",
        "created_at": NOW,
        "source_checksum": None,
        "title": "Monday",
        "window_start": NOW,
        "window_end": NOW,
    }
    if url.startswith("duckdb"):
        con.insert("journals", [row])
    else:
        with pytest.raises(ibis.common.exceptions.IbisTypeError, match="null typed"):
            con.insert("journals", [row])
        con.insert("journals", ibis.memtable([row], schema=SCHEMAS["journals"]))
    journals = open_table(con, "journals")
    assert journals.filter(journals.title == "Monday").count().to_pyarrow().as_py() == 1


def test_head_is_not_pinned() -> None:
    """The schemas follow the metadata, whatever the head revision is called."""
    assert HEAD
    assert list(SCHEMAS["posts"].names) == [c.name for c in schemas.posts.columns]
