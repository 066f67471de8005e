"""The everyday loop, as a developer runs it: edit the model, autogenerate, upgrade real data.

Each row of the matrix is one model edit (tests/loop_model.py). For each, on
a real DuckDB file holding rows: autogenerate writes a lint-clean revision;
with rows that break the new rule, ``upgrade head`` refuses naming them and
leaves the file byte-identical (a dry run too); a quarantine run completes
with rows before = rows kept + rows quarantined; the new rule holds; ``alembic
check`` is clean; ``downgrade -1`` then ``upgrade head`` keep every row; the
whole history as ``--sql`` runs on a fresh file. The rows marked
``postgresql`` run on the test server too, generated against each engine.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic import command
from egregora.database.migration.errors import (
    ConstraintViolations,
    InvalidOperation,
    MigrationFailed,
)

from . import pg_server
from .conftest import ROOT, alembic_cfg, database_digest, file_sha256, run_cli
from .loop_model import SEED, TABLES, Edit, model

pytestmark = pytest.mark.e2e  # dozens of Alembic commands per edit

CASES: dict[str, Edit] = {
    # -- the reproductions of issue 12 ------------------------------------------
    "new column with a CHECK": Edit(
        ("media.language",),
        refused_after="INSERT INTO media (id, language) VALUES ('mx', 'xx')",
        writes=("op.create_copy_swap(",),
        postgresql=True,
    ),
    "new NOT NULL column with a default and a CHECK": Edit(
        ("media.lang_nn_check",),
        refused_after="INSERT INTO media (id, lang) VALUES ('mx', 'eng')",
        works_after="INSERT INTO media (id) VALUES ('my')",
        writes=("op.create_copy_swap(",),
    ),
    "new column with a FOREIGN KEY": Edit(
        ("media.book_fk",),
        refused_after="INSERT INTO media (id, book_id) VALUES ('mx', 'nope')",
        writes=("op.create_copy_swap(",),
        postgresql=True,
    ),
    "new table with an index": Edit(
        ("series.new",),
        works_after="INSERT INTO series (id, title) VALUES ('s1', 'x')",
        writes=("op.create_table(", "op.create_index("),
    ),
    "new table with a CHECK declared on a column": Edit(
        ("series.new", "series.rating"),
        refused_after="INSERT INTO series (id, rating) VALUES ('s1', -1)",
        writes=("op.create_table(", 'name=op.f("chk_series_rating")'),
        postgresql=True,
    ),
    "NOT NULL on a table nothing references": Edit(
        ("media.filename_notnull",),
        violate=("UPDATE media SET filename = NULL WHERE id = 'm2'",),
        refusal="NOT NULL",
        refused_after="INSERT INTO media (id) VALUES ('mx')",
        postgresql=True,
    ),
    "UNIQUE index over duplicates": Edit(
        ("media.filename_unique_index",),
        violate=("UPDATE media SET filename = 'a.png' WHERE id = 'm2'",),
        refusal="UNIQUE INDEX",
        refused_after="INSERT INTO media (id, filename) VALUES ('mx', 'a.png')",
        postgresql=True,
    ),
    "type change whose values don't convert": Edit(
        ("media.code_int",),
        violate=("UPDATE media SET code = 'abc' WHERE id = 'm2'",),
        refusal="conversion",
        works_after="INSERT INTO media (id, code) VALUES ('mx', 12)",
    ),
    "drop a column before an indexed column": Edit(
        ("books.pages_drop",),
        works_after="INSERT INTO books (id, title) VALUES ('bx', 'X')",
        writes=("op.create_copy_swap(", "destroys"),
        postgresql=True,
    ),
    "CHECK declared on the column": Edit(
        ("media.size_check_col",),
        violate=("UPDATE media SET size = -1 WHERE id = 'm1'",),
        refusal="CHECK",
        refused_after="INSERT INTO media (id, size) VALUES ('mx', -5)",
        postgresql=True,
    ),
    # -- CHECK, FOREIGN KEY, keys -----------------------------------------------------
    "CHECK on an FK parent": Edit(
        ("authors.name_check",),
        violate=("UPDATE authors SET name = '' WHERE id = 'a2'",),
        refusal="CHECK",
        refused_after="INSERT INTO authors (id, name) VALUES ('ax', '')",
        postgresql=True,
    ),
    "drop a CHECK": Edit(
        ("authors.no_score_check",),
        works_after="INSERT INTO authors (id, score) VALUES ('ax', -3)",
    ),
    "change a CHECK": Edit(
        ("authors.score_check_changed",),
        violate=("UPDATE authors SET score = 0 WHERE id = 'a1'",),
        refusal="CHECK",
        refused_after="INSERT INTO authors (id, score) VALUES ('ax', 0)",
        postgresql=True,
    ),
    "FOREIGN KEY on an existing column": Edit(
        ("books.editor_fk",),
        violate=("UPDATE books SET editor_id = 'ghost' WHERE id = 'b2'",),
        refusal="FOREIGN KEY",
        refused_after="INSERT INTO books (id, editor_id) VALUES ('bx', 'ghost')",
        postgresql=True,
    ),
    "drop a FOREIGN KEY": Edit(
        ("books.no_author_fk",),
        works_after="INSERT INTO books (id, author_id) VALUES ('bx', 'ghost')",
    ),
    "UNIQUE on an FK parent": Edit(
        ("authors.email_unique",),
        violate=("UPDATE authors SET email = 'ana@x' WHERE id = 'a2'",),
        refusal="UNIQUE",
        refused_after="INSERT INTO authors (id, email) VALUES ('ax', 'ana@x')",
    ),
    "drop a UNIQUE": Edit(
        (),
        before=("authors.email_unique",),
        works_after="INSERT INTO authors (id, email) VALUES ('ax', 'ana@x')",
    ),
    "PRIMARY KEY on a table without one": Edit(
        ("tags.pk",),
        violate=("INSERT INTO tags (name, note) VALUES ('t1', 'again')",),
        refusal="PRIMARY KEY",
        refused_after="INSERT INTO tags (name) VALUES ('t2')",
        postgresql=True,
    ),
    "drop a PRIMARY KEY": Edit(
        ("media.no_pk",),
        works_after="INSERT INTO media (id) VALUES ('m1')",
    ),
    # -- nullability and types ----------------------------------------------------------
    "NOT NULL on an FK parent": Edit(
        ("authors.name_notnull",),
        violate=("UPDATE authors SET name = NULL WHERE id = 'a2'",),
        refusal="NOT NULL",
        refused_after="INSERT INTO authors (id) VALUES ('ax')",
    ),
    "NOT NULL on an indexed child that is also a parent": Edit(
        ("books.title_notnull",),
        violate=("UPDATE books SET title = NULL WHERE id = 'b2'",),
        refusal="NOT NULL",
        refused_after="INSERT INTO books (id) VALUES ('bx')",
    ),
    "narrowing a type on a grandchild": Edit(
        ("reviews.stars_smallint",),
        violate=("UPDATE reviews SET stars = 100000 WHERE id = 'r2'",),
        refusal="conversion",
        refused_after="INSERT INTO reviews (id, stars) VALUES ('rx', 100000)",
    ),
    "widening a type on an indexed table": Edit(
        ("books.pages_bigint",),
        works_after="INSERT INTO books (id, pages) VALUES ('bx', 1000000000000)",
    ),
    # -- columns --------------------------------------------------------------------------
    "nullable column on an FK parent": Edit(
        ("authors.bio",),
        works_after="INSERT INTO authors (id, bio) VALUES ('ax', 'hi')",
        writes=("op.add_column(",),
    ),
    "NOT NULL column with a default on an FK parent": Edit(
        ("authors.lang",),
        works_after="INSERT INTO authors (id) VALUES ('ax')",
    ),
    "drop a column of a grandchild": Edit(
        ("reviews.note_drop",),
        works_after="INSERT INTO reviews (id) VALUES ('rx')",
        writes=("destroys",),
    ),
    "CHECK declared on a grandchild's column": Edit(
        ("reviews.stars_check_col",),
        violate=("UPDATE reviews SET stars = 9 WHERE id = 'r3'",),
        refusal="CHECK",
        refused_after="INSERT INTO reviews (id, stars) VALUES ('rx', 0)",
    ),
    "server default": Edit(
        ("media.kind_default",),
        works_after="INSERT INTO media (id) VALUES ('mx')",
    ),
    "column comment": Edit(("media.size_comment",)),
    "a generated column": Edit(
        ("media.generated",),
        works_after="INSERT INTO media (id, size) VALUES ('mx', 2)",
        writes=("op.create_copy_swap(",),
    ),
    "another spelling of the same type (TEXT is VARCHAR)": Edit(("books.title_text",)),
    # -- indexes --------------------------------------------------------------------------
    "plain index": Edit(("media.kind_index",), writes=("op.create_index(",)),
    "drop an index": Edit(("books.no_isbn_index",)),
    # -- append-only, tables, combinations ----------------------------------------------
    "CHECK on an append-only table": Edit(
        ("events.body_check",),
        violate=("UPDATE events SET body = '' WHERE id = 'e2'",),
        refusal="CHECK",
        refused_after="INSERT INTO events (id, body) VALUES ('ex', '')",
        postgresql=True,
    ),
    "nullable column on an indexed append-only table": Edit(
        ("events.source",),
        works_after="INSERT INTO events (id, source) VALUES ('ex', 'chat')",
    ),
    "drop a column after an indexed column": Edit(
        ("events.body_drop",),
        works_after="INSERT INTO events (id) VALUES ('ex')",
    ),
    "two changes on one table": Edit(
        ("authors.name_check", "authors.name_notnull"),
        violate=("UPDATE authors SET name = NULL WHERE id = 'a3'",),
        refusal="NOT NULL",
        refused_after="INSERT INTO authors (id, name) VALUES ('ax', '')",
    ),
    "changes to a parent and its child in one revision": Edit(
        ("authors.name_check", "books.title_notnull"),
        violate=("UPDATE books SET title = NULL WHERE id = 'b4'",),
        refusal="NOT NULL",
        refused_after="INSERT INTO books (id) VALUES ('bx')",
        postgresql=True,
    ),
    "new CHECK column, an index and a comment on one table": Edit(
        ("media.language", "media.kind_index", "media.size_comment"),
        refused_after="INSERT INTO media (id, language) VALUES ('mx', 'xx')",
    ),
}


# -- a project with a test-only history ----------------------------------------------


class Project:
    """An alembic/ folder with the project's env.py and template, its own versions, one DB."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url

    @classmethod
    def create(cls, where: Path, url: str) -> Project:
        folder = where / "alembic"
        shutil.copytree(
            ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__", "versions")
        )
        (folder / "versions").mkdir()
        return cls(folder, url)

    def cfg(self, metadata: sa.MetaData, url: str | None = None, **x: str) -> Config:
        cfg = alembic_cfg(url or self.url, **x)
        cfg.set_main_option("script_location", str(self.folder))
        cfg.attributes["target_metadata"] = metadata
        return cfg

    def generate(self, metadata: sa.MetaData, rev_id: str) -> str:
        script = command.revision(self.cfg(metadata), rev_id, autogenerate=True, rev_id=rev_id)
        assert script is not None, "autogenerate wrote nothing"
        return Path(script.path).read_text()  # type: ignore[union-attr]

    def offline_sql(self, metadata: sa.MetaData, url: str) -> str:
        cfg = self.cfg(metadata, url)
        buffer = io.StringIO()
        cfg.output_buffer = buffer
        command.upgrade(cfg, "head", sql=True)
        return buffer.getvalue()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def counts(url: str) -> dict[str, int]:
    """Rows per table, quarantine tables included."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            return {
                n: int(connection.exec_driver_sql(f'SELECT count(*) FROM "{n}"').scalar_one())
                for n in names
                if n != "alembic_version"
            }
    finally:
        engine.dispose()


def contents(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted, as text: what a round trip must keep."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            found = {}
            for name in sa.inspect(connection).get_table_names():
                rows = connection.exec_driver_sql(f'SELECT * FROM "{name}"').fetchall()
                found[name] = sorted(tuple(str(v) for v in row) for row in rows)
            return found
    finally:
        engine.dispose()


def fails(url: str, statement: str) -> bool:
    try:
        execute(url, statement)
    except sa.exc.DBAPIError:
        return True
    return False


def lint(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    ruff = Path(sys.executable).parent / "ruff"
    return subprocess.run(
        [str(ruff), "check", "--config", str(ROOT / "pyproject.toml"), *map(str, paths)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def _quarantined(before: dict[str, int], after: dict[str, int]) -> None:
    """Rows before = rows kept + rows quarantined, table by table."""
    for table, rows in before.items():
        if table.endswith("_quarantine"):
            continue
        if table not in after:
            continue  # a dropped table
        moved = after.get(f"{table}_quarantine", 0) - before.get(f"{table}_quarantine", 0)
        assert rows == after[table] + moved, (table, before, after)


# -- the base every case starts from: generated once per starting model ----------------


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, ...], Path]]:
    made: dict[tuple[str, ...], Path] = {}
    root = tmp_path_factory.mktemp("bases")

    def base(before: tuple[str, ...]) -> Path:
        if before not in made:
            where = root / f"b{len(made)}"
            where.mkdir()
            project = Project.create(where, f"duckdb:///{where / 'db.duckdb'}")
            project.generate(model(before), "r1base")
            command.upgrade(project.cfg(model(before)), "head")
            execute(project.url, *SEED)
            made[before] = where
        return made[before]

    yield base  # type: ignore[misc]


def _checkout(base: Path, where: Path) -> Project:
    shutil.copytree(base / "alembic", where / "alembic")
    shutil.copy(base / "db.duckdb", where / "db.duckdb")
    return Project(where / "alembic", f"duckdb:///{where / 'db.duckdb'}")


# -- the matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_everyday_loop_on_duckdb(name: str, bases, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    edit = CASES[name]
    project = _checkout(bases(edit.before), tmp_path)
    after = model(edit.after)
    _generated_well(project.generate(after, "r2edit"), project, edit)
    exercise(project, after, edit, project.url, f"duckdb:///{tmp_path / 'fresh.duckdb'}")


PG_CASES = [name for name, edit in CASES.items() if edit.postgresql]


@pytest.mark.parametrize("generated_on", ["duckdb", "postgresql"])
@pytest.mark.parametrize("name", PG_CASES)
def test_everyday_loop_on_postgresql(  # type: ignore[no-untyped-def]
    name: str, generated_on: str, bases, tmp_path: Path, pg_url: str, pg_server
) -> None:
    """One history, two engines: generated against either, it runs on both."""
    edit = CASES[name]
    after = model(edit.after)
    key = hashlib.sha1(f"{name}/{generated_on}".encode()).hexdigest()[:16]
    fresh_pg = pg_server.create_database(f"fresh_{key}")
    if generated_on == "duckdb":
        project = _checkout(bases(edit.before), tmp_path)
    else:
        project = Project.create(tmp_path, pg_url)
        project.generate(model(edit.before), "r1base")
        command.upgrade(project.cfg(model(edit.before)), "head")
        execute(pg_url, *SEED)
    _generated_well(project.generate(after, "r2edit"), project, edit)
    # the revisions on PostgreSQL (the database autogenerate did not look at, or did)
    if generated_on == "duckdb":
        command.upgrade(project.cfg(after, pg_url), "r1base")
        execute(pg_url, *SEED)
    exercise(project, after, edit, pg_url, fresh_pg)
    # and on DuckDB
    duck = tmp_path / "duck.duckdb"
    command.upgrade(project.cfg(after, f"duckdb:///{duck}"), "r1base")
    execute(f"duckdb:///{duck}", *SEED)
    exercise(project, after, edit, f"duckdb:///{duck}", f"duckdb:///{tmp_path / 'fresh.duckdb'}")


def _generated_well(text: str, project: Project, edit: Edit) -> None:
    """What autogenerate wrote: the expected operations, frozen, lint-clean."""
    for needle in edit.writes:
        assert needle in text, text
    assert "import egregora.database.schemas" not in text  # frozen history
    assert "from egregora.database.schemas" not in text
    linted = lint(sorted((project.folder / "versions").glob("*.py")))
    assert linted.returncode == 0, linted.stdout
    upgrade_text = text.split("def downgrade")[0]
    assert upgrade_text.count("op.create_copy_swap(") <= len(TABLES)


def exercise(project: Project, after: sa.MetaData, edit: Edit, url: str, fresh: str) -> None:
    """A database at r1base with the seed rows, taken through the edit as a user would."""
    if edit.violate:
        execute(url, *edit.violate)
        _refused_and_untouched(project, after, url, edit)
        before = counts(url)
        command.upgrade(project.cfg(after, url, on_violation="quarantine"), "head")
        _quarantined(before, counts(url))
    else:
        command.upgrade(project.cfg(after, url), "head")
    command.check(project.cfg(after, url))
    _round_trip(project, after, url)
    _rule_holds(url, edit)
    _offline_history_runs(project, after, fresh)


def _refused_and_untouched(project: Project, after: sa.MetaData, url: str, edit: Edit) -> None:
    untouched = _fingerprint(url)
    with pytest.raises(ConstraintViolations) as refused:
        command.upgrade(project.cfg(after, url), "head")
    message = str(refused.value)
    assert edit.refusal in message and "revision r2edit" in message, message
    assert _fingerprint(url) == untouched
    command.upgrade(project.cfg(after, url, dry_run="true", on_violation="quarantine"), "head")
    assert _fingerprint(url) == untouched


def _fingerprint(url: str) -> object:
    """The file's bytes on DuckDB; every row and the schema on PostgreSQL."""
    if url.startswith("duckdb:///"):
        return file_sha256(Path(url.removeprefix("duckdb:///")))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            schema = {
                t: (
                    [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(t)],
                    inspector.get_check_constraints(t),
                    inspector.get_unique_constraints(t),
                    inspector.get_foreign_keys(t),
                    inspector.get_indexes(t),
                )
                for t in inspector.get_table_names()
            }
    finally:
        engine.dispose()
    return schema, contents(url)


