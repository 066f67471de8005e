"""Rehearsing a deploy: dry runs and their report, progress on a terminal, the ER document."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from alembic import command
from egregora.database import erd

from . import legacy
from .conftest import (
    ALEMBIC_INI,
    ROOT,
    V4,
    alembic_cfg,
    database_digest,
    file_sha256,
    run_cli,
)
from .copy_swap_helpers import rows


def _messy_v3(path: Path) -> None:
    con = duckdb.connect(str(path))
    legacy.create(con)
    con.execute(
        "INSERT INTO profiles (id, title, created_at) VALUES ('a', 'Ana', now()), ('b', '', now())"
    )
    con.execute(
        "INSERT INTO posts (id, title, status, created_at, authors) VALUES "
        "('p1', 'T', 'draft', now(), ['a', 'ghost']), ('p2', 'U', 'published', now(), [])"
    )
    con.execute(
        "INSERT INTO journals (id, created_at, window_start, window_end) VALUES "
        "('j1', now(), now(), now() - INTERVAL 1 DAY), ('j2', now(), now(), now())"
    )
    con.close()


def test_dry_run_changes_nothing_and_predicts_the_real_run(tmp_path: Path) -> None:
    path = tmp_path / "egregora.duckdb"
    _messy_v3(path)
    before_bytes, before = file_sha256(path), database_digest(path)
    report_path = tmp_path / "report.json"
    url = f"url=duckdb:///{path}"
    dry = run_cli(
        "-x",
        url,
        "-x",
        "dry_run=true",
        "-x",
        "on_violation=quarantine",
        "-x",
        f"report={report_path}",
        "upgrade",
        V4,  # V4's rules on V4's messy data: a later revision may quarantine more
        cwd=tmp_path,
    )
    assert dry.returncode == 0, dry.stderr
    assert "Dry run (rolled back, nothing was changed)" in dry.stdout
    assert file_sha256(path) == before_bytes
    assert database_digest(path) == before
    report = json.loads(report_path.read_text())
    assert report["dry_run"] is True
    predicted = {(t["revision"], t["table"]): t["rows_quarantined"] for t in report["tables"]}
    assert predicted[("v4a upgrade", "journals")] == 1
    assert predicted[("v4b upgrade", "profiles")] == 1
    assert predicted[("v4e upgrade", "post_authors")] == 1
    assert report["totals"]["rows_quarantined"] == sum(predicted.values())
    samples = {
        (t["table"], v["name"]): v["samples"] for t in report["tables"] for v in t["violations"]
    }
    assert samples[("journals", "chk_journals_window_order")] == [["j1"]]
    # the real run does what the dry run said
    real = run_cli("-x", url, "-x", "on_violation=quarantine", "upgrade", V4, cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    assert rows(path, "SELECT id FROM journals_quarantine") == [("j1",)]
    assert rows(path, "SELECT id FROM profiles_quarantine") == [("b",)]
    assert rows(path, "SELECT post_id, profile_id FROM post_authors_quarantine") == [
        ("p1", "ghost")
    ]


def test_dry_run_in_fail_mode_lists_what_the_real_run_would_refuse(tmp_path: Path) -> None:
    """And exits non-zero, as `alembic check` does: a CI step that rehearses a deploy fails."""
    path = tmp_path / "egregora.duckdb"
    _messy_v3(path)
    before_bytes = file_sha256(path)
    report_path = tmp_path / "report.json"
    dry = run_cli(
        *("-x", f"url=duckdb:///{path}", "-x", "dry_run=true", "-x", f"report={report_path}"),
        *("upgrade", "head"),
        cwd=tmp_path,
    )
    assert dry.returncode != 0, dry.stdout
    # the report, in full, then one paragraph saying why the command failed
    assert "Dry run (rolled back, nothing was changed), on_violation=fail:" in dry.stdout
    assert "  total: " in dry.stdout and "the real run would be refused" in dry.stdout
    assert "chk_journals_window_order" in dry.stdout and "[revision v4a upgrade]" in dry.stdout
    output = dry.stdout + dry.stderr
    assert "FAILED: The dry run found rows" in output and "Traceback" not in output
    assert json.loads(report_path.read_text())["refused"]  # the JSON copy is written too
    assert file_sha256(path) == before_bytes


def test_a_clean_dry_run_exits_zero(tmp_path: Path) -> None:
    """Fail mode, no violating row: the real run would complete, and so does the command."""
    path = tmp_path / "egregora.duckdb"
    con = duckdb.connect(str(path))
    legacy.create(con)
    con.execute("INSERT INTO profiles (id, title, created_at) VALUES ('a', 'Ana', now())")
    con.close()
    before_bytes = file_sha256(path)
    dry = run_cli(
        "-x", f"url=duckdb:///{path}", "-x", "dry_run=true", "upgrade", "head", cwd=tmp_path
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Dry run (rolled back, nothing was changed)" in dry.stdout
    assert "would be refused" not in dry.stdout and "FAILED" not in dry.stdout + dry.stderr
    assert file_sha256(path) == before_bytes


def _big_table(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE big AS SELECT i::VARCHAR AS id, md5(i::VARCHAR) AS body "
        "FROM range(3000000) AS r(i)"
    )
    con.close()


_REVISION = '''
"""big: CHECK"""
import sqlalchemy as sa
from alembic import op
import egregora.database.migrations  # noqa: F401
revision = "big1"
down_revision = None
branch_labels = depends_on = None
def upgrade():
    op.create_copy_swap(sa.Table("big", sa.MetaData(), sa.Column("id", sa.String()),
        sa.Column("body", sa.String()), sa.CheckConstraint("length(body) = 32")))
def downgrade():
    pass
'''


def _project(tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "alembic"
    shutil.copytree(
        ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__", "versions")
    )
    (folder / "versions").mkdir()
    (folder / "versions" / "big1.py").write_text(_REVISION)
    ini = tmp_path / "alembic.ini"
    ini.write_text(ALEMBIC_INI.read_text().replace("%(here)s/alembic", str(folder)))
    return ini


def test_progress_shows_on_a_terminal_and_not_in_a_pipe(tmp_path: Path) -> None:
    ini = _project(tmp_path)
    args = [sys.executable, "-m", "alembic", "-c", str(ini), "-x", "progress_after_ms=0"]
    for name in ("tty", "pipe"):
        path = tmp_path / f"{name}.duckdb"
        _big_table(path)
        command = [*args, "-x", f"url=duckdb:///{path}", "upgrade", "head"]
        env = {k: v for k, v in os.environ.items() if k != "EGREGORA_DATABASE_URL"}
        if name == "pipe":
            out = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            assert "%" not in out.stdout and "\u2595" not in out.stdout
            continue
        main, child = pty.openpty()
        proc = subprocess.Popen(command, stdout=child, stderr=subprocess.DEVNULL, env=env)
        os.close(child)
        seen = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=60)
        os.close(main)
        assert proc.returncode == 0
        assert b"%" in seen and "\u2595".encode() in seen  # DuckDB's bar


def test_schema_document_is_current() -> None:
    assert (ROOT / "docs" / "schema.md").read_text() == erd.render(), (
        "docs/schema.md is out of date: run python -m egregora.database.erd"
    )
    text = erd.render()
    assert "post_authors {" in text and "posts ||--o{ post_authors" not in text
    assert 'posts ||--|{ post_authors : "post_id"' in text
    assert "`chk_journals_window_order`: CHECK (window_end >= window_start)" in text


def test_report_counts_match_the_quarantine_tables_on_messy_data(tmp_path: Path) -> None:
    """Rows a revision quarantines by its own SQL (v4e's post pairs) count as well."""
    from .messy import build_v3

    path = tmp_path / "messy.duckdb"
    build_v3(path, n=200)
    report_path = tmp_path / "report.json"
    command.upgrade(
        alembic_cfg(f"duckdb:///{path}", on_violation="quarantine", report=str(report_path)),
        "head",
    )
    report = json.loads(report_path.read_text())
    held = {
        name: count
        for (name,) in rows(path, "SELECT table_name FROM duckdb_tables()")
        if name.endswith("_quarantine")
        for ((count,),) in [rows(path, f'SELECT count(*) FROM "{name}"')]
    }
    assert report["totals"]["rows_quarantined"] == sum(held.values())
    moved: dict[str, int] = {}
    for revision in report["revisions"]:
        for table, count in revision["quarantined"].items():
            moved[table] = moved.get(table, 0) + count
    assert moved == {t: n for t, n in held.items() if n}
    assert held["post_authors_quarantine"] > sum(
        t["rows_quarantined"] for t in report["tables"] if t["table"] == "post_authors"
    )  # the pairs of quarantined posts: moved by v4e's own SQL, counted all the same
