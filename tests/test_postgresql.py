"""The same history on PostgreSQL: a real server (tests/pg_server.py), the same messy data.

The messy legacy V3 database of tests/messy.py is built in DuckDB and loaded,
row for row and in the same storage order, into PostgreSQL. Both engines are
then migrated, and what each keeps, quarantines and refuses is compared.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
import sqlalchemy as sa
from alembic.config import Config

from alembic import command
from egregora.database import schemas
from egregora.database.migration.catalog import (
    describe_differences,
    inspected_shapes,
    scratch_shapes,
)
from egregora.database.migration.errors import AdoptionRefused, ConstraintViolations

from . import legacy, pg_server
from .conftest import HEAD, V4, alembic_cfg, run_cli
from .messy import V3_TABLES, MessyV3, build_v3
from .migration.autogenerate.test_compare import _cfg, _metadata, _project
from .pg_server import PostgresServer
from .test_faults import Upgrade

pytestmark = pytest.mark.e2e  # the history and its deploys on a PostgreSQL server

HEAD_TABLES = {t.name for t in schemas.metadata.sorted_tables}


# -- helpers ------------------------------------------------------------------------


def connect(url: str) -> psycopg.Connection[Any]:
    parsed = sa.engine.make_url(url)
    return psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    )


def pg_sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements in one transaction; the rows of the last one."""
    with connect(url) as con:
        result: list[tuple[Any, ...]] = []
        for statement in statements:
            cursor = con.execute(statement)  # type: ignore[arg-type]
            result = cursor.fetchall() if cursor.description else []
        return result


def load_v3(duck: Path, url: str) -> None:
    """The legacy DDL on PostgreSQL, and every row of ``duck`` in its storage order."""
    source = duckdb.connect(str(duck), read_only=True)
    try:
        with connect(url) as con:
            legacy.create(con)
            for table in V3_TABLES:
                cursor = source.execute(f"SELECT * FROM {table}")
                columns = ", ".join(f'"{d[0]}"' for d in cursor.description)  # type: ignore[union-attr]
                with con.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in cursor.fetchall():
                        copy.write_row(row)
    finally:
        source.close()


def _value(column: str, value: Any) -> Any:
    if column == "payload" and value is not None:  # JSON: text from DuckDB, parsed from psycopg
        return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, list):
        return tuple(value)
    if column == "task_id" and value is not None:
        return str(value)
    return value


