"""Autogenerate on DuckDB: a table of model changes, each generated, run, checked, reversed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.config import Config

from alembic import command
from egregora.database import schemas
from egregora.database.migration.catalog import snapshot

from ...conftest import ROOT, alembic_cfg, database_digest
from ...copy_swap_helpers import rows, sql

Model = Callable[[sa.MetaData], None]


def base(meta: sa.MetaData, **change: object) -> None:
    """parents <- children: the model every case starts from, with ``change`` applied."""
    sa.Table(
        "parents",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String()),
        *([sa.Column("rank", sa.Integer())] if change.get("parent_rank") else []),
        *(
            [sa.CheckConstraint("length(name) > 0", name="name_len")]
            if change.get("parent_check")
            else []
        ),
    )
    n_type = change.get("n_type", sa.String())
    checks = {
        None: [],
        "add": [sa.CheckConstraint("n <> 'bad'", name="n_ok")],
        "change": [sa.CheckConstraint("n <> 'worse'", name="n_ok")],
    }[change.get("check")]  # type: ignore[index]
    sa.Table(
        "children",
        meta,
        sa.Column("id", sa.String(), primary_key=not change.get("no_pk")),
        sa.Column(
            "parent_id",
            sa.String(),
            *([sa.ForeignKey("parents.id")] if not change.get("drop_fk") else []),
        ),
        sa.Column(
            "other_parent",
            sa.String(),
            *(
                [sa.ForeignKey("parents.id", **change.get("fk_options", {}))]  # type: ignore[arg-type]
                if change.get("add_fk")
                else []
            ),
        ),
        *([sa.Column("label", sa.String())] if not change.get("drop_label") else []),
        sa.Column("n", n_type),  # type: ignore[arg-type]
        *(
            [sa.Column("lang", sa.String(), nullable=False, server_default="en")]
            if change.get("add_lang")
            else []
        ),
        *([sa.Column("note", sa.String())] if change.get("add_note") else []),
        *([sa.Index("ix_children_label", "label")] if change.get("label_index") else []),
        *(
            [sa.UniqueConstraint("n", name="uq_children_n")]
            if change.get("unique", "base") != "none" and change.get("unique")
            else []
        ),
        *checks,
    )


# start (before) and end (after) models, and which operation autogenerate must emit
CASES: dict[str, tuple[dict[str, object], dict[str, object], list[str], list[str]]] = {
    "add check": ({}, {"check": "add"}, ["op.create_copy_swap("], ["op.create_check_constraint"]),
    "drop check": ({"check": "add"}, {}, ["op.create_copy_swap("], []),
    "change check": ({"check": "add"}, {"check": "change"}, ["op.create_copy_swap("], []),
    "add foreign key": ({}, {"add_fk": True}, ["op.create_copy_swap("], ["op.create_foreign_key"]),
    "drop foreign key": ({}, {"drop_fk": True}, ["op.create_copy_swap("], []),
    # DuckDB 2.0's ALTER adds it, 1.4's can't: a revision runs on every supported
    # DuckDB (duckdb_versions.PORTABLE), so it is a rebuild on both
    "add not null column with default": (
        {},
        {"add_lang": True},
        ["op.create_copy_swap("],
        ["op.add_column("],
    ),
    "add a nullable column": ({}, {"add_note": True}, ["op.add_column("], ["op.create_copy_swap("]),
    "drop a column that has an index": (
        {"label_index": True},
        {"drop_label": True},
        ["op.create_copy_swap("],
        ["op.drop_column"],
    ),
    "add not null column to an indexed table": (
        {"label_index": True},
        {"label_index": True, "add_lang": True},
        ["op.create_copy_swap("],
        [],
    ),
    # changes that can trip on existing rows are always create_copy_swap, to be
    # reported, quarantined and rehearsed (tests/test_everyday_loop.py runs them)
    "add primary key": ({"no_pk": True}, {}, ["op.create_copy_swap("], ["create_primary_key"]),
    "drop primary key": ({}, {"no_pk": True}, ["op.create_copy_swap("], []),
    "create an index": ({}, {"label_index": True}, ["op.create_index("], ["op.create_copy_swap("]),
    "change a type": (
        {},
        {"n_type": sa.Integer()},
        ["op.create_copy_swap("],
        ["op.alter_column("],
    ),
    "add unique": ({}, {"unique": True}, ["op.create_copy_swap("], ["create_unique_constraint"]),
    "drop unique": ({"unique": True}, {}, ["op.create_copy_swap("], ["op.drop_constraint"]),
    "change on a referenced table": (
        {},
        {"parent_check": True},
        ["op.create_copy_swap(", "dependents=["],
        [],
    ),
    "two changes on one table": (
        {},
        {"check": "add", "add_lang": True},
        ["op.create_copy_swap("],
        ["op.add_column"],
    ),
}


def _metadata(**change: object) -> sa.MetaData:
    meta = sa.MetaData(naming_convention=schemas.NAMING_CONVENTION)
    base(meta, **change)
    return meta


def _project(tmp_path: Path) -> Path:
    """An alembic/ folder with the project's env.py and template, and no revisions."""
    folder = tmp_path / "alembic"
    shutil.copytree(
        ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__", "versions")
    )
    (folder / "versions").mkdir()
    return folder


