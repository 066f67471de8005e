"""The files the real Egregora application made (tests/field/): adopted, upgraded, nothing lost.

For each variant of the corpus: ``alembic current`` says what it is; the
upgrade is refused while messy rows break a rule, leaving the file byte for
byte as it was; with ``-x on_violation=quarantine`` it is adopted and reaches
head, every row kept or quarantined; ``alembic check`` is clean; the other
stores' tables, indexes, sequences and rows are untouched; ``downgrade v3``
gives V3's six tables; ``upgrade head`` again. A file of another lineage, or
one whose conversion nobody asked for, is refused and left unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from alembic.config import Config

from alembic import command
from egregora.database.migration.errors import AdoptionRefused, ConstraintViolations

from . import legacy
from .conftest import ALEMBIC_INI, ROOT, alembic_cfg, copy_project, file_sha256
from .copy_swap_helpers import rows, table_names
from .fidelity import catalog_picture
from .field.corpus import V3_TABLES, VARIANTS, build

pytestmark = pytest.mark.e2e  # every field file to head, down and up again

ADOPTED = [name for name, v in VARIANTS.items() if not v.never]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every variant built once per session; tests work on copies."""
    folder = tmp_path_factory.mktemp("field")
    paths = {}
    for name, variant in VARIANTS.items():
        paths[name] = folder / f"{name}.duckdb"
        build(variant, paths[name])
    return paths


