"""A run's rebuilds of one table, written once (held.py): against revisions run one by one.

A scratch history of plain Alembic revisions, each a create_copy_swap of the
same tables (a CHECK, a type conversion with a new column, a rename with a
PRIMARY KEY; a parent table and a FOREIGN KEY onto it), run on rows that
break every stage. The same revisions run one ``alembic upgrade`` at a time
(no fusion possible across runs) are the reference: the fused run must leave
exactly the same tables, the same quarantined rows with the same revision
tags, and say so in its report, while writing each table once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from egregora.database.migration.catalog import snapshot
from tests.conftest import copy_project, database_digest, file_sha256, run_cli

pytestmark = pytest.mark.e2e  # whole fused runs against revisions run one by one

HEADER = """
import sqlalchemy as sa
from alembic import op
import egregora.database.migrations  # noqa: F401
revision = "{revision}"
down_revision = {down!r}
branch_labels = depends_on = None


def items(*extra, qty=sa.String(), note="note", kind=False):
    return sa.Table("items", sa.MetaData(), sa.Column("id", sa.String()),
        sa.Column("qty", qty), sa.Column(note, sa.String()), sa.Column("owner_id", sa.String()),
        *([sa.Column("kind", sa.String(), server_default="std")] if kind else []), *extra)


def owners(*extra):
    return sa.Table("owners", sa.MetaData(), sa.Column("id", sa.String()),
        sa.Column("name", sa.String()), *extra)
"""

REVISIONS = {
    "r0": """
def upgrade():
    op.create_table("owners", sa.Column("id", sa.String()), sa.Column("name", sa.String()))
    op.create_table("items", sa.Column("id", sa.String()), sa.Column("qty", sa.String()),
        sa.Column("note", sa.String()), sa.Column("owner_id", sa.String()))

def downgrade():
    op.drop_table("items")
    op.drop_table("owners")
""",
    "r1": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note")),
        previous=items())
    op.create_copy_swap(owners(sa.PrimaryKeyConstraint("id", name="pk_owners"),
        sa.CheckConstraint("name <> 'gone'", name="ck_name")), previous=owners())

def downgrade():
    op.create_copy_swap(owners(), previous=owners(sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("name <> 'gone'", name="ck_name")))
    op.create_copy_swap(items(), previous=items(sa.CheckConstraint("length(note) > 0")))
""",
    "r2": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note"),
        qty=sa.Integer(), kind=True),
        previous=items(sa.CheckConstraint("length(note) > 0", name="ck_note")))

def downgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note")),
        previous=items(sa.CheckConstraint("length(note) > 0", name="ck_note"),
        qty=sa.Integer(), kind=True))
""",
    "r3": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(label) > 0", name="ck_note"),
        sa.CheckConstraint("qty >= 0", name="ck_qty"),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_items_owner"),
        qty=sa.Integer(), note="label", kind=True),
        previous=items(sa.CheckConstraint("length(note) > 0", name="ck_note"),
        qty=sa.Integer(), kind=True), column_map={"label": sa.column("note")},
        reverse_column_map={"note": sa.column("label")})

def downgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note"),
        qty=sa.Integer(), kind=True),
        previous=items(sa.CheckConstraint("length(label) > 0", name="ck_note"),
        sa.CheckConstraint("qty >= 0", name="ck_qty"),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
        sa.ForeignKeyConstraint(["owner_id"], ["owners.id"], name="fk_items_owner"),
        qty=sa.Integer(), note="label", kind=True), column_map={"note": sa.column("label")})
""",
}
CHAIN = ["r0", "r1", "r2", "r3"]

#: rows that break r1 (b: empty note; o2: owner 'gone'), r2 (c: qty 'x'), r3 (the
#: second a: duplicate key; d: qty < 0; f: its owner o2 was quarantined by r1)
OWNERS = [("o1", "ann"), ("o2", "gone")]
ITEMS = [
    ("a", "1", "ok", "o1"),
    ("b", "2", "", "o1"),
    ("c", "x", "fine", "o1"),
    ("d", "-5", "neg", "o1"),
    ("a", "3", "dup", "o1"),
    ("e", "4", None, "o1"),
    ("f", "6", "orphan", "o2"),
]


