"""Alembic's own operations written by hand, on real rows (issue 27): the matrix.

Each case is a revision written by hand on top of the real head (in a copy of
alembic/), over a file that a setup revision fills: ``profiles`` is
referenced (``notes.profile_id``), ``media`` has an explicit index, ``notes``
and ``labels`` are neither. With rows that break the operation: a dry run
refuses and leaves the file byte-identical, ``upgrade`` refuses naming the
row, ``-x on_violation=quarantine`` completes keeping every row (copied or
quarantined); then ``downgrade -1`` and ``upgrade`` again keep the rows. No
output names DuckDB's error classes. A few cases run on PostgreSQL too.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.config import Config

from alembic import command
from egregora.database.migration.errors import ConstraintViolations, InvalidOperation, SchemaError

from . import pg_server as pg_server_module
from .conftest import HEAD, copy_project, file_sha256

pytestmark = pytest.mark.e2e  # a matrix of hand-written revisions on both engines

ENGINE_CLASSES = (
    "Dependency Error",
    "Not implemented Error",
    "Constraint Error",
    "Catalog Error",
    "Binder Error",
    "Conversion Error",
    "Parser Error",
    "INTERNAL Error",
)

SETUP = f'''
"""hand-written operations: the tables they run on"""
import sqlalchemy as sa
from alembic import op

revision = "hw_setup"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notes",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("profile_id", sa.String(), sa.ForeignKey("profiles.id")),
        sa.Column("media_id", sa.String()),
        sa.Column("body", sa.String()),
        sa.Column("n", sa.String()),
    )
    op.create_table("labels", sa.Column("name", sa.String()), sa.Column("note", sa.String()))
    op.create_table(
        "topics", sa.Column("id", sa.String(), primary_key=True), sa.Column("name", sa.String())
    )
    op.create_index("ix_topics_name", "topics", ["name"])
    op.add_column("notes", sa.Column("topic_id", sa.String(), sa.ForeignKey("topics.id")))
    op.create_index("ix_media_filename", "media", ["filename"])
    op.execute(
        "INSERT INTO profiles (id, created_at, title, subject_uuid, alias) VALUES "
        "('p1', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'Ana', 'u1', 'a'), "
        "('p2', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'Bo', 'u2', 'b')"
    )
    op.execute(
        "INSERT INTO media (id, created_at, filename, phash) VALUES "
        "('m1', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'a.png', 'h1'), "
        "('m2', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'b.png', 'h2')"
    )
    op.execute(
        "INSERT INTO notes (id, profile_id, media_id, body, n) VALUES "
        "('n1', 'p1', 'm1', 'hi', '1'), ('n2', 'p2', 'm2', 'yo', '2')"
    )
    op.execute("INSERT INTO labels (name, note) VALUES ('l1', 'x'), ('l2', 'y')")
    op.execute("INSERT INTO topics (id, name) VALUES ('t1', 'one'), ('t2', 'two')")
    op.execute("UPDATE notes SET topic_id = 't1'")


def downgrade():
    op.drop_index("ix_media_filename", "media")
    op.drop_table("labels")
    op.drop_column("notes", "topic_id")
    op.drop_index("ix_topics_name", "topics")
    op.drop_table("topics")
    op.drop_table("notes")
    op.execute("DELETE FROM media")
    op.execute("DELETE FROM profiles")
'''


@dataclass(frozen=True)
class Case:
    table: str
    upgrade: str
    downgrade: str
    violate: str | None = None  # SQL that gives the table a row the operation refuses
    row: str = ""  # the key of that row, as a refusal names it
    postgresql: bool = False
    source: str = ""  # the table before the upgrade, when it renames it

    @property
    def before(self) -> str:
        return self.source or self.table


CASES: dict[str, Case] = {
    "alter_column nullable=False on a referenced table": Case(
        "profiles",
        'op.alter_column("profiles", "subject_uuid", nullable=False)',
        'op.alter_column("profiles", "subject_uuid", nullable=True)',
        "UPDATE profiles SET subject_uuid = NULL WHERE id = 'p2'",
        "'p2'",
        postgresql=True,
    ),
    "add_column NOT NULL with a default and a CHECK, referenced table": Case(
        "profiles",
        'op.add_column("profiles", sa.Column("lang", sa.String(), '
        'sa.CheckConstraint("length(lang) = 2", name="lang_len"), nullable=False, '
        'server_default="en"))',
        'op.drop_column("profiles", "lang")',
    ),
    "add_column whose default breaks its CHECK": Case(
        "profiles",
        'op.add_column("profiles", sa.Column("lang", sa.String(), '
        'sa.CheckConstraint("length(lang) = 2", name="lang_len"), nullable=False, '
        'server_default="eng"))',
        'op.drop_column("profiles", "lang")',
        "SELECT 1",  # every row breaks it: the default does
        "'p1'",
    ),
    "add_column with a FOREIGN KEY on a plain table": Case(
        "notes",
        'op.add_column("notes", sa.Column("editor_id", sa.String(), '
        'sa.ForeignKey("profiles.id", name="fk_notes_editor")))',
        'op.drop_column("notes", "editor_id")',
    ),
    "add_column UNIQUE on an indexed table": Case(
        "media",
        'op.add_column("media", sa.Column("code", sa.String(), unique=True))',
        'op.drop_column("media", "code")',
    ),
    "drop_column on a referenced table": Case(
        "profiles",
        'op.drop_column("profiles", "alias")',
        'op.add_column("profiles", sa.Column("alias", sa.String()))',
    ),
    "drop_constraint of a CHECK by its whole name": Case(
        "profiles",
        'op.drop_constraint("chk_profiles_title_not_empty", "profiles", type_="check")',
        'op.create_check_constraint("title_not_empty", "profiles", "length(title) > 0")',
    ),
    "unique create_index on a referenced table": Case(
        "profiles",
        'op.create_index("ux_profiles_alias", "profiles", ["alias"], unique=True)',
        'op.drop_index("ux_profiles_alias", "profiles")',
        "UPDATE profiles SET alias = 'a' WHERE id = 'p2'",
        "'a'",  # a duplicate is named by its key
        postgresql=True,
    ),
    "batch: a comment, NOT NULL and a CHECK in one rebuild": Case(
        "profiles",
        'with op.batch_alter_table("profiles") as batch:\n'
        '    batch.alter_column("alias", comment="shown name")\n'
        '    batch.alter_column("subject_uuid", nullable=False)\n'
        '    batch.create_check_constraint("alias_short", "length(alias) < 10")',
        'with op.batch_alter_table("profiles") as batch:\n'
        '    batch.drop_constraint("alias_short", type_="check")\n'
        '    batch.alter_column("subject_uuid", nullable=True)\n'
        '    batch.alter_column("alias", comment=None)',
        "UPDATE profiles SET subject_uuid = NULL WHERE id = 'p2'",
        "'p2'",
    ),
    "batch: rename a column of a referenced table, and NOT NULL": Case(
        "profiles",
        'with op.batch_alter_table("profiles") as batch:\n'
        '    batch.alter_column("alias", new_column_name="handle")\n'
        '    batch.alter_column("subject_uuid", nullable=False)',
        'with op.batch_alter_table("profiles") as batch:\n'
        '    batch.alter_column("handle", new_column_name="alias")\n'
        '    batch.alter_column("subject_uuid", nullable=True)',
        "UPDATE profiles SET subject_uuid = NULL WHERE id = 'p2'",
        "'p2'",
    ),
    "create_unique_constraint on an indexed table": Case(
        "media",
        'op.create_unique_constraint("uq_media_filename", "media", ["filename"])',
        'op.drop_constraint("uq_media_filename", "media", type_="unique")',
        "UPDATE media SET filename = 'a.png' WHERE id = 'm2'",
        "'a.png'",
        postgresql=True,
    ),
    "rename an indexed column": Case(
        "media",
        'op.alter_column("media", "filename", new_column_name="file_name")',
        'op.alter_column("media", "file_name", new_column_name="filename")',
    ),
    "drop_constraint of a UNIQUE on an indexed table": Case(
        "media",
        'op.drop_constraint("uq_media_phash", "media", type_="unique")',
        'op.create_unique_constraint("uq_media_phash", "media", ["phash"])',
    ),
    "create_check_constraint on a plain table": Case(
        "notes",
        'op.create_check_constraint("body_not_empty", "notes", "length(body) > 0")',
        'op.drop_constraint("body_not_empty", "notes", type_="check")',
        "UPDATE notes SET body = '' WHERE id = 'n2'",
        "'n2'",
        postgresql=True,
    ),
    "create_foreign_key on a plain table": Case(
        "notes",
        'op.create_foreign_key("fk_notes_media", "notes", "media", ["media_id"], ["id"])',
        'op.drop_constraint("fk_notes_media", "notes", type_="foreignkey")',
        "UPDATE notes SET media_id = 'ghost' WHERE id = 'n2'",
        "'n2'",
        postgresql=True,
    ),
    "alter_column type_ on a plain table": Case(
        "notes",
        'op.alter_column("notes", "n", type_=sa.Integer(), postgresql_using="n::integer")',
        'op.alter_column("notes", "n", type_=sa.String())',
        "UPDATE notes SET n = 'abc' WHERE id = 'n2'",
        "'n2'",
    ),
    # PostgreSQL has no TRY(): a value that doesn't convert stops the run in one
    # paragraph (rolled back) instead of being named by the preflight
    "alter_column type_, every value converts": Case(
        "notes",
        'op.alter_column("notes", "n", type_=sa.Integer(), postgresql_using="n::integer")',
        'op.alter_column("notes", "n", type_=sa.String())',
        postgresql=True,
    ),
    "rename_table of a referenced, indexed table (its FOREIGN KEYs follow)": Case(
        "subjects",
        'op.rename_table("topics", "subjects")',
        'op.rename_table("subjects", "topics")',
        postgresql=True,
        source="topics",
    ),
    "create_primary_key on a table without one": Case(
        "labels",
        'op.create_primary_key("pk_labels", "labels", ["name"])',
        'op.drop_constraint("pk_labels", "labels", type_="primary")',
        "INSERT INTO labels (name, note) VALUES ('l1', 'again')",
        "'l1'",
    ),
}


def _revision(case: Case) -> str:
    body = textwrap.indent(case.upgrade, "    ")
    down = textwrap.indent(case.downgrade, "    ")
    return (
        '"""a hand-written operation"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        'revision = "hw_case"\ndown_revision = "hw_setup"\nbranch_labels = None\n'
        f"depends_on = None\n\n\ndef upgrade():\n{body}\n\n\ndef downgrade():\n{down}\n"
    )