def _cfg(folder: Path, url: str, metadata: sa.MetaData) -> Config:
    cfg = alembic_cfg(url)
    cfg.set_main_option("script_location", str(folder))
    cfg.attributes["target_metadata"] = metadata
    return cfg


def _shape(path: Path) -> dict[str, object]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        shapes = snapshot(con, ["parents", "children"])
        indexes = con.execute("SELECT index_name, sql FROM duckdb_indexes() ORDER BY 1").fetchall()
        return {"tables": shapes, "indexes": indexes}
    finally:
        con.close()


def _seed(path: Path, before: sa.MetaData) -> None:
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    before.create_all(engine)
    engine.dispose()
    sql(
        path,
        "INSERT INTO parents (id, name) VALUES ('p1', 'Ana'), ('p2', 'Bo 🎉'), ('p3', NULL)",
        "INSERT INTO children (id, parent_id, n) VALUES ('c1', 'p1', '1'), ('c2', 'p2', NULL),"
        " ('c3', NULL, '3')",
    )


@pytest.mark.parametrize("case", CASES)
def test_model_change(case: str, tmp_path: Path) -> None:
    start, end, must, must_not = CASES[case]
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    url = f"duckdb:///{path}"
    _seed(path, _metadata(**start))
    before = database_digest(path)
    before_shape = _shape(path)

    after = _metadata(**end)
    script = command.revision(_cfg(folder, url, after), "change", autogenerate=True)
    text = Path(script.path).read_text()  # type: ignore[union-attr]
    upgrade_text = text.split("def downgrade")[0]
    for needle in must:
        assert needle in upgrade_text, text
    for needle in must_not:
        assert needle not in upgrade_text, text
    assert upgrade_text.count("op.create_copy_swap(") <= 1  # one operation per table
    assert "import egregora.database.schemas" not in text  # frozen history
    assert "from egregora.database.schemas" not in text

    command.upgrade(_cfg(folder, url, after), "head")
    command.check(_cfg(folder, url, after))
    command.downgrade(_cfg(folder, url, after), "base")
    restored = database_digest(path)
    for table in ("parents", "children"):
        assert restored["tables"][table][1] == before["tables"][table][1]  # type: ignore[index]
    assert _shape(path) == before_shape  # and the schema is the one we started from


def test_no_false_differences_at_head(db_url: str, upgrade) -> None:
    upgrade("head")
    command.check(alembic_cfg(db_url))  # benchmarks/autogenerate.py measures its speed