def project(tmp_path: Path, revisions: dict[str, str] = REVISIONS) -> Path:
    ini = copy_project(tmp_path, versions=False)
    versions = tmp_path / "alembic" / "versions"
    down = None
    for name, body in revisions.items():
        header = HEADER.format(revision=name, down=down)
        (versions / f"{name}.py").write_text(header + body)
        down = name
    return ini


def alembic(ini: Path, path: Path, *args: str, **x: str) -> Any:
    options = [a for k, v in {"url": f"duckdb:///{path}", **x}.items() for a in ("-x", f"{k}={v}")]
    return run_cli(*options, *args, cwd=ini.parent, ini=ini)


def seeded(ini: Path, path: Path, owners: Any = OWNERS, items: Any = ITEMS) -> Path:
    done = alembic(ini, path, "upgrade", "r0")
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(path)) as con:
        con.executemany("INSERT INTO owners VALUES (?, ?)", owners)
        con.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", items)
    return path


def picture(path: Path) -> dict[str, Any]:
    """Every table's shape (columns, types, defaults, constraints) and rows.

    Shapes, not DDL text: a table whose key DuckDB added by ALTER lists it
    after its CHECKs, one created with it before. Quarantine rows are
    compared without their timestamp.
    """
    with duckdb.connect(str(path), read_only=True) as con:
        tables = snapshot(con)
        rows = {}
        for name in tables:
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                    "ORDER BY column_index",
                    [name],
                ).fetchall()
                if c != "_quarantined_at"
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            rows[name] = sorted(con.execute(f'SELECT {listed} FROM "{name}"').fetchall(), key=repr)
    return {"tables": tables, "rows": rows}


def tags(path: Path, table: str) -> set[tuple[str, str]]:
    """(id, revision tag) of the rows in ``<table>_quarantine``."""
    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute(f"SELECT id, _quarantine_revision FROM {table}_quarantine").fetchall()
    return {(str(i), str(tag)) for i, tag in found}


def copies(stderr: str) -> list[str]:
    """The tables the run wrote, as its log says (one line per rebuild written)."""
    return re.findall(r"create_copy_swap (\w+): \d+ rows? copied", stderr)


