"""The metadata: V3 tables, constants, no Alembic at import, DDL equal to the legacy DDL."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.schema import CreateTable

from egregora.database import schemas
from egregora.database.migration.catalog import canonical_shapes, snapshot

from . import legacy
from .conftest import ROOT

V3_TABLES = ["posts", "profiles", "media", "journals", "tasks", "annotations"]
V4_TABLES = [*V3_TABLES, "post_authors"]


def _v3_baseline() -> sa.MetaData:
    """The frozen V3 definitions that the baseline revision carries."""
    script = ScriptDirectory(str(ROOT / "alembic"))
    revision = script.get_revision("v3")
    assert revision is not None
    return revision.module.metadata  # type: ignore[no-any-return]


def test_every_table_is_a_module_level_name() -> None:
    assert sorted(schemas.metadata.tables) == sorted(V4_TABLES)
    for name in V4_TABLES:
        assert getattr(schemas, name) is schemas.metadata.tables[name]


def test_importing_the_metadata_does_not_import_alembic() -> None:
    code = (
        "import sys; import egregora.database.schemas as s; "
        "from sqlalchemy import select; select(s.posts); "
        "print(sorted(m for m in sys.modules if m == 'alembic' or m.startswith('alembic.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("table", "column", "v3_values", "values"),
    [
        ("posts", "status", schemas.POST_STATUSES, schemas.POST_STATUSES),
        ("tasks", "status", schemas.TASK_STATUSES, schemas.TASK_STATUSES),
        # v4i: the application enqueues enrich_url tasks, which V3 did not allow
        ("tasks", "task_type", schemas.TASK_TYPES[:3], schemas.TASK_TYPES),
        ("media", "media_type", schemas.MEDIA_TYPES, schemas.MEDIA_TYPES),
        (
            "annotations",
            "parent_type",
            schemas.ANNOTATION_PARENT_TYPES,
            schemas.ANNOTATION_PARENT_TYPES,
        ),
    ],
)
def test_check_constraints_use_the_named_constants(
    table: str, column: str, v3_values: tuple[str, ...], values: tuple[str, ...]
) -> None:
    con = duckdb.connect()
    ddl = str(CreateTable(_v3_baseline().tables[table]).compile(dialect=_dialect()))
    con.execute(ddl)
    for value in v3_values:
        con.execute(f"INSERT INTO {table} ({column}) VALUES (?)", [value])
    with pytest.raises(duckdb.ConstraintException):
        con.execute(f"INSERT INTO {table} ({column}) VALUES ('not-a-{column}')")
    # the live metadata's CHECK lists every value of the constant
    live = CreateTable(schemas.metadata.tables[table]).compile(dialect=_dialect())
    assert all(repr(v) in str(live) for v in values)


@pytest.mark.parametrize("table", V3_TABLES)
def test_baseline_ddl_equals_legacy_ddl(table: str) -> None:
    baseline = _v3_baseline().tables[table]
    # Textually, once whitespace is folded (the legacy code spelled it on one line)...
    ours = str(CreateTable(baseline).compile(dialect=_dialect()))
    assert _fold(ours) == _fold(legacy.TABLES[table])
    # ...and as DuckDB stores it.
    con = duckdb.connect()
    con.execute(legacy.TABLES[table])
    assert snapshot(con, [table]) == canonical_shapes([baseline])


def _fold(ddl: str) -> str:
    return " ".join(ddl.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split())


def _dialect() -> sa.Dialect:
    return sa.create_engine("duckdb:///:memory:").dialect