def _project(folder: Path, case: Case | None) -> Path:
    ini = copy_project(folder)
    versions = folder / "alembic" / "versions"
    (versions / "hw_setup.py").write_text(SETUP)
    if case is not None:
        (versions / "hw_case.py").write_text(_revision(case))
    return ini


def _cfg(ini: Path, url: str, **x: str) -> Config:
    cfg = Config(str(ini))
    cfg.cmd_opts = argparse.Namespace(x=[f"url={url}", *(f"{k}={v}" for k, v in x.items())])
    return cfg


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One DuckDB file at the setup revision, copied by every case."""
    folder = tmp_path_factory.mktemp("hand_ops_base")
    path = folder / "base.duckdb"
    command.upgrade(_cfg(_project(folder, None), f"duckdb:///{path}"), "hw_setup")
    return path


def _rows(url: str, table: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            total = 0
            for name in (table, f"{table}_quarantine"):
                if name in names:
                    total += connection.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one()
            return total
    finally:
        engine.dispose()


def _execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _no_engine_words(*texts: str) -> None:
    for text in texts:
        for name in ENGINE_CLASSES:
            assert name not in text, text


def _round_trip(
    ini: Path,
    url: str,
    case: Case,
    db: Path | None,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The case's checks, on a database at hw_setup (``db``: its DuckDB file)."""
    before = _rows(url, case.before)
    if case.violate is not None:
        _execute(url, case.violate)
        before = _rows(url, case.before)
        digest = file_sha256(db) if db is not None else None
        with pytest.raises(ConstraintViolations) as refused:
            command.upgrade(_cfg(ini, url, dry_run="true"), "head")
        rehearsed = capsys.readouterr()
        assert case.row in rehearsed.out and "the real run would be refused" in rehearsed.out
        _no_engine_words(rehearsed.out, rehearsed.err)
        with pytest.raises(ConstraintViolations) as refused:
            command.upgrade(_cfg(ini, url), "head")
        message = str(refused.value)
        assert case.row in message and case.table in message, message
        _no_engine_words(message)
        if db is not None:
            assert file_sha256(db) == digest  # refused and rehearsed: not a byte changed
        command.upgrade(_cfg(ini, url, on_violation="quarantine"), "head")
    else:
        command.upgrade(_cfg(ini, url), "head")
    assert _rows(url, case.table) == before
    command.downgrade(_cfg(ini, url), "-1")
    assert _rows(url, case.before) == before
    command.upgrade(_cfg(ini, url), "head")
    assert _rows(url, case.table) == before
    logged = capsys.readouterr()  # Alembic's log (stderr) and the reports (stdout)
    assert "Running upgrade hw_setup -> hw_case" in logged.err
    _no_engine_words(logged.out, logged.err, caplog.text)