@pytest.fixture
def field_file(built: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        path = tmp_path / f"{name}.duckdb"
        shutil.copyfile(built[name], path)
        return path

    return copy


def counts(path: Path, tables: tuple[str, ...] = V3_TABLES) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {
            t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for t in tables
            if t in present
        }
    finally:
        con.close()


def other_stores(path: Path) -> dict[str, Any]:
    """The catalog's picture of everything that is not the schema's, rows included."""
    con = duckdb.connect(str(path), read_only=True)
    names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    ours = set(V3_TABLES) | {"post_authors", "alembic_version"}
    ours |= {n for n in names if n.endswith("_quarantine")}
    picture = catalog_picture(path, leave_out=ours)
    # documents_view is V3's own view (the baseline creates it), posts_with_authors
    # head's (v4j): they read the schema's tables
    schema_views = {"documents_view", "posts_with_authors"}
    picture["views"] = [v for v in picture["views"] if v[0] not in schema_views]
    for view in schema_views:
        picture["view_results"].pop(view, None)
    picture["columns"] = [c for c in picture["columns"] if c[0] not in schema_views]
    return picture


def stored_v3(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        found = dict(con.execute("SELECT table_name, sql FROM duckdb_tables()").fetchall())
    finally:
        con.close()
    return {t: found[t] for t in V3_TABLES}


def legacy_v3() -> dict[str, str]:
    con = duckdb.connect()
    legacy.create(con, view=False)
    return dict(con.execute("SELECT table_name, sql FROM duckdb_tables()").fetchall())


def assert_nothing_lost(path: Path, before: dict[str, int]) -> None:
    """Every row of every V3 table is in the table or in its quarantine table."""
    after = counts(path, (*V3_TABLES, *(f"{t}_quarantine" for t in V3_TABLES)))
    for table, n in before.items():
        assert after[table] + after.get(f"{table}_quarantine", 0) == n, table


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_corpus_ddl_is_what_duckdb_stores(name: str, built: dict[str, Path]) -> None:
    """The corpus replays the application's stored DDL exactly (captured on DuckDB 1.4.3)."""
    variant = VARIANTS[name]
    con = duckdb.connect(str(built[name]), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT sql FROM duckdb_tables()").fetchall()]
        indexes = con.execute("SELECT sql FROM duckdb_indexes() WHERE sql IS NOT NULL").fetchall()
        views = con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
        sequences = con.execute("SELECT sql FROM duckdb_sequences()").fetchall()
    finally:
        con.close()

    def same(stored: list[Any], kind: str) -> None:
        got = sorted(str(s[0] if isinstance(s, tuple) else s).rstrip(";") for s in stored)
        assert got == sorted(variant.statements(kind)), kind

    same(tables, "TABLE")
    same(indexes, "INDEX")
    same(views, "VIEW")
    # a sequence's stored text says where it stands (START 3 after two nextval)
    started = [(re.sub(r" START \d+ ", " START 1 ", str(s[0])),) for s in sequences]
    same(started, "SEQUENCE")
    assert len(variant.commit) == 9


@pytest.mark.parametrize("name", list(VARIANTS))
def test_alembic_current_says_what_an_unadopted_file_is(
    name: str, field_file: Callable[[str], Path], capfd: pytest.CaptureFixture[str]
) -> None:
    variant = VARIANTS[name]
    path = field_file(name)
    before = file_sha256(path)
    command.current(alembic_cfg(f"duckdb:///{path}", **variant.needs))
    said = capfd.readouterr().out
    assert said.startswith("No alembic_version:"), said
    if variant.never:
        assert "would refuse to adopt" in said and str(variant.refusal) in said
    else:
        assert "`alembic upgrade head` will adopt it (stamp it at v3)" in said, said
        for words in variant.says:
            assert words in said, (words, said)
    if variant.needs:  # without the option: it says why it would refuse, and what to ask
        command.current(alembic_cfg(f"duckdb:///{path}"))
        said = capfd.readouterr().out
        assert "would refuse to adopt" in said and str(variant.refusal) in said
    assert file_sha256(path) == before
    assert "alembic_version" not in table_names(path)


@pytest.mark.parametrize("name", [n for n, v in VARIANTS.items() if v.refusal])
def test_a_file_that_cant_be_taken_forward_is_refused_unchanged(
    name: str, field_file: Callable[[str], Path]
) -> None:
    path = field_file(name)
    before = file_sha256(path)
    for mode in ("fail", "quarantine"):
        with pytest.raises(AdoptionRefused) as refused:
            command.upgrade(alembic_cfg(f"duckdb:///{path}", on_violation=mode), "head")
        message = str(refused.value)
        assert str(VARIANTS[name].refusal) in message
        assert "Nothing was changed" in message and "by hand" not in message
        assert "\n" not in message  # one paragraph
    assert file_sha256(path) == before


@pytest.mark.parametrize("name", ADOPTED)
def test_a_field_file_is_adopted_and_reaches_head_losing_nothing(
    name: str, field_file: Callable[[str], Path]
) -> None:
    variant = VARIANTS[name]
    path = field_file(name)
    url = f"duckdb:///{path}"
    before, others, sha = counts(path), other_stores(path), file_sha256(path)

    with pytest.raises(ConstraintViolations):  # messy rows: refused, naming them
        command.upgrade(alembic_cfg(url, **variant.needs), "head")
    assert file_sha256(path) == sha

    command.upgrade(alembic_cfg(url, on_violation="quarantine", **variant.needs), "head")
    assert_nothing_lost(path, before)
    kept = counts(path)
    command.check(alembic_cfg(url))
    assert other_stores(path) == others

    command.downgrade(alembic_cfg(url), "v3")
    assert stored_v3(path) == legacy_v3()  # V3's six tables, exactly
    assert counts(path) == kept
    assert other_stores(path) == others

    command.upgrade(alembic_cfg(url, on_violation="quarantine"), "head")
    assert counts(path) == kept
    assert_nothing_lost(path, before)
    assert other_stores(path) == others


def test_the_application_s_index_survives_and_is_never_drift(
    field_file: Callable[[str], Path],
) -> None:
    path = field_file("dec2025_startup")
    url = f"duckdb:///{path}"
    command.upgrade(alembic_cfg(url, on_violation="quarantine"), "head")
    index = "SELECT sql FROM duckdb_indexes() WHERE index_name = 'idx_annotations_parent_created'"
    assert rows(path, index) == [
        (
            "CREATE INDEX idx_annotations_parent_created ON annotations(parent_id, parent_type, "
            "created_at);",
        )
    ]
    command.check(alembic_cfg(url))  # no drift: not the schema's index
    # and autogenerate proposes nothing (no revision written), on a copy of the history
    cfg = Config(str(copy_project(path.parent / "history")))
    cfg.cmd_opts = argparse.Namespace(x=[f"url={url}"], autogenerate=True)
    assert not command.revision(cfg, "nothing", autogenerate=True, rev_id="nothing")


def test_adoption_names_each_difference_once_in_one_line_the_dry_run_and_the_report(
    field_file: Callable[[str], Path], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    variant = VARIANTS["dec2025_startup"]
    path = field_file(variant.name)
    url = f"duckdb:///{path}"
    sha = file_sha256(path)
    report_path = tmp_path / "report.json"
    capfd.readouterr()
    command.upgrade(
        alembic_cfg(url, dry_run="true", on_violation="quarantine", report=str(report_path)),
        "head",
    )
    out, err = capfd.readouterr()
    assert file_sha256(path) == sha
    lines = [line for line in err.splitlines() if "taken forward" in line]
    assert len(lines) == 1, err
    adopted = json.loads(report_path.read_text())["adopted"]
    assert len(adopted) == 8
    assert "taking forward 8 differences from V3:" in out  # the dry run's own report
    for words in variant.says:
        assert sum(words in item for item in adopted) == 1, words
        assert lines[0].count(words) == 1, words
        assert out.count(words) == 1, words
    assert all(item in lines[0] for item in adopted)


def _cli(*args: str, seed: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EGREGORA_DATABASE_URL"}
    env["PYTHONHASHSEED"] = seed
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_words_are_the_same_whatever_the_hash_seed(field_file: Callable[[str], Path]) -> None:
    """Same file, same words in the same order: differences never come out of a set."""
    adoptable = field_file("dec2025_startup")
    refused = field_file("ibis_timestamp_startup")
    con = duckdb.connect(str(refused))  # several refusals, in several tables
    con.execute("ALTER TABLE posts ADD COLUMN mood VARCHAR; UPDATE posts SET mood = 'ok'")
    con.execute("ALTER TABLE tasks ADD COLUMN score INTEGER; UPDATE tasks SET score = 1")
    con.close()
    said = set()
    for seed in ("1", "2", "3"):
        current = _cli("-x", f"url=duckdb:///{adoptable}", "current", seed=seed)
        upgrade = _cli("-x", f"url=duckdb:///{refused}", "upgrade", "head", seed=seed)
        assert current.returncode == 0 and upgrade.returncode != 0
        said.add((current.stdout, upgrade.stdout))
    assert len(said) == 1
    ((current_text, refusal),) = said
    assert refusal.count("FAILED:") == 1
    assert refusal.index("posts.mood") < refusal.index("tasks.score")
    assert "taking forward 8 differences" in current_text