def _rule_holds(url: str, edit: Edit) -> None:
    if edit.refused_after:
        assert fails(url, edit.refused_after), edit.refused_after
    if edit.works_after:
        execute(url, edit.works_after)


def _round_trip(project: Project, after: sa.MetaData, url: str) -> None:
    upgraded = contents(url)
    command.downgrade(project.cfg(after, url), "-1")
    down = counts(url)
    for table, rows in upgraded.items():
        if table in down:
            assert down[table] == len(rows), table  # every row kept on the way down
    command.upgrade(project.cfg(after, url), "head")
    assert contents(url) == upgraded


def _offline_history_runs(project: Project, after: sa.MetaData, fresh: str) -> None:
    """The whole history as ``--sql``, run on a fresh database of the same engine."""
    script = project.offline_sql(after, fresh)
    if fresh.startswith("postgresql"):
        pg_server.run_script(fresh, script)  # as psql -f runs it: one statement at a time
    engine = sa.create_engine(fresh, poolclass=sa.pool.NullPool)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            if not fresh.startswith("postgresql"):
                cursor.execute(script)
                raw.commit()
            cursor.execute("SELECT version_num FROM alembic_version")
            assert cursor.fetchall() == [(_head(project),)]
        finally:
            raw.close()
    finally:
        engine.dispose()