@pytest.mark.parametrize("name", CASES)
def test_on_duckdb(
    name: str,
    seeded: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    caplog.set_level(logging.INFO)
    db = tmp_path / "db.duckdb"
    shutil.copy(seeded, db)
    _round_trip(_project(tmp_path, case), f"duckdb:///{db}", case, db, caplog, capsys)


@pytest.fixture(scope="module")
def pg_seeded(
    pg_server: pg_server_module.PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """One PostgreSQL database at the setup revision: each case's is a copy (its TEMPLATE)."""
    url = pg_server.create_database("hand_ops_template")
    folder = tmp_path_factory.mktemp("hand_ops_pg")
    command.upgrade(_cfg(_project(folder, None), url), "hw_setup")
    return "hand_ops_template"


def _pg_copy(server: pg_server_module.PostgresServer, template: str, name: str) -> str:
    engine = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        engine.dispose()
    return server.database_url(name)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.postgresql])
def test_on_postgresql(
    name: str,
    pg_server: pg_server_module.PostgresServer,
    pg_seeded: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    caplog.set_level(logging.INFO)
    url = _pg_copy(pg_server, pg_seeded, f"hand_ops_{sorted(CASES).index(name)}")
    _round_trip(_project(tmp_path, case), url, case, None, caplog, capsys)


def test_renaming_a_table_a_view_reads_is_refused_in_our_words(
    seeded: Path, tmp_path: Path
) -> None:
    """DuckDB binds a view by name: renaming what it reads would break it."""
    case = Case("media", 'op.rename_table("media", "files")', "pass")
    db = tmp_path / "db.duckdb"
    shutil.copy(seeded, db)
    digest = file_sha256(db)
    with pytest.raises(InvalidOperation) as refused:
        command.upgrade(_cfg(_project(tmp_path, case), f"duckdb:///{db}"), "head")
    assert "the view documents_view reads media" in str(refused.value)
    assert file_sha256(db) == digest


def test_offline_a_rebuild_needs_the_table_definition(seeded: Path, tmp_path: Path) -> None:
    """--sql can't read the table: refused naming copy_from=, and written when given."""
    case = CASES["create_check_constraint on a plain table"]
    ini = _project(tmp_path, case)
    url = f"duckdb:///{tmp_path / 'offline.duckdb'}"
    with pytest.raises(SchemaError, match="copy_from="):
        command.upgrade(_cfg(ini, url), "hw_setup:head", sql=True)
    given = Case(
        "notes",
        'notes = sa.Table("notes", sa.MetaData(), sa.Column("id", sa.String(), '
        'primary_key=True), sa.Column("body", sa.String()))\n'
        'with op.batch_alter_table("notes", copy_from=notes) as batch:\n'
        '    batch.create_check_constraint("body_not_empty", "length(body) > 0")',
        "pass",
    )
    ini = _project(tmp_path / "given", given)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cfg = _cfg(ini, url)
        cfg.stdout = out
        command.upgrade(cfg, "hw_setup:head", sql=True)
    assert "length(body) > 0" in out.getvalue()


def test_a_revision_s_operations_on_a_table_write_it_once(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hand-written operations are fused as create_copy_swap's are (held.py)."""
    case = Case(
        "notes",
        'op.create_check_constraint("id_short", "notes", "length(id) < 10")\n'
        'op.alter_column("notes", "body", nullable=False)\n'
        'op.alter_column("media", "mime_type", type_=sa.Text(), comment="the type")\n'
        'op.create_unique_constraint("uq_media_mime", "media", ["mime_type"])',
        "pass",
    )
    db = tmp_path / "db.duckdb"
    shutil.copy(seeded, db)
    command.upgrade(_cfg(_project(tmp_path, case), f"duckdb:///{db}"), "head")
    logged = capsys.readouterr().err
    written = re.findall(r"create_copy_swap (\w+): \d+ rows? copied", logged)
    assert sorted(written) == ["media", "notes"], logged
    with duckdb.connect(str(db), read_only=True) as con:
        kinds = con.execute(
            "SELECT table_name, constraint_type FROM duckdb_constraints() "
            "WHERE table_name IN ('notes', 'media') AND constraint_type IN ('CHECK', 'UNIQUE', "
            "'NOT NULL') ORDER BY ALL"
        ).fetchall()
    assert ("notes", "CHECK") in kinds and ("notes", "NOT NULL") in kinds
    assert kinds.count(("media", "UNIQUE")) == 2  # phash's and the new one