@pytest.fixture
def fused_and_stepwise(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    ini = project(tmp_path)
    fused = seeded(ini, tmp_path / "fused.duckdb")
    stepwise = seeded(ini, tmp_path / "stepwise.duckdb")
    report = tmp_path / "report.json"
    done = alembic(ini, fused, "upgrade", "head", on_violation="quarantine", report=str(report))
    assert done.returncode == 0, done.stderr
    for revision in CHAIN[1:]:
        step = alembic(ini, stepwise, "upgrade", revision, on_violation="quarantine")
        assert step.returncode == 0, step.stderr
    return fused, stepwise, report, done.stderr


def test_a_run_writes_each_table_once_and_leaves_what_revisions_one_by_one_leave(
    fused_and_stepwise: tuple[Path, Path, Path, str],
) -> None:
    fused, stepwise, _, stderr = fused_and_stepwise
    assert sorted(copies(stderr)) == ["items", "owners"]  # items: three revisions, one copy
    assert picture(fused) == picture(stepwise)
    kept = picture(fused)["rows"]["items"]
    assert [row[0] for row in kept] == ["a", "e"]  # e: a NULL note passes the CHECK
    assert tags(fused, "items") == {
        ("b", "r1 upgrade"),
        ("c", "r2 upgrade"),
        ("a", "r3 upgrade"),
        ("d", "r3 upgrade"),
        ("f", "r3 upgrade"),
    }


def test_without_fusion_each_operation_writes_and_the_result_is_the_same(
    fused_and_stepwise: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    fused, _, _, _ = fused_and_stepwise
    ini = fused.parent / "alembic.ini"
    path = seeded(ini, tmp_path / "unfused.duckdb")
    done = alembic(ini, path, "upgrade", "head", on_violation="quarantine", fuse="false")
    assert done.returncode == 0, done.stderr
    # owners twice: its key, added by ALTER in r1, is re-keyed before r3's FOREIGN KEY
    assert sorted(copies(done.stderr)) == ["items", "items", "items", "owners", "owners"]
    assert picture(path) == picture(fused)


def test_the_report_gives_each_revision_its_own_rows(
    fused_and_stepwise: tuple[Path, Path, Path, str],
) -> None:
    _, _, report_path, _ = fused_and_stepwise
    report = json.loads(report_path.read_text())
    moved = {r["revision"]: r["quarantined"] for r in report["revisions"]}
    assert moved == {
        "r1": {"items_quarantine": 1, "owners_quarantine": 1},
        "r2": {"items_quarantine": 1},
        "r3": {"items_quarantine": 3},
    }
    per_stage = {(t["revision"], t["table"]): t["rows_quarantined"] for t in report["tables"]}
    assert per_stage == {
        ("r1 upgrade", "items"): 1,
        ("r1 upgrade", "owners"): 1,
        ("r2 upgrade", "items"): 1,
        ("r3 upgrade", "items"): 3,
    }
    assert report["totals"]["rows_quarantined"] == 6
    assert report["rebuild_seconds"] > 0


def test_the_report_counts_the_indexes_a_fused_write_builds(
    fused_and_stepwise: tuple[Path, Path, Path, str], tmp_path: Path
) -> None:
    """Issue 25, item 3: keys declared in a fused write's CREATE TABLE are indexes built.

    Fused, items is written once (r3) with its PRIMARY KEY, owners once (r1)
    with its own: one index each. Before, the fused report said 0 for both,
    while the run without fusion said 1 for each write.
    """
    _, _, report_path, _ = fused_and_stepwise
    fused = json.loads(report_path.read_text())
    built = {t["table"]: 0 for t in fused["tables"]}
    for t in fused["tables"]:
        built[t["table"]] += t["indexes_built"]
    assert built == {"items": 1, "owners": 1}
    ini = report_path.parent / "alembic.ini"
    path, unfused = seeded(ini, tmp_path / "unfused.duckdb"), tmp_path / "unfused.json"
    done = alembic(
        ini, path, "upgrade", "head", on_violation="quarantine", fuse="false", report=str(unfused)
    )
    assert done.returncode == 0, done.stderr
    stepwise = json.loads(unfused.read_text())["tables"]
    # without fusion each write of a keyed table builds its key: the same counts
    last = {t["table"]: t["indexes_built"] for t in stepwise if t["rows_copied"]}
    assert last == built


def test_downgrade_after_a_fused_upgrade_matches_one_by_one(
    fused_and_stepwise: tuple[Path, Path, Path, str],
) -> None:
    fused, stepwise, _, _ = fused_and_stepwise
    ini = fused.parent / "alembic.ini"
    assert alembic(ini, fused, "downgrade", "r0").returncode == 0
    for revision in reversed(CHAIN[:-1]):
        assert alembic(ini, stepwise, "downgrade", revision).returncode == 0
    assert picture(fused) == picture(stepwise)
    assert [row[0] for row in picture(fused)["rows"]["items"]] == ["a", "e"]


def test_a_refused_run_scans_writes_no_copy_and_names_every_revision(tmp_path: Path) -> None:
    ini = project(tmp_path)
    path = seeded(ini, tmp_path / "refused.duckdb")
    before = file_sha256(path)
    done = alembic(ini, path, "upgrade", "head")
    assert done.returncode != 0
    assert copies(done.stderr) == []
    assert "Traceback" not in done.stderr
    assert file_sha256(path) == before
    found = re.findall(r"- (.+?) on (\w+) \(.*\[revision (r\d) upgrade\]", done.stdout)
    assert found == [
        ("CHECK ck_note", "items", "r1"),
        ("CHECK ck_name", "owners", "r1"),
        ("conversion qty", "items", "r2"),
        ("CHECK ck_qty", "items", "r3"),
        ("FOREIGN KEY fk_items_owner", "items", "r3"),
        ("PRIMARY KEY pk_items", "items", "r3"),
    ]


def test_a_dry_run_predicts_the_fused_run(tmp_path: Path) -> None:
    ini = project(tmp_path)
    path = seeded(ini, tmp_path / "dry.duckdb")
    before = database_digest(path)
    report_path = tmp_path / "dry.json"
    dry = alembic(
        ini,
        path,
        "upgrade",
        "head",
        dry_run="true",
        on_violation="quarantine",
        report=str(report_path),
    )
    assert dry.returncode == 0, dry.stderr
    assert database_digest(path) == before
    predicted = json.loads(report_path.read_text())["revisions"]
    real_report = tmp_path / "real.json"
    real = alembic(ini, path, "upgrade", "head", on_violation="quarantine", report=str(real_report))
    assert real.returncode == 0, real.stderr
    assert [r["quarantined"] for r in predicted] == [
        r["quarantined"] for r in json.loads(real_report.read_text())["revisions"]
    ]


BARRIER = {
    "r0": REVISIONS["r0"],
    "r1": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note")),
        previous=items())

def downgrade():
    pass
""",
    "r2": """
def upgrade():
    op.execute("UPDATE items SET note = note || note")  # a data migration: must see r1's work

def downgrade():
    pass
""",
    "r3": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note"),
        sa.CheckConstraint("length(note) < 7", name="ck_short")),
        previous=items(sa.CheckConstraint("length(note) > 0", name="ck_note")))

def downgrade():
    pass
""",
}


@pytest.mark.parametrize("through", ["op.execute", "op.get_bind"])
def test_a_data_migration_between_two_rebuilds_sees_the_first_and_is_seen_by_the_second(
    tmp_path: Path, through: str
) -> None:
    revisions = dict(BARRIER)
    if through == "op.get_bind":
        revisions["r2"] = revisions["r2"].replace(
            'op.execute("UPDATE items SET note = note || note")',
            'op.get_bind().execute(sa.text("UPDATE items SET note = note || note"))',
        )
    ini = project(tmp_path, revisions)
    path = seeded(ini, tmp_path / "barrier.duckdb")
    done = alembic(ini, path, "upgrade", "head", on_violation="quarantine")
    assert done.returncode == 0, done.stderr
    assert copies(done.stderr) == ["items", "items"]  # the UPDATE stands between them
    rows = picture(path)["rows"]
    # r1 quarantined b ('' note) before the UPDATE doubled every note; r3 judged the
    # doubled notes: 'okok', 'negneg', 'dupdup' (and e's NULL) are short enough,
    # 'finefine' and 'orphanorphan' are not
    assert sorted(str(r[2]) for r in rows["items"]) == ["None", "dupdup", "negneg", "okok"]
    assert tags(path, "items") == {("b", "r1 upgrade"), ("c", "r3 upgrade"), ("f", "r3 upgrade")}
    with duckdb.connect(str(path), read_only=True) as con:
        moved = con.execute("SELECT note FROM items_quarantine WHERE id = 'c'").fetchall()
    assert moved == [("finefine",)]  # quarantined as the UPDATE left it


def test_a_rebuild_of_a_parent_is_not_fused_past_a_child_judged_against_it(
    tmp_path: Path,
) -> None:
    """items (r3) is judged against owners as r1 left them, then owners changes again."""
    revisions = dict(REVISIONS)
    revisions["r4"] = """
def upgrade():
    op.create_copy_swap(owners(sa.PrimaryKeyConstraint("id", name="pk_owners"),
        sa.CheckConstraint("name <> 'gone'", name="ck_name"),
        sa.CheckConstraint("length(name) > 3", name="ck_long")),
        previous=owners(sa.PrimaryKeyConstraint("id", name="pk_owners"),
        sa.CheckConstraint("name <> 'gone'", name="ck_name")))

def downgrade():
    pass
"""
    ini = project(tmp_path, revisions)
    fused = seeded(ini, tmp_path / "fused.duckdb")
    stepwise = seeded(ini, tmp_path / "stepwise.duckdb")
    done = alembic(ini, fused, "upgrade", "head", on_violation="quarantine")
    assert done.returncode == 0, done.stderr
    for revision in ["r1", "r2", "r3", "r4"]:
        assert (
            alembic(ini, stepwise, "upgrade", revision, on_violation="quarantine").returncode == 0
        )
    assert picture(fused) == picture(stepwise)
    # o1 ('ann') fails r4's CHECK: the items that reference it follow it, as r4's
    assert ("a", "r4 upgrade") in tags(fused, "items")


def test_a_revision_that_reads_the_catalog_sees_the_rebuilds_before_it(tmp_path: Path) -> None:
    revisions = dict(BARRIER)
    revisions["r2"] = """
def upgrade():
    names = sa.inspect(op.get_bind()).get_table_names()
    op.execute(f"CREATE TABLE seen AS SELECT {int('items_quarantine' in names)} AS quarantined")

def downgrade():
    pass
"""
    ini = project(tmp_path, revisions)
    path = seeded(ini, tmp_path / "catalog.duckdb")
    done = alembic(ini, path, "upgrade", "head", on_violation="quarantine")
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT quarantined FROM seen").fetchall() == [(1,)]


def test_a_clean_fail_mode_run_reports_each_table_once(tmp_path: Path) -> None:
    """Judged first (scans), then written: the report counts each stage once."""
    revisions = dict(REVISIONS)
    ini = project(tmp_path, revisions)
    clean_items = [("a", "1", "ok", "o1"), ("e", "4", None, "o1"), ("g", "7", "x", None)]
    reports = {}
    for fuse in ("true", "false"):
        path = seeded(ini, tmp_path / f"{fuse}.duckdb", OWNERS[:1], clean_items)
        report = tmp_path / f"{fuse}.json"
        done = alembic(ini, path, "upgrade", "head", fuse=fuse, report=str(report))
        assert done.returncode == 0, done.stderr
        reports[fuse] = json.loads(report.read_text())
    for report in reports.values():
        keys = [(t["revision"], t["table"]) for t in report["tables"]]
        assert len(keys) == len(set(keys)), keys
    fused, unfused = reports["true"], reports["false"]
    assert {(t["revision"], t["table"], t["rows_quarantined"]) for t in fused["tables"]} == {
        (t["revision"], t["table"], t["rows_quarantined"]) for t in unfused["tables"]
    }
    assert fused["destroyed"] == unfused["destroyed"]


def test_the_real_history_refused_writes_no_copy_and_says_what_one_by_one_says(
    tmp_path: Path,
) -> None:
    """V3 to head on messy data, fail mode: the same refusal, from scans alone."""
    from tests.messy import build_v3

    said = {}
    for fuse in ("true", "false"):
        path = tmp_path / f"{fuse}.duckdb"
        build_v3(path, n=200)
        before = file_sha256(path)
        url = f"url=duckdb:///{path}"
        done = run_cli("-x", url, "-x", f"fuse={fuse}", "upgrade", "head", cwd=tmp_path)
        assert done.returncode != 0 and "Refused:" in done.stdout, done.stderr
        assert file_sha256(path) == before
        said[fuse] = (done.stdout, copies(done.stderr))
    assert said["true"][0] == said["false"][0]
    assert said["true"][1] == [] and said["false"][1] != []


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_a_database_error_in_a_held_rebuild_is_one_paragraph(tmp_path: Path, mode: str) -> None:
    """Found trying it as a user: raised at the end of the run, it was a traceback."""
    revisions = {
        "r0": REVISIONS["r0"],
        "r1": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note")),
        previous=items(), column_map={"note": "upper(nte)"})

def downgrade():
    pass
""",
    }
    ini = project(tmp_path, revisions)
    path = seeded(ini, tmp_path / "typo.duckdb")
    before = file_sha256(path)
    done = alembic(ini, path, "upgrade", "head", on_violation=mode)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    said = done.stdout + done.stderr
    assert "FAILED: create_copy_swap on items (from r1 upgrade) failed:" in said
    assert '"nte"' in said and "rolled back" in said
    assert file_sha256(path) == before


@pytest.mark.parametrize("reader", ["view", "macro"])
def test_a_statement_that_reads_a_held_table_through_a_view_or_macro_sees_it_written(
    tmp_path: Path, reader: str
) -> None:
    """Found trying it as a user: through Egregora's documents_view, journals read stale."""
    read = "(SELECT count(*) FROM item_notes)" if reader == "view" else "item_count()"
    revisions = dict(BARRIER)
    revisions["r2"] = f"""
def upgrade():
    op.execute("CREATE TABLE seen AS SELECT {read} AS n")

def downgrade():
    pass
"""
    ini = project(tmp_path, revisions)
    path = seeded(ini, tmp_path / "readers.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE VIEW item_notes AS SELECT id, note FROM items")
        # the macro reads items through the view: two steps from the statement
        con.execute("CREATE MACRO item_count() AS (SELECT count(*) FROM item_notes)")
    done = alembic(ini, path, "upgrade", "head", on_violation="quarantine")
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(path), read_only=True) as con:
        # r1 quarantined b (an empty note) before r2 counted: 6 of the 7 rows
        assert con.execute("SELECT n FROM seen").fetchall() == [(6,)]