def test_generated_revision_runs_offline_and_its_sql_runs(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    url = f"duckdb:///{path}"
    _seed(path, _metadata())
    after = _metadata(check="add", parent_check=True)
    command.revision(_cfg(folder, url, after), "checks", autogenerate=True)
    import io

    buffer = io.StringIO()
    cfg = _cfg(folder, url, after)
    cfg.output_buffer = buffer
    command.upgrade(cfg, "head", sql=True)
    script = buffer.getvalue()
    assert "CREATE TABLE children__ccs_new" in script or "CREATE TABLE parents__ccs_new" in script
    fresh = tmp_path / "fresh.duckdb"
    _seed(fresh, _metadata())
    import duckdb

    con = duckdb.connect(str(fresh))
    con.execute(script)
    con.close()
    assert ("children", "CHECK") in rows(
        fresh, "SELECT table_name, constraint_type FROM duckdb_constraints()"
    )
    assert rows(fresh, "SELECT count(*) FROM children") == [(3,)]


# -- generated revisions pass `make lint` (alembic.ini's post_write_hooks) -------------


def _ruff(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The venv's ruff with the project's configuration, as ``make lint`` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *map(str, args), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _long_lines_model() -> sa.MetaData:
    """A CHECK on children (create_copy_swap) and a table whose lines run long."""
    meta = _metadata(check="add")
    sa.Table(
        "a_table_with_a_rather_long_name_for_what_it_holds",
        meta,
        sa.Column("identifier_of_the_row", sa.String(), primary_key=True),
        sa.Column("a_descriptive_column", sa.String(), nullable=False, server_default="a default"),
        sa.CheckConstraint("length(a_descriptive_column) > 0", name="descriptive_not_empty"),
    )
    return meta


def _generate(tmp_path: Path, hooks: bool) -> Path:
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    _seed(path, _metadata())
    cfg = _cfg(folder, f"duckdb:///{path}", _long_lines_model())
    if not hooks:
        cfg.file_config.remove_section("post_write_hooks")
    script = command.revision(cfg, "long lines", autogenerate=True)
    return Path(script.path)  # type: ignore[union-attr]


def test_generated_revision_passes_lint(tmp_path: Path) -> None:
    raw = _generate(tmp_path / "raw", hooks=False)
    assert "E501" in _ruff("check", "--select", "E501", raw).stdout  # the model makes long lines
    path = _generate(tmp_path / "hooked", hooks=True)
    text = path.read_text()
    assert "op.create_copy_swap(" in text
    lint = _ruff("check", path)
    assert lint.returncode == 0, lint.stdout + text
    assert _ruff("format", "--check", path).returncode == 0, text  # the repo's style


def test_an_empty_revision_is_clean_from_the_template_alone(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    cfg = _cfg(folder, f"duckdb:///{tmp_path / 'db.duckdb'}", _metadata())
    cfg.file_config.remove_section("post_write_hooks")
    script = command.revision(cfg, "nothing yet")
    path = Path(script.path)  # type: ignore[union-attr]
    lint = _ruff("check", path)  # no unused sa/op, imports in order
    assert lint.returncode == 0, lint.stdout + path.read_text()


def test_our_check_comparison_wins_over_another_registered_for_checks(tmp_path: Path) -> None:
    """A CHECK comparator a later Alembic (or another plugin) registers never runs beside ours."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from alembic.runtime.plugins import Plugin

    from egregora.database.migration.autogenerate.compare import AUTOGENERATE_PLUGINS

    calls: list[str] = []

    def competing(autogen_context, modify_table_ops, schema, tname, *rest):  # type: ignore[no-untyped-def]
        calls.append(tname)
        from alembic.util import PriorityDispatchResult

        return PriorityDispatchResult.CONTINUE

    plugin = Plugin("tests.competing_checks")
    plugin.add_autogenerate_comparator(competing, "table", "checkconstraints")
    try:
        path = tmp_path / "db.duckdb"
        _seed(path, _metadata())
        engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"autogenerate_plugins": [*AUTOGENERATE_PLUGINS, "tests.competing_checks"]},
            )
            diffs = compare_metadata(context, _metadata(check="add"))
        engine.dispose()
    finally:
        plugin.remove()
    assert calls == []  # ours stopped the subgroup on every table
    added = [d for d in diffs if d[0] == "add_constraint"]
    assert len(added) == 1 and "n <> 'bad'" in str(added[0][1].sqltext)