# -- what a run says ------------------------------------------------------------------------


def _edited(bases, tmp_path: Path, *edits: str) -> tuple[Project, sa.MetaData]:  # type: ignore[no-untyped-def]
    project = _checkout(bases(()), tmp_path)
    after = model(edits)
    project.generate(after, "r2edit")
    return project, after


def test_a_refusal_counts_the_rows_that_would_follow(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project, after = _edited(bases, tmp_path, "authors.name_check")
    execute(project.url, "UPDATE authors SET name = '' WHERE id = 'a1'")
    cfg = project.cfg(after)
    cfg.config_file_name = None  # the ini's logging config would drop the handler below
    logger = logging.getLogger("alembic.egregora.copy_swap")
    logger.addHandler(caplog.handler)
    try:
        with (
            caplog.at_level(logging.INFO, logger.name),
            pytest.raises(ConstraintViolations) as refused,
        ):
            command.upgrade(cfg, "head")
    finally:
        logger.removeHandler(caplog.handler)
    message = str(refused.value)
    assert "violate 1 constraint" in message
    assert "books: 2 rows that reference those rows of authors" in message  # b1, b2
    assert "reviews: 3 rows that reference those rows of authors" in message  # r1, r2, r3
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "authors: 1 row violates the new rules" in logged
    assert "quarantined" not in logged  # a refused run quarantines nothing


def test_report_counts_match_the_quarantine_tables(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path
) -> None:
    import json

    project, after = _edited(bases, tmp_path, "authors.name_check")
    execute(project.url, "UPDATE authors SET name = '' WHERE id = 'a1'")
    report = tmp_path / "report.json"
    command.upgrade(project.cfg(after, on_violation="quarantine", report=str(report)), "head")
    found = json.loads(report.read_text())
    held = {t: n for t, n in counts(project.url).items() if t.endswith("_quarantine")}
    assert held == {"authors_quarantine": 1, "books_quarantine": 2, "reviews_quarantine": 3}
    assert found["totals"]["rows_quarantined"] == sum(held.values())
    assert found["revisions"][0]["quarantined"] == held


def test_a_dry_run_counts_what_drops_destroy(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, after = _edited(bases, tmp_path, "books.pages_drop", "media.no_pk")
    text = (project.folder / "versions" / "r2edit_r2edit.py").read_text()
    assert "# destroys books.pages and every value in it" in text
    (project.folder / "versions" / "r3drop_tags.py").write_text(RETIRE_TAGS)
    digest = file_sha256(tmp_path / "db.duckdb")
    command.upgrade(project.cfg(after, dry_run="true"), "head")
    out = capsys.readouterr().out
    assert "destroys books.pages: 3 non-NULL values" in out, out  # b3 has none
    assert "destroys table tags: 3 rows" in out, out
    assert file_sha256(tmp_path / "db.duckdb") == digest


#: Retiring a table is written by hand (docs/writing-migrations.md)
RETIRE_TAGS = '''"""Retire tags."""
import sqlalchemy as sa
from alembic import op

revision = "r3drop"
down_revision = "r2edit"


def upgrade():
    op.drop_table("tags")


def downgrade():
    op.create_table("tags", sa.Column("name", sa.String()), sa.Column("note", sa.String()))
'''


def test_a_table_left_out_of_the_model_is_left_alone(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _checkout(bases(()), tmp_path)
    cfg = project.cfg(model(["tags.drop"]))
    cfg.cmd_opts.autogenerate = True  # type: ignore[union-attr]
    command.revision(cfg, "nothing", autogenerate=True)
    assert "No changes in schema detected" in capsys.readouterr().out
    command.check(project.cfg(model(["tags.drop"])))  # and no drift
    assert counts(project.url)["tags"] == 3


def test_no_change_writes_no_revision(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _checkout(bases(()), tmp_path)
    cfg = project.cfg(model())
    cfg.cmd_opts.autogenerate = True  # type: ignore[union-attr]  (as `revision --autogenerate`)
    command.revision(cfg, "nothing", autogenerate=True)
    assert "No changes in schema detected" in capsys.readouterr().out
    assert [p.name for p in (project.folder / "versions").glob("*.py")] == ["r1base_r1base.py"]
    project.generate(model(["authors.bio"]), "r2edit")  # the next autogenerate still works


def test_no_change_writes_no_revision_through_the_command_line(tmp_path: Path) -> None:
    """The real project at head: `alembic revision --autogenerate` says so and writes nothing."""
    folder = tmp_path / "alembic"
    shutil.copytree(ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__"))
    ini = tmp_path / "alembic.ini"
    ini.write_text((ROOT / "alembic.ini").read_text().replace("%(here)s/alembic", str(folder)))
    url = f"duckdb:///{tmp_path / 'db.duckdb'}"
    assert run_cli("-x", f"url={url}", "upgrade", "head", cwd=tmp_path, ini=ini).returncode == 0
    before = sorted(p.name for p in (folder / "versions").glob("*.py"))
    result = run_cli(
        "-x", f"url={url}", "revision", "--autogenerate", "-m", "x", cwd=tmp_path, ini=ini
    )
    assert result.returncode == 0, result.stderr
    assert "No changes in schema detected" in result.stdout
    assert sorted(p.name for p in (folder / "versions").glob("*.py")) == before
    check = run_cli("-x", f"url={url}", "check", cwd=tmp_path, ini=ini)
    assert check.returncode == 0, check.stderr


def test_an_edit_of_the_real_schema_on_top_of_the_real_history(tmp_path: Path) -> None:
    """The issue's own reproduction: schemas.py gains posts.language with a CHECK and a
    NOT NULL media.filename, on a messy V3 file taken to head; whatever the head is."""
    from egregora.database import schemas

    from .messy import build_v3

    path = tmp_path / "egregora.duckdb"
    build_v3(path, n=200)
    url = f"duckdb:///{path}"
    folder = tmp_path / "alembic"
    shutil.copytree(ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__"))
    project = Project(folder, url)
    command.upgrade(project.cfg(schemas.metadata, on_violation="quarantine"), "head")
    head = ScriptDirectory.from_config(project.cfg(schemas.metadata)).get_current_head()

    edited = sa.MetaData(naming_convention=schemas.NAMING_CONVENTION)
    for table in schemas.metadata.sorted_tables:
        table.to_metadata(edited)
    edited.tables["posts"].append_column(
        sa.Column("language", sa.String(), sa.CheckConstraint("language IN ('en', 'pt', 'es')"))
    )
    edited.tables["media"].c.filename.nullable = False
    text = project.generate(edited, "r_edit")
    assert re.search(rf"down_revision: .* = [\"']{head}[\"']", text), text
    execute(url, "UPDATE media SET filename = NULL WHERE id = (SELECT min(id) FROM media)")
    untouched = file_sha256(path)
    with pytest.raises(ConstraintViolations, match="NOT NULL media.filename"):
        command.upgrade(project.cfg(edited), "head")
    assert file_sha256(path) == untouched
    before = counts(url)
    command.upgrade(project.cfg(edited, on_violation="quarantine"), "head")
    _quarantined(before, counts(url))
    assert fails(url, "UPDATE posts SET language = 'xx'")
    command.check(project.cfg(edited))
    _round_trip(project, edited, url)
    _offline_history_runs(project, edited, f"duckdb:///{tmp_path / 'fresh.duckdb'}")


def _head(project: Project) -> str:
    head = ScriptDirectory.from_config(project.cfg(sa.MetaData())).get_current_head()
    assert head is not None
    return head


def test_out_of_memory_is_one_paragraph_and_changes_nothing(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB fails a rebuild's COMMIT past memory_limit (and invalidates the connection)."""
    project, after = _edited(bases, tmp_path, "media.size_check_col")
    execute(
        project.url,
        "INSERT INTO media SELECT 'x' || i, repeat('f', 200) || i, NULL, i, 'image' "
        "FROM range(300000) AS r(i)",
    )
    path = tmp_path / "db.duckdb"
    digest = database_digest(path)
    cfg = project.cfg(after, memory_limit="8MB")
    cfg.config_file_name = None  # the ini's logging config would drop pytest's handler
    pool = logging.getLogger("sqlalchemy.pool")
    pool.addHandler(caplog.handler)
    try:
        with pytest.raises(MigrationFailed) as failed:
            command.upgrade(cfg, "head")
    finally:
        pool.removeHandler(caplog.handler)
    message = str(failed.value)
    assert "ran out of room" in message and "memory_limit = 7.6 MiB" in message
    assert "-x memory_limit=" in message and "\n" not in message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no pool traceback
    # DuckDB may have written blocks of the new copy before the COMMIT failed (the
    # file's bytes differ), but every table, row and the version are as they were
    assert database_digest(path) == digest
    command.upgrade(project.cfg(after, memory_limit="64MB"), "head")  # enough: it completes
    with pytest.raises(InvalidOperation, match="memory_limit=lots"):
        command.downgrade(project.cfg(after, memory_limit="lots"), "-1")


def test_another_stores_table_that_references_ours_stays_out_of_the_revision(  # type: ignore[no-untyped-def]
    bases, tmp_path: Path
) -> None:
    """Frozen into the revision it would break --sql on a fresh file, where it doesn't exist;
    online it is read from the live catalog and rebuilt exactly."""
    project = _checkout(bases(()), tmp_path)
    execute(
        project.url,
        "CREATE TABLE user_ratings (author_id VARCHAR REFERENCES authors (id), stars INTEGER)",
        "INSERT INTO user_ratings VALUES ('a1', 5), ('a2', 3)",
    )
    after = model(["authors.name_check"])
    text = project.generate(after, "r2edit")
    assert "user_ratings" not in text
    command.upgrade(project.cfg(after), "head")
    assert counts(project.url)["user_ratings"] == 2
    command.check(project.cfg(after))
    _offline_history_runs(project, after, f"duckdb:///{tmp_path / 'fresh.duckdb'}")


def test_a_check_beside_an_enum_column_is_compared_without_a_traceback() -> None:
    from egregora.database.migration.catalog import canonical_check_expressions
    from egregora.database.schemas import NAMING_CONVENTION

    table = sa.Table(
        "posts",
        sa.MetaData(naming_convention=NAMING_CONVENTION),
        sa.Column("state", sa.Enum("draft", "published", name="post_state")),
        sa.CheckConstraint("state <> 'draft'", name="not_draft"),
    )
    from duckdb_sqlalchemy import Dialect

    ((_, expression),) = canonical_check_expressions(table, Dialect())
    assert "draft" in expression


# -- long SQL in generated revisions (issue 25, item 1) ---------------------------------

#: The real app's own CHECKs on its unified documents table (franklinbaldo/egregora
#: c0303dfd1, src/egregora/database/schemas.py), 63 to 101 characters.
APP_CHECKS = {
    "post_req": "(doc_type != 'post') OR (title IS NOT NULL AND slug IS NOT NULL AND "
    "status IS NOT NULL)",
    "post_status": "(doc_type != 'post') OR (status IN ('draft', 'published', 'archived'))",
    "profile_req": "(doc_type != 'profile') OR (title IS NOT NULL AND subject_uuid IS NOT NULL)",
    "journal_req": "(doc_type != 'journal') OR (title IS NOT NULL AND window_start IS NOT NULL "
    "AND window_end IS NOT NULL)",
    "media_req": "(doc_type != 'media') OR (filename IS NOT NULL)",
}
#: a default that is one SQL string literal longer than any line: it can't be split
LONG_LITERAL = "'" + "a document written before the unified table, " * 2 + "kept as it was'"
LONG_DEFAULT = "concat('untitled', ' ', 'document', ' ', 'written', ' before titles were required')"


def _documents(step: int) -> sa.MetaData:
    """The app's documents table: 0 as it was, 1 with its CHECKs, 2 with one more change."""
    from egregora.database import schemas

    meta = sa.MetaData(naming_convention=schemas.NAMING_CONVENTION)
    tz = sa.TIMESTAMP(timezone=True)
    sa.Table(
        "documents",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("doc_type", sa.String(), nullable=False),
        sa.Column("title", sa.String()),
        sa.Column("slug", sa.String(), unique=step >= 2),
        sa.Column("status", sa.String()),
        sa.Column("subject_uuid", sa.String()),
        sa.Column("window_start", tz),
        sa.Column("window_end", tz),
        sa.Column("filename", sa.String()),
        *(
            [
                sa.Column(
                    "label", sa.String(), nullable=False, server_default=sa.text(LONG_DEFAULT)
                ),
                sa.Column("origin", sa.String(), server_default=sa.text(LONG_LITERAL)),
            ]
            if step >= 1
            else []
        ),
        *(
            [sa.CheckConstraint(text, name=name) for name, text in APP_CHECKS.items()]
            if step >= 1
            else []
        ),
    )
    return meta


DOCUMENT_ROWS = (
    "INSERT INTO documents (id, doc_type, title, slug, status) VALUES "
    "('p1', 'post', 'Hello', 'hello', 'published'), ('p2', 'post', 'Again', 'again', 'draft')",
    "INSERT INTO documents (id, doc_type, title, subject_uuid) VALUES "
    "('u1', 'profile', 'Ana', 'a')",
    "INSERT INTO documents (id, doc_type, title, window_start, window_end) VALUES "
    "('j1', 'journal', 'w1', '2026-01-01 00:00:00+00', '2026-01-02 00:00:00+00')",
    "INSERT INTO documents (id, doc_type, filename) VALUES ('m1', 'media', 'a.png')",
)


def _ruff_clean(path: Path) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    config = ("--config", str(ROOT / "pyproject.toml"))
    for args in (("check", *config, str(path)), ("format", "--check", *config, str(path))):
        done = subprocess.run([str(ruff), *args], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr + path.read_text()


def _literal_arguments(text: str, call: str, part: str = "table") -> list[str]:
    """The first argument of each ``sa.<call>(...)`` in the upgrade's create_copy_swap, as
    Python reads it: in its table (``part="table"``) or in ``previous=``."""
    import ast

    [upgrade] = [
        n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"
    ]
    [swap] = [
        n
        for n in ast.walk(upgrade)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "create_copy_swap"
    ]
    where = (
        swap.args[0] if part == "table" else next(k.value for k in swap.keywords if k.arg == part)
    )
    return [
        node.args[0].value
        for node in ast.walk(where)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == call
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def _stored_checks(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            return {str(c["sqltext"]) for c in inspector.get_check_constraints("documents")}
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_the_apps_long_checks_make_lint_clean_revisions(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Edit, autogenerate, ruff, upgrade; then a second revision that rebuilds the table again
    (its previous= carries the engine's own, longer, spelling of each CHECK)."""
    url = (
        f"duckdb:///{tmp_path / 'db.duckdb'}"
        if engine == "duckdb"
        else request.getfixturevalue("pg_url")
    )
    project = Project.create(tmp_path, url)
    project.generate(_documents(0), "d0")
    command.upgrade(project.cfg(_documents(0)), "head")
    execute(url, *DOCUMENT_ROWS)

    first = project.generate(_documents(1), "d1")
    _ruff_clean(project.folder / "versions" / "d1_d1.py")
    assert sorted(_literal_arguments(first, "CheckConstraint")) == sorted(
        APP_CHECKS.values()
    )  # each split string is the original, character for character
    assert set(_literal_arguments(first, "text")) >= {LONG_DEFAULT, LONG_LITERAL}
    command.upgrade(project.cfg(_documents(1)), "head")
    assert fails(url, "INSERT INTO documents (id, doc_type) VALUES ('j2', 'journal')")

    second = project.generate(_documents(2), "d2")
    _ruff_clean(project.folder / "versions" / "d2_d2.py")
    stored = _stored_checks(url)
    assert set(_literal_arguments(second, "CheckConstraint", "previous")) == stored, stored
    assert max(len(s) for s in stored) > 100  # the engine's spelling is longer still
    command.upgrade(project.cfg(_documents(2)), "head")
    command.check(project.cfg(_documents(2)))
    before = contents(url)
    command.downgrade(project.cfg(_documents(2)), "d0")
    command.upgrade(project.cfg(_documents(2)), "head")
    assert contents(url) == before