def test_a_refused_dry_run_reports_what_one_without_fusion_reports(tmp_path: Path) -> None:
    """Messy V3 data, fail mode, dry run: per revision, the same rows counted once."""
    from tests.messy import build_v3

    reports = {}
    for fuse in ("true", "false"):
        path = tmp_path / f"{fuse}.duckdb"
        build_v3(path, n=200)
        report = tmp_path / f"{fuse}.json"
        done = run_cli(
            *("-x", f"url=duckdb:///{path}", "-x", f"fuse={fuse}", "-x", "dry_run=true"),
            *("-x", f"report={report}", "upgrade", "head"),
            cwd=tmp_path,
        )
        assert done.returncode != 0 and "would be refused" in done.stdout, done.stderr
        reports[fuse] = json.loads(report.read_text())
    fused, unfused = reports["true"], reports["false"]
    assert [r["quarantined"] for r in fused["revisions"]] == [
        r["quarantined"] for r in unfused["revisions"]
    ]
    assert fused["refused"] == unfused["refused"]
    assert sorted(map(repr, fused["destroyed"])) == sorted(map(repr, unfused["destroyed"]))
    assert fused["totals"]["rows_quarantined"] == unfused["totals"]["rows_quarantined"]


def test_a_refused_run_reports_a_fused_table_once_when_a_barrier_makes_it_write(
    tmp_path: Path,
) -> None:
    """items holds two stages with violations; r3's UPDATE needs it written, as if quarantined."""
    revisions = {k: REVISIONS[k] for k in ("r0", "r1", "r2")}
    revisions["r3"] = """
def upgrade():
    op.execute("UPDATE items SET note = note")

def downgrade():
    pass
"""
    ini = project(tmp_path, revisions)
    reports = {}
    for fuse in ("true", "false"):
        path = seeded(ini, tmp_path / f"{fuse}.duckdb")
        report = tmp_path / f"{fuse}.json"
        done = alembic(ini, path, "upgrade", "head", fuse=fuse, report=str(report))
        assert done.returncode != 0 and "Refused:" in done.stdout, done.stderr
        reports[fuse] = json.loads(report.read_text())
    fused, unfused = reports["true"], reports["false"]
    keys = [(t["revision"], t["table"]) for t in fused["tables"]]
    assert len(keys) == len(set(keys)), keys
    assert sorted(keys) == sorted((t["revision"], t["table"]) for t in unfused["tables"])
    assert fused["refused"] == unfused["refused"]