def contents(url: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows (quarantine tables without the time they were moved)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            found = {}
            for name in names:
                if name == "alembic_version":
                    continue
                result = connection.execute(sa.text(f'SELECT * FROM "{name}"'))
                keys = [k for k in result.keys() if k != "_quarantined_at"]  # noqa: SIM118
                found[name] = Counter(
                    tuple((k, _value(k, row[k])) for k in sorted(keys)) for row in result.mappings()
                )
            return found
    finally:
        engine.dispose()


def version(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return []
            query = sa.text("SELECT version_num FROM alembic_version")
            return list(connection.execute(query).scalars())
    finally:
        engine.dispose()


def violation_lines(exc: BaseException) -> list[str]:
    return sorted(line for line in str(exc).splitlines() if line.startswith("  - "))


# -- the messy database on both engines -------------------------------------------


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> MessyV3:
    return build_v3(tmp_path_factory.mktemp("pgv3") / "messy-v3.duckdb")


@pytest.fixture(scope="module")
def migrated(
    messy: MessyV3, pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Both engines: the refusal, then a quarantine upgrade to head and a downgrade to v3."""
    folder = tmp_path_factory.mktemp("duck")
    duck = folder / "db.duckdb"
    shutil.copy(messy.path, duck)
    duck_url = f"duckdb:///{duck}"
    pg_url = pg_server.create_database("messy_both")
    load_v3(messy.path, pg_url)
    out: dict[str, Any] = {"before": {"duckdb": contents(duck_url), "pg": contents(pg_url)}}
    for engine, url in (("duckdb", duck_url), ("pg", pg_url)):
        with pytest.raises(ConstraintViolations) as refused:
            command.upgrade(alembic_cfg(url), "head")
        out.setdefault("refused", {})[engine] = violation_lines(refused.value)
        out.setdefault("after refusal", {})[engine] = (contents(url), version(url))
        command.upgrade(alembic_cfg(url, on_violation="quarantine"), "head")
        out.setdefault("head", {})[engine] = contents(url)
        out.setdefault("version", {})[engine] = version(url)
        command.downgrade(alembic_cfg(url), "v3")
        out.setdefault("v3", {})[engine] = contents(url)
    out["pg_url"] = pg_url
    return out


def test_fail_mode_refuses_the_same_rows_as_duckdb_and_changes_nothing(
    migrated: dict[str, Any],
) -> None:
    refused = migrated["refused"]
    assert len(refused["pg"]) >= 15  # every planted kind of violation
    assert refused["pg"] == refused["duckdb"]  # same rules, counts, samples, revisions
    pg_after, pg_version = migrated["after refusal"]["pg"]
    assert pg_version == []  # not even adopted: the whole run rolled back
    assert pg_after == migrated["before"]["pg"]


def test_the_legacy_rows_load_identically(migrated: dict[str, Any]) -> None:
    assert migrated["before"]["pg"] == migrated["before"]["duckdb"]


def test_quarantine_upgrade_keeps_and_quarantines_the_same_rows(migrated: dict[str, Any]) -> None:
    head = migrated["head"]
    assert migrated["version"] == {"duckdb": [HEAD], "pg": [HEAD]}
    assert set(head["pg"]) == set(head["duckdb"])
    assert {f"{t}_quarantine" for t in V3_TABLES} <= set(head["pg"])
    for table in sorted(head["duckdb"]):
        assert head["pg"][table] == head["duckdb"][table], table
    # nothing lost: every V3 row is kept or quarantined
    for table in V3_TABLES:
        quarantined = sum(head["pg"][f"{table}_quarantine"].values())
        assert sum(head["pg"][table].values()) + quarantined == sum(
            migrated["before"]["pg"][table].values()
        )


def _created_by_key(rows: Counter[tuple[Any, ...]], key: str) -> dict[Any, list[datetime]]:
    found: dict[Any, list[datetime]] = {}
    for row in rows.elements():
        values = dict(row)
        found.setdefault(values[key], []).append(values["created_at"])
    return found


@pytest.mark.parametrize("table", V3_TABLES)
def test_each_table_keeps_its_duplicate_on_postgresql(
    table: str, messy: MessyV3, migrated: dict[str, Any]
) -> None:
    """Posts, profiles and media keep the newest row of a repeated id, the others the earliest."""
    from .test_v4 import NEWEST_KEPT

    key = "task_id" if table == "tasks" else "id"
    before = _created_by_key(migrated["before"]["pg"][table], key)
    after = _created_by_key(migrated["head"]["pg"][table], key)
    pick = max if table in NEWEST_KEPT else min
    assert messy.duplicate_ids[table]
    for repeated in messy.duplicate_ids[table]:
        times = [t for t in before[repeated] if t is not None]
        assert len(times) > 1 and after[repeated] == [pick(times)], repeated


def test_downgrade_to_v3_matches_duckdb(migrated: dict[str, Any]) -> None:
    v3 = migrated["v3"]
    for table in sorted(v3["duckdb"]):
        assert v3["pg"][table] == v3["duckdb"][table], table


# -- an empty database ---------------------------------------------------------------


def test_head_matches_the_metadata_check_is_clean_and_base_empties_it(pg_url: str) -> None:
    cfg = alembic_cfg(pg_url)
    command.upgrade(cfg, "head")
    command.check(cfg)  # raises when autogenerate finds any difference
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            names = set(sa.inspect(connection).get_table_names())
            assert names == HEAD_TABLES | {"alembic_version"}
            expected = scratch_shapes(connection, schemas.metadata.tables.values())
            actual = inspected_shapes(connection, HEAD_TABLES)
            for name in sorted(HEAD_TABLES):
                assert describe_differences(expected[name], actual[name]) == [], name
    finally:
        engine.dispose()
    command.downgrade(cfg, "base")
    assert pg_sql(
        pg_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    ) == [("alembic_version",)]
    assert pg_sql(pg_url, "SELECT count(*) FROM alembic_version") == [(0,)]
    assert pg_sql(pg_url, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'egregora%'") == [(0,)]


def test_cli_upgrade_and_check_on_a_postgresql_url(pg_url: str, tmp_path: Path) -> None:
    assert run_cli("-x", f"url={pg_url}", "upgrade", "head", cwd=tmp_path).returncode == 0
    result = run_cli("-x", f"url={pg_url}", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr


# -- create_copy_swap in place ----------------------------------------------------------


def _relfilenode(url: str, table: str) -> int:
    return int(pg_sql(url, f"SELECT relfilenode FROM pg_class WHERE relname = '{table}'")[0][0])


def _journals(url: str, *rows: str) -> None:
    values = ", ".join(rows)
    pg_sql(
        url,
        "INSERT INTO journals (id, created_at, window_start, window_end) VALUES " + values,
    )


GOOD = "('ok', now(), now() - interval '1 day', now())"
BAD = "('inverted', now(), now(), now() - interval '1 day')"


def test_copy_swap_alters_in_place_without_copying(pg_url: str) -> None:
    command.upgrade(alembic_cfg(pg_url), "v3")
    _journals(pg_url, GOOD, "('open', now(), now(), NULL)")
    before = _relfilenode(pg_url, "journals")
    command.upgrade(alembic_cfg(pg_url), "v4a")  # journals: CHECK window_order
    assert _relfilenode(pg_url, "journals") == before  # the same storage: nothing copied
    assert pg_sql(
        pg_url,
        "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'journals'::regclass",
    ) == [("chk_journals_window_order", True)]
    assert pg_sql(pg_url, "SELECT count(*) FROM journals") == [(2,)]


def test_copy_swap_fail_mode_refuses_and_changes_nothing(pg_url: str) -> None:
    command.upgrade(alembic_cfg(pg_url), "v3")
    _journals(pg_url, GOOD, BAD)
    with pytest.raises(ConstraintViolations, match="chk_journals_window_order.*'inverted'"):
        command.upgrade(alembic_cfg(pg_url), "v4a")
    assert version(pg_url) == ["v3"]
    assert pg_sql(
        pg_url, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'journals'::regclass"
    ) == [(0,)]


def test_copy_swap_quarantines_with_the_same_report(pg_url: str, tmp_path: Path) -> None:
    command.upgrade(alembic_cfg(pg_url), "v3")
    _journals(pg_url, GOOD, BAD)
    report = tmp_path / "report.json"
    dry = run_cli(
        "-x", f"url={pg_url}", "-x", "on_violation=quarantine", "-x", "dry_run=true",
        "-x", f"report={report}", "upgrade", "v4a", cwd=tmp_path,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    data = json.loads(report.read_text())
    (journals,) = [t for t in data["tables"] if t["table"] == "journals"]
    assert (journals["rows_before"], journals["rows_copied"], journals["rows_quarantined"]) == (
        2,
        1,
        1,
    )
    assert journals["in_place"] is True
    assert "journals: 1 row kept in place, 1 quarantined" in dry.stdout
    assert version(pg_url) == ["v3"]  # a dry run rolls back
    assert not pg_sql(pg_url, "SELECT to_regclass('journals_quarantine')")[0][0]

    command.upgrade(alembic_cfg(pg_url, on_violation="quarantine"), V4)
    assert pg_sql(pg_url, "SELECT id FROM journals") == [("ok",)]
    assert pg_sql(
        pg_url, "SELECT id, _quarantine_reason, _quarantine_revision FROM journals_quarantine"
    ) == [
        (
            "inverted",
            "CHECK chk_journals_window_order: window_end >= window_start",
            "v4a upgrade",
        )
    ]


def test_offline_script_for_postgresql_runs(pg_url: str, tmp_path: Path) -> None:
    command.upgrade(alembic_cfg(pg_url), "v3")
    _journals(pg_url, GOOD)
    buffer = io.StringIO()
    cfg = alembic_cfg(pg_url)
    cfg.output_buffer = buffer
    command.upgrade(cfg, f"v3:{V4}", sql=True)
    script = buffer.getvalue()
    assert "NOT VALID" in script and "VALIDATE CONSTRAINT" in script
    assert "DO $$" in script  # the fail-mode guards
    assert "__ccs_new" not in script and "__ccs_stash" not in script  # no copy
    pg_server.run_script(pg_url, script)  # as psql -f runs it: one statement at a time
    assert version(pg_url) == [V4]
    _journals(pg_url, "('ok2', now(), NULL, NULL)")
    with pytest.raises(psycopg.errors.CheckViolation):
        _journals(pg_url, BAD)


# -- adoption -------------------------------------------------------------------------


def test_adoption_refuses_a_mismatched_legacy_database(pg_url: str) -> None:
    with connect(pg_url) as con:
        legacy.create(con)
        con.execute("ALTER TABLE profiles ADD COLUMN nickname VARCHAR")
        con.execute("INSERT INTO profiles (id, nickname) VALUES ('p1', 'nick')")
    with pytest.raises(AdoptionRefused, match="profiles.nickname"):
        command.upgrade(alembic_cfg(pg_url), "head")
    assert version(pg_url) == []
    assert pg_sql(
        pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'egregora_scratch'"
    ) == [(0,)]


def test_adoption_of_a_clean_legacy_database_touches_nothing(pg_url: str) -> None:
    with connect(pg_url) as con:
        legacy.create(con)
    _journals(pg_url, GOOD)
    before = contents(pg_url)
    command.upgrade(alembic_cfg(pg_url), "v3")
    assert version(pg_url) == ["v3"]
    assert contents(pg_url) == before


# -- append-only ---------------------------------------------------------------------


def test_append_only_tables_refuse_update_delete_truncate(pg_url: str) -> None:
    command.upgrade(alembic_cfg(pg_url), V4)
    _journals(pg_url, GOOD)  # INSERT is what append-only tables are for
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        for statement in (
            sa.update(schemas.journals).values(title="changed"),
            sa.delete(schemas.journals),
            sa.delete(schemas.annotations),
            sa.text("TRUNCATE journals"),
            sa.update(schemas.journals).where(sa.false()).values(title="x"),  # no row: refused too
        ):
            with (
                pytest.raises(sa.exc.IntegrityError, match="append-only") as refused,
                engine.begin() as connection,
            ):
                connection.execute(statement)
            hint = refused.value.orig.diag.message_hint  # type: ignore[union-attr]
            assert "Insert a new row instead" in str(hint)
        with engine.begin() as connection:  # other tables change as before
            connection.execute(sa.update(schemas.posts).values(status="published"))
            connection.execute(sa.delete(schemas.tasks))
    finally:
        engine.dispose()
    assert pg_sql(pg_url, "SELECT id, title FROM journals") == [("ok", None)]
    command.downgrade(alembic_cfg(pg_url), "v4f")  # the triggers go with v4g
    pg_sql(pg_url, "UPDATE journals SET title = 'now allowed'")
    assert pg_sql(pg_url, "SELECT title FROM journals") == [("now allowed",)]


def test_migrations_may_still_quarantine_append_only_rows(pg_url: str) -> None:
    command.upgrade(alembic_cfg(pg_url), "head")
    _journals(pg_url, GOOD)
    # a downgrade and upgrade of v4a rewrite journals under the triggers
    command.downgrade(alembic_cfg(pg_url), "v3")
    _journals(pg_url, BAD)
    command.upgrade(alembic_cfg(pg_url, on_violation="quarantine"), "head")
    assert pg_sql(pg_url, "SELECT id FROM journals_quarantine") == [("inverted",)]
    assert pg_sql(pg_url, "SELECT id FROM journals") == [("ok",)]


# -- autogenerate: Alembic's plain operations --------------------------------------------


def test_autogenerate_on_postgresql_writes_what_duckdb_would(pg_url: str, tmp_path: Path) -> None:
    """One history, two engines: changes that can trip on rows are create_copy_swap here too."""
    folder = _project(tmp_path)
    before = _metadata()
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    before.create_all(engine)
    engine.dispose()
    pg_sql(
        pg_url,
        "INSERT INTO parents (id, name) VALUES ('p1', 'Ana'), ('p2', NULL)",
        "INSERT INTO children (id, parent_id, n) VALUES ('c1', 'p1', '1'), ('c2', NULL, NULL)",
    )
    after = _metadata(check="add", add_fk=True, unique=True, add_lang=True, parent_check=True)
    cfg: Config = _cfg(folder, pg_url, after)
    script = command.revision(cfg, "change", autogenerate=True)
    text = Path(script.path).read_text()  # type: ignore[union-attr]
    upgrade_text = text.split("def downgrade")[0]
    assert upgrade_text.count("op.create_copy_swap(") == 2, text  # parents, children
    for name in ('op.f("chk_children_n_ok")', 'op.f("chk_parents_name_len")'):
        assert name in upgrade_text, text
    for plain in ("op.create_check_constraint", "op.create_foreign_key", "op.add_column("):
        assert plain not in upgrade_text, text
    command.upgrade(cfg, "head")
    command.check(cfg)
    command.downgrade(cfg, "base")
    assert pg_sql(
        pg_url,
        "SELECT count(*) FROM pg_constraint WHERE contype IN ('c', 'u') "
        "AND connamespace = 'public'::regnamespace",
    ) == [(0,)]
    assert pg_sql(pg_url, "SELECT count(*) FROM children") == [(2,)]


# -- the server: errors, and several deploys at once ---------------------------------


def test_unreachable_server_is_one_paragraph_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://egregora:s3cret@127.0.0.1:1/egregora"
    result = run_cli("-x", f"url={url}", "upgrade", "head", cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED: Could not reach the database server" in result.stdout  # printed once
    assert "s3cret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_missing_database_says_to_create_it(pg_server: PostgresServer, tmp_path: Path) -> None:
    url = pg_server.database_url("no_such_database")
    result = run_cli("-x", f"url={url}", "upgrade", "head", cwd=tmp_path)
    assert result.returncode != 0
    assert "does not exist" in result.stdout and "createdb" in result.stdout  # FAILED: ...
    assert "Traceback" not in result.stderr


def test_concurrent_deploys_upgrade_once(pg_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import ALEMBIC_INI

    command_line = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI)]
    runs = [
        subprocess.Popen(
            [*command_line, "-x", f"url={pg_url}", "upgrade", "head"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert version(pg_url) == [HEAD]
    # exactly one of them ran the revisions; the others found the database at head
    ran = [err.count(f" -> {HEAD}, ") for _, err in outputs]
    assert sorted(ran) == [0, 0, 1], outputs


def test_every_append_only_table_has_its_trigger_at_head(pg_url: str) -> None:
    command.upgrade(alembic_cfg(pg_url), "head")
    triggered = pg_sql(
        pg_url,
        "SELECT tgrelid::regclass::text FROM pg_trigger "
        "WHERE NOT tgisinternal AND tgfoid = 'egregora_append_only'::regproc",
    )
    assert {name for (name,) in triggered} == set(schemas.APPEND_ONLY_TABLES)


def test_autogenerate_sees_a_check_that_keeps_its_name_but_changes(
    pg_url: str, tmp_path: Path
) -> None:
    folder = _project(tmp_path)
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    _metadata(check="add").create_all(engine)
    engine.dispose()
    same = _cfg(folder, pg_url, _metadata(check="add"))
    command.check(same)  # the server's spelling of the same CHECK is no difference
    cfg = _cfg(folder, pg_url, _metadata(check="change"))
    script = command.revision(cfg, "change", autogenerate=True)
    text = Path(script.path).read_text()  # type: ignore[union-attr]
    upgrade_text, downgrade_text = text.split("def downgrade")
    assert upgrade_text.count("op.create_copy_swap(") == 1, text
    new, old = upgrade_text.split("previous=")
    assert """sa.CheckConstraint("n <> 'worse'", name=op.f("chk_children_n_ok"))""" in new, text
    # the previous definition as the server spells it, so the downgrade restores it
    assert "\"(n)::text <> 'bad'::text\"" in old or "\"n::text <> 'bad'::text\"" in old, text
    assert "op.create_copy_swap(" in downgrade_text
    pg_sql(pg_url, "INSERT INTO children (id, n) VALUES ('c9', 'worse')")
    # named before any change, as on DuckDB
    with pytest.raises(ConstraintViolations, match="chk_children_n_ok on children"):
        command.upgrade(cfg, "head")
    assert version(pg_url) == []
    pg_sql(pg_url, "DELETE FROM children WHERE id = 'c9'")
    command.upgrade(cfg, "head")
    command.check(cfg)
    command.downgrade(cfg, "base")
    assert pg_sql(  # back to the first CHECK
        pg_url,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'chk_children_n_ok'",
    ) == [("CHECK (((n)::text <> 'bad'::text))",)]


@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_interrupted_upgrade_leaves_postgresql_as_it_was(
    messy: MessyV3, pg_server: PostgresServer, tmp_path: Path, sent: signal.Signals
) -> None:
    url = pg_server.create_database(f"interrupted_{sent.name.lower()}")
    load_v3(messy.path, url)
    before = contents(url)
    holder = connect(url)  # makes the upgrade wait mid-way through v4c, at tasks
    holder.execute("LOCK TABLE tasks IN ACCESS SHARE MODE")  # ALTER TABLE waits for it
    upgrade = Upgrade(tmp_path / "unused", url, "on_violation=quarantine")
    try:
        upgrade.wait_for("Running upgrade v4b -> v4c")
        deadline = time.monotonic() + 60
        while not pg_sql(
            url,
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%tasks%'",
        ):
            assert time.monotonic() < deadline, upgrade.output
            time.sleep(0.05)
        upgrade.proc.send_signal(sent)
        returncode = upgrade.finish(timeout=30)
    finally:
        holder.rollback()
        holder.close()
        if upgrade.proc.poll() is None:
            upgrade.proc.kill()
    assert returncode != 0
    if sent == signal.SIGINT:
        assert "Interrupted" in upgrade.output and "Traceback" not in upgrade.output
    assert version(url) == []
    assert contents(url) == before
    command.upgrade(alembic_cfg(url, on_violation="quarantine"), "head")  # a rerun completes
    assert version(url) == [HEAD]
