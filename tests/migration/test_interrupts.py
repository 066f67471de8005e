"""Ctrl-C stops a run wherever it lands, even where Python itself drops it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from egregora.database.migration.interrupts import watched
from tests.conftest import copy_project, file_sha256, run_cli

HEADER = """
import os, signal, time
import sqlalchemy as sa
from alembic import op
revision = "{revision}"
down_revision = {down!r}
branch_labels = depends_on = None
"""

FIRST = """
def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("body", sa.String()))
    op.execute("INSERT INTO notes VALUES (1, 'kept'), (2, 'also kept')")

def downgrade():
    op.drop_table("notes")
"""

# A finalizer that runs while Ctrl-C arrives: Python raises KeyboardInterrupt
# inside __del__, prints "Exception ignored in ..." and goes on. Any object's
# finalizer (a connection's, a cursor's, a reflected table's) can be the one
# running when the user presses Ctrl-C.
SWALLOWED = """
class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # Python runs the handler here, inside __del__

def upgrade():
    op.add_column("notes", sa.Column("tag", sa.String()))
    Finalized()  # collected at once: the Ctrl-C is raised in its __del__ and dropped
    print("went on after Ctrl-C", flush=True)
    op.execute("UPDATE notes SET tag = 'after Ctrl-C'")

def downgrade():
    op.drop_column("notes", "tag")
"""


# The same dropped Ctrl-C, then a failure that hides it (as a library that turns
# DuckDB's "Query interrupted" into another error would)
SWALLOWED_THEN_FAILING = SWALLOWED.replace(
    """op.execute("UPDATE notes SET tag = 'after Ctrl-C'")""",
    """op.execute("SELECT * FROM a_table_made_up_after_ctrl_c")""",
)


def _project(tmp_path: Path, second: str = SWALLOWED) -> Path:
    ini = copy_project(tmp_path, versions=False)
    versions = tmp_path / "alembic" / "versions"
    for down, name, body in [(None, "i1", FIRST), ("i1", "i2", second)]:
        (versions / f"{name}.py").write_text(HEADER.format(revision=name, down=down) + body)
    return ini


@pytest.fixture(params=["duckdb", "postgresql"])
def url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'notes.duckdb'}"
    return str(request.getfixturevalue("pg_url"))


def _state(url: str) -> tuple[object, ...]:
    """The version, the columns of notes and its rows."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            columns = [c["name"] for c in sa.inspect(conn).get_columns("notes")]
            rows = conn.execute(sa.text("SELECT * FROM notes ORDER BY id")).all()
    finally:
        engine.dispose()
    return version, columns, rows


@pytest.mark.parametrize("second", [SWALLOWED, SWALLOWED_THEN_FAILING], ids=["goes on", "fails"])
def test_ctrl_c_python_dropped_still_rolls_the_run_back(
    tmp_path: Path, url: str, second: str
) -> None:
    ini = _project(tmp_path, second)
    assert run_cli("-x", f"url={url}", "upgrade", "i1", cwd=tmp_path, ini=ini).returncode == 0
    before = _state(url)
    sha = file_sha256(tmp_path / "notes.duckdb") if url.startswith("duckdb") else None

    done = run_cli("-x", f"url={url}", "upgrade", "head", cwd=tmp_path, ini=ini)

    output = done.stdout + done.stderr
    assert "went on after Ctrl-C" in output  # Python did drop it: the case under test
    assert done.returncode != 0, output
    assert "Interrupted" in output, output
    assert "Traceback" not in output, output
    assert "a_table_made_up_after_ctrl_c" not in output, output
    assert _state(url) == before
    assert before[0] == [("i1",)] and before[1] == ["id", "body"]
    if sha is not None:
        assert file_sha256(tmp_path / "notes.duckdb") == sha


def test_a_ctrl_c_still_raises_is_noted_and_the_handlers_come_back() -> None:
    handler, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    with watched() as ctrl_c:
        ctrl_c.check()  # nothing pressed yet
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()
    assert signal.getsignal(signal.SIGINT) is handler
    assert sys.unraisablehook is hook


def test_a_process_that_ignores_ctrl_c_is_left_as_it_is() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with watched() as ctrl_c:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            ctrl_c.check()  # ignored, as the process asked
    finally:
        signal.signal(signal.SIGINT, previous)