CHANGED_BETWEEN = {
    "r0": REVISIONS["r0"],
    "r1": """
def upgrade():
    op.create_copy_swap(items(sa.CheckConstraint("length(note) > 0", name="ck_note")),
        previous=items())
    op.execute("ALTER TABLE owners ADD COLUMN email VARCHAR")  # no barrier for items
    op.execute("UPDATE owners SET email = id || '@x'")
    op.create_copy_swap(owners(sa.Column("email", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_owners")),
        previous=owners(sa.Column("email", sa.String())))

def downgrade():
    pass
""",
}


def test_a_plain_operation_between_rebuilds_changes_what_the_next_rebuild_finds(
    tmp_path: Path,
) -> None:
    """The first rebuild read every table's definition (tablecache.py); owners then
    gained a column, which the second rebuild must find (else its previous= is refused)."""
    ini = project(tmp_path, CHANGED_BETWEEN)
    path = seeded(ini, tmp_path / "between.duckdb")
    done = alembic(ini, path, "upgrade", "head", on_violation="quarantine")
    assert done.returncode == 0, done.stderr
    owners = picture(path)["tables"]["owners"]
    assert [(c.name, c.nullable) for c in owners.columns] == [
        ("id", False),
        ("name", True),
        ("email", False),
    ]
    assert sorted(picture(path)["rows"]["owners"]) == [
        ("o1", "ann", "o1@x"),
        ("o2", "gone", "o2@x"),
    ]


VIEW_AFTER = """
import logging

def upgrade():
    op.execute("CREATE VIEW item_owners AS SELECT i.id, i.{column}, o.name "
        "FROM items AS i JOIN owners AS o ON o.id = i.owner_id")
    logging.getLogger("alembic.runtime.migration").info("view made")

def downgrade():
    op.execute("DROP VIEW item_owners")
"""


@pytest.mark.parametrize(
    ("chain", "column", "written_before_view"),
    [
        (["r0", "r1"], "note", False),  # r1 keeps every column: written at the end
        (["r0", "r1", "r2"], "qty", True),  # r2 makes qty an INTEGER: the view must see it
    ],
)
def test_a_view_over_held_tables_in_a_quarantine_run(
    tmp_path: Path, chain: list[str], column: str, written_before_view: bool
) -> None:
    """A view reads columns, not rows: over tables whose held stages keep every column
    and value it is created on them as they stand, and they are written once, at the
    end, keys after the copy; a stage that changes a column is written before it."""
    revisions = {name: REVISIONS[name] for name in chain}
    revisions["rv"] = VIEW_AFTER.format(column=column)
    ini = project(tmp_path, revisions)
    pictures, views = {}, {}
    for fuse in ("true", "false"):
        path = seeded(ini, tmp_path / f"{fuse}.duckdb")
        done = alembic(ini, path, "upgrade", "head", on_violation="quarantine", fuse=fuse)
        assert done.returncode == 0, done.stderr
        pictures[fuse] = picture(path)
        with duckdb.connect(str(path), read_only=True) as con:
            views[fuse] = con.execute("SELECT * FROM item_owners ORDER BY id").fetchall()
            types = con.execute("DESCRIBE item_owners").fetchall()
        if fuse == "true":
            log = done.stderr
            view_at = log.index("view made")
            written = [m.start() for m in re.finditer(r"create_copy_swap \w+: \d+ rows", log)]
            assert written and all((at < view_at) is written_before_view for at in written), log
            assert sorted(copies(log)) == ["items", "owners"]
    assert pictures["true"] == pictures["false"]
    assert views["true"] == views["false"] and views["true"]
    expected = "INTEGER" if column == "qty" else "VARCHAR"
    assert {name: kind for name, kind, *_ in types}[column] == expected
