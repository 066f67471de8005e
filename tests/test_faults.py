"""Faults during a real upgrade: killed, interrupted, locked out, out of room.

Every test runs real processes on real DuckDB files, with no mocks. The
upgrade scenario is a legacy V3 file grown to a few hundred thousand rows
(built once per module, adopted with ``upgrade v3``, then copied for each
test), so that ``alembic upgrade head`` runs for a few seconds and a fault can
land in the middle of different revisions. Whatever happens, the file must be
exactly as it was (same tables, same SQL, same rows, still at v3, no
``__ccs`` leftovers), and a second ``upgrade head`` must then finish with every
row in place.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.util import CommandError
from sqlalchemy.pool import NullPool

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.migration.duckdb_versions import version as duckdb_version
from egregora.database.migration.errors import MigrationFailed

from . import legacy
from .conftest import ALEMBIC_INI, HEAD, database_digest, file_sha256, run_cli
from .copy_swap_helpers import table_names, version

pytestmark = pytest.mark.e2e  # faults injected into large files

V3_TABLES = ("posts", "profiles", "media", "journals", "tasks", "annotations")
#: Rows per big table (profiles get a tenth). About 3-5 s of ``upgrade head``
#: on a 2-core machine.
ROWS = 80_000
EPOCH = "TIMESTAMPTZ '2024-01-01 00:00:00+00'"


# -- the scenario: a big V3 file, adopted at v3 ---------------------------------------


def _grow(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """Fill the V3 tables with ``n`` rows each that satisfy every V4 constraint."""
    p = max(n // 10, 2)  # profiles
    con.execute(
        f"""INSERT INTO profiles SELECT 'pr-' || i, 'profile ' || i,
        {EPOCH} + INTERVAL (i) SECOND, md5(i::VARCHAR), uuid()::VARCHAR, 'Profile ' || i,
        'alias' || i, 'summary ' || i, 'https://example.org/' || i || '.png', ['a', 'b']
        FROM range({p}) AS t(i)"""
    )
    # authors: NULL, an empty list, one or two existing profiles (never twice the same)
    con.execute(
        f"""INSERT INTO posts SELECT 'p-' || i, repeat('content ', 8) || i,
        {EPOCH} + INTERVAL (i) SECOND, md5(i::VARCHAR), 'Title ' || i, 'slug-' || i,
        DATE '2024-01-01' + (i % 365)::INTEGER, 'summary ' || i,
        CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN []::VARCHAR[]
          WHEN 2 THEN ['pr-' || (i % {p})]
          ELSE ['pr-' || (i % {p}), 'pr-' || ((i + 1) % {p})] END,
        ['t' || (i % 7)], ['draft', 'published', 'archived'][1 + i % 3]
        FROM range({n}) AS t(i)"""
    )
    # phash: unique, or NULL (allowed any number of times)
    con.execute(
        f"""INSERT INTO media SELECT 'm-' || i, 'media ' || i, {EPOCH} + INTERVAL (i) SECOND,
        md5(i::VARCHAR), 'f' || i || '.png', 'image/png', ['image', 'video', 'audio'][1 + i % 3],
        CASE WHEN i % 5 = 0 THEN NULL ELSE md5('phash' || i) END
        FROM range({n}) AS t(i)"""
    )
    con.execute(
        f"""INSERT INTO journals SELECT 'j-' || i, 'journal ' || i,
        {EPOCH} + INTERVAL (i) SECOND, md5(i::VARCHAR), 'Journal ' || i,
        {EPOCH} + INTERVAL (i) MINUTE, {EPOCH} + INTERVAL (i + 60) MINUTE
        FROM range({n}) AS t(i)"""
    )
    con.execute(
        f"""INSERT INTO tasks SELECT uuid(),
        ['generate_banner', 'update_profile', 'enrich_media'][1 + i % 3],
        ['pending', 'processing', 'completed', 'failed', 'superseded'][1 + i % 5],
        json_object('n', i), {EPOCH} + INTERVAL (i) SECOND, NULL, NULL
        FROM range({n}) AS t(i)"""
    )
    con.execute(
        f"""INSERT INTO annotations SELECT 'a-' || i, 'note ' || i,
        {EPOCH} + INTERVAL (i) SECOND, md5(i::VARCHAR), 'p-' || i,
        ['message', 'post', 'annotation'][1 + i % 3],
        CASE WHEN i % 4 = 0 THEN NULL ELSE 'pr-' || (i % {p}) END
        FROM range({n}) AS t(i)"""
    )


# Rows that must survive the upgrade, comparable before (V3) and after (V4):
# every column but posts.authors keeps its name, type and value; the authors
# lists become post_authors rows.
PAIRS_V3 = (
    "SELECT p.id AS post_id, a.position::BIGINT AS position, a.profile_id FROM posts AS p, "
    "unnest(p.authors) WITH ORDINALITY AS a(profile_id, position)"
)
PAIRS_V4 = "SELECT post_id, position::BIGINT AS position, profile_id FROM post_authors"


def _rows_digest(con: duckdb.DuckDBPyConnection, select: str) -> tuple[int, str]:
    count, digest = con.execute(
        f"SELECT count(*), coalesce(bit_xor(hash(t)), 0)::VARCHAR FROM ({select}) AS t"
    ).fetchone()  # type: ignore[misc]
    return int(count), str(digest)


def _kept_columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    names = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
        if not (table == "posts" and r[0] == "authors")
    ]
    return ", ".join(f'"{n}"' for n in names)


@dataclass(frozen=True)
class Scenario:
    path: Path
    digest: dict[str, object]
    columns: dict[str, str]  # table -> the column list compared before and after
    rows: dict[str, tuple[int, str]]  # table -> (rows, hash) of those columns
    pairs: tuple[int, str]  # (post, position, author) triples of posts.authors
    authors: int  # sum of the lengths of posts.authors
    build_seconds: float
    adopt_seconds: float


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    path = tmp_path_factory.mktemp("faults") / "v3.duckdb"
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        legacy.create(con)
        _grow(con, ROWS)
    finally:
        con.close()
    built = time.perf_counter()
    result = run_cli("-x", f"url=duckdb:///{path}", "upgrade", "v3", cwd=path.parent)
    adopted = time.perf_counter()
    assert result.returncode == 0, result.stdout + result.stderr
    assert version(path) == ["v3"]
    assert not path.with_name(path.name + ".wal").exists()
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = {t: _kept_columns(con, t) for t in V3_TABLES}
        rows = {t: _rows_digest(con, f"SELECT {columns[t]} FROM {t}") for t in V3_TABLES}
        pairs = _rows_digest(con, PAIRS_V3)
        (authors,) = con.execute("SELECT sum(len(authors)) FROM posts").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    assert pairs[0] == authors > 0
    return Scenario(
        path=path,
        digest=database_digest(path),
        columns=columns,
        rows=rows,
        pairs=pairs,
        authors=int(authors),
        build_seconds=built - started,
        adopt_seconds=adopted - built,
    )


@pytest.fixture
def db(scenario: Scenario, tmp_path: Path) -> Path:
    """A fresh copy of the scenario file, for one test to damage."""
    path = tmp_path / "egregora.duckdb"
    shutil.copyfile(scenario.path, path)
    return path


def _assert_unchanged(path: Path, scenario: Scenario) -> None:
    """The file is the scenario file, table for table, row for row, still at v3."""
    leftovers = sorted(t for t in table_names(path) if "__ccs" in t or "quarantine" in t)
    assert leftovers == [], f"temporary tables left in the file: {leftovers}"
    assert database_digest(path) == scenario.digest
    assert version(path) == ["v3"]
    # and DuckDB can open it for writing again (replaying a WAL, if one was left)
    con = duckdb.connect(str(path))
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    assert database_digest(path) == scenario.digest


def _assert_upgrades_cleanly(path: Path, scenario: Scenario) -> float:
    """``upgrade head`` succeeds and keeps every row; returns its duration."""
    started = time.perf_counter()
    result = run_cli("-x", f"url=duckdb:///{path}", "upgrade", "head", cwd=path.parent)
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"upgrade head failed after {seconds:.1f} s:\n{output[-4000:]}"
    assert "Traceback" not in output
    assert version(path) == [HEAD]
    assert [t for t in table_names(path) if "__ccs" in t or "quarantine" in t] == []
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table in V3_TABLES:
            select = f"SELECT {scenario.columns[table]} FROM {table}"
            assert _rows_digest(con, select) == scenario.rows[table], table
        assert _rows_digest(con, PAIRS_V4) == scenario.pairs
        (pairs,) = con.execute("SELECT count(*) FROM post_authors").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    assert pairs == scenario.authors
    return seconds


# -- a running ``alembic upgrade head``, watched line by line --------------------------


class Upgrade:
    """``alembic upgrade head`` in a subprocess; its output is read as it comes."""

    def __init__(self, path: Path, url: str | None = None, *x: str) -> None:
        """On the DuckDB file ``path``, or on ``url`` (run in ``path``'s folder)."""
        env = {k: v for k, v in os.environ.items() if k != "EGREGORA_DATABASE_URL"}
        env["PYTHONUNBUFFERED"] = "1"
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alembic",
                "-c",
                str(ALEMBIC_INI),
                "-x",
                f"url={url or f'duckdb:///{path}'}",
                *(arg for item in x for arg in ("-x", item)),
                "upgrade",
                "head",
            ],
            cwd=path.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Ctrl-C must reach Python's handler even when this test process
            # was started with SIGINT ignored (a background job, some CI runners):
            # a child inherits SIG_IGN, and Python then installs no handler
            preexec_fn=_default_sigint if _sigint_ignored() else None,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    @property
    def output(self) -> str:
        with self.changed:
            return "".join(self.lines)

    def wait_for(self, marker: str, timeout: float = 60) -> float:
        """Block until a line containing ``marker`` is printed; seconds since start."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not any(marker in line for line in self.lines):
                if not self.reader.is_alive():
                    pytest.fail(f"upgrade ended before {marker!r}:\n{''.join(self.lines)}")
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {marker!r} within {timeout} s:\n{''.join(self.lines)}")
                self.changed.wait(min(left, 0.05))
        return time.perf_counter() - self.started

    def finish(self, timeout: float) -> int:
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)


def _sigint_ignored() -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def upgrading() -> Iterator[list[Upgrade]]:
    """Started upgrades, killed at the end of the test whatever happened."""
    started: list[Upgrade] = []
    yield started
    for upgrade in started:
        upgrade.stop()


# Where a fault lands: right after a line of the upgrade's log, plus a delay
# that puts it inside the statement then running. Between them these cover
# the first rebuild, a rebuild after others in the same revision (posts is
# already swapped, in the open transaction), a UNIQUE rebuild, and v4e's
# plain op.execute/op.drop_column statements.
FAULT_POINTS = {
    "v4a journals copy": ("Running upgrade v3 -> v4a", 0.15),
    "v4c after posts swap": ("create_copy_swap posts:", 0.05),
    "v4d media unique": ("Running upgrade v4c -> v4d", 0.2),
    "v4e post_authors fill": ("Running upgrade v4d -> v4e", 0.15),
}


def test_scenario_upgrades_to_head_in_one_run(db: Path, scenario: Scenario) -> None:
    """The baseline the fault tests rely on: the same file, no fault, upgrades cleanly."""
    seconds = _assert_upgrades_cleanly(db, scenario)
    print(
        f"scenario: built in {scenario.build_seconds:.1f} s, adopted in "
        f"{scenario.adopt_seconds:.1f} s, upgrade head took {seconds:.1f} s"
    )


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_killed_mid_upgrade_leaves_the_file_as_it_was(
    db: Path, scenario: Scenario, upgrading: list[Upgrade], point: str
) -> None:
    marker, delay = FAULT_POINTS[point]
    upgrade = Upgrade(db)
    upgrading.append(upgrade)
    at = upgrade.wait_for(marker)
    time.sleep(delay)
    assert upgrade.proc.poll() is None, f"upgrade already ended:\n{upgrade.output}"
    upgrade.proc.send_signal(signal.SIGKILL)
    assert upgrade.finish(timeout=10) == -signal.SIGKILL
    print(f"{point}: killed {at + delay:.2f} s into the upgrade")
    _assert_unchanged(db, scenario)
    _assert_upgrades_cleanly(db, scenario)


@pytest.mark.parametrize(
    "point", ["v4a journals copy", "v4c after posts swap", "v4e post_authors fill"]
)
def test_ctrl_c_mid_upgrade_rolls_back_with_a_short_message(
    db: Path, scenario: Scenario, upgrading: list[Upgrade], point: str
) -> None:
    """Wherever Ctrl-C lands: Python code (KeyboardInterrupt), a statement run through
    SQLAlchemy (op.execute, reflection) or one create_copy_swap runs on the driver
    (DuckDB then raises RuntimeError('Query interrupted')), the user gets the same
    short "Interrupted" message and an untouched file."""
    marker, delay = FAULT_POINTS[point]
    upgrade = Upgrade(db)
    upgrading.append(upgrade)
    upgrade.wait_for(marker)
    time.sleep(delay)
    assert upgrade.proc.poll() is None, f"upgrade already ended:\n{upgrade.output}"
    sent = time.perf_counter()
    upgrade.proc.send_signal(signal.SIGINT)
    returncode = upgrade.finish(timeout=15)
    waited = time.perf_counter() - sent
    output = upgrade.output
    print(f"{point}: exited {waited:.2f} s after Ctrl-C with {returncode}")
    assert returncode not in (0, None), output
    assert waited < 5, output
    assert "Traceback" not in output, output
    assert "Interrupted" in output, output
    _assert_unchanged(db, scenario)
    _assert_upgrades_cleanly(db, scenario)


HOLDER = """
import sys, time
import duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


def test_file_in_use_by_another_process_is_refused_and_untouched(
    db: Path, scenario: Scenario
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        started = time.perf_counter()
        result = run_cli("-x", f"url=duckdb:///{db}", "upgrade", "head", cwd=db.parent)
        seconds = time.perf_counter() - started
    finally:
        holder.kill()
        holder.wait()
    output = result.stdout + result.stderr
    print(f"refused in {seconds:.2f} s")
    assert result.returncode != 0
    assert seconds < 10
    assert "in use by another process" in output, output
    assert f"PID {holder.pid}" in output, output
    assert "Traceback" not in output, output
    _assert_unchanged(db, scenario)


# -- out of room: create_copy_swap with DuckDB's memory and temp space capped --------

BIG_ROWS = 1_000_000
BIG_TABLE = "big"
THREADS = 2  # memory needs grow with threads; pinned so that the limits below hold


def _big(*extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        BIG_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("payload", sa.String()),
        *extra,
    )


@dataclass(frozen=True)
class BigFile:
    path: Path
    digest: dict[str, object]
    rows: tuple[int, str]
    raw_bytes: int


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    """1M rows of ~200 bytes of text (~200 MB uncompressed), random 32-character ids."""
    path = tmp_path_factory.mktemp("room") / "big.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(f"CREATE TABLE {BIG_TABLE} (id VARCHAR, payload VARCHAR)")
        con.execute(
            f"INSERT INTO {BIG_TABLE} SELECT md5(i::VARCHAR), md5((i + 7)::VARCHAR) || "
            f"md5((i + 13)::VARCHAR) || repeat('p', 100) || i FROM range({BIG_ROWS}) AS t(i)"
        )
        (raw,) = con.execute(
            f"SELECT sum(strlen(id) + strlen(payload)) FROM {BIG_TABLE}"
        ).fetchone()  # type: ignore[misc]
        rows = _rows_digest(con, f"SELECT id, payload FROM {BIG_TABLE}")
    finally:
        con.close()
    return BigFile(path, database_digest(path), rows, int(raw))


def _copy_swap_capped(
    path: Path, target: sa.Table, memory_limit: str, spill: Path, max_temp: str | None
) -> float:
    """op.create_copy_swap(target) in one transaction, DuckDB's limits set on its connection."""
    spill.mkdir(exist_ok=True)
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=NullPool)
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"SET threads = {THREADS}")
            conn.exec_driver_sql(f"SET memory_limit = '{memory_limit}'")
            conn.exec_driver_sql(f"SET temp_directory = '{spill}'")
            if max_temp is not None:
                conn.exec_driver_sql(f"SET max_temp_directory_size = '{max_temp}'")
            Operations(MigrationContext.configure(conn)).create_copy_swap(target)
    finally:
        engine.dispose()
    return time.perf_counter() - started


#: The copy (200 MB) is larger than this, so it spills; the PRIMARY KEY's index fits.
SPILLING_LIMIT = "88MB"
#: A PRIMARY KEY's preflight (duplicate ids over 1M ids: distinct hashes on 2.x,
#: a GROUP BY on 1.4) needs more than this, so it spills. At 88 MB the hashes
#: fit on 2.0.1 (the operation then succeeded); at 40 and 48 MB they spill on
#: 2.0.1 and 1.4.3 ("failed to offload data block", measured)
PREFLIGHT_SPILLING_LIMIT = "40MB"

OUT_OF_ROOM = {
    # the preflight must spill, but the temp directory may hold 1 MB only
    "temp directory full": (PREFLIGHT_SPILLING_LIMIT, "1MB"),
    # everything is copied and swapped, then COMMIT must write the PRIMARY
    # KEY's index, which DuckDB can't spill: the commit itself fails
    "index larger than memory at commit": ("48MB", None),
}


@pytest.mark.parametrize("case", OUT_OF_ROOM)
def test_out_of_room_fails_and_changes_nothing(
    big_file: BigFile, tmp_path: Path, case: str
) -> None:
    memory_limit, max_temp = OUT_OF_ROOM[case]
    path = tmp_path / "big.duckdb"
    shutil.copyfile(big_file.path, path)
    started = time.perf_counter()
    with pytest.raises((CommandError, sa.exc.DBAPIError, duckdb.Error)) as err:
        _copy_swap_capped(path, _big(), memory_limit, tmp_path / "spill", max_temp)
    print(f"{case}: failed after {time.perf_counter() - started:.1f} s: {err.value!s:.300}")
    message = str(err.value).lower()
    assert (
        "out of memory" in message
        or "could not allocate" in message
        or ("failed to allocate" in message)
    ), message
    assert database_digest(path) == big_file.digest
    assert not [t for t in table_names(path) if "__ccs" in t]
    con = duckdb.connect(str(path))  # opens for writing again
    con.close()
    assert database_digest(path) == big_file.digest


CLI_OUT_OF_ROOM = {
    # DuckDB settings ride on the URL: duckdb-sqlalchemy passes them to connect()
    "temp directory full": "memory_limit=16MB&max_temp_directory_size=1MB",
    "memory too small": "memory_limit=8MB",
}


@pytest.mark.parametrize("case", CLI_OUT_OF_ROOM)
def test_out_of_room_on_the_command_line_is_a_clear_refusal(
    db: Path, scenario: Scenario, tmp_path: Path, case: str
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    settings = f"{CLI_OUT_OF_ROOM[case]}&temp_directory={spill}&threads={THREADS}"
    result = run_cli("-x", f"url=duckdb:///{db}?{settings}", "upgrade", "head", cwd=db.parent)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "FAILED:" in output and "Out of Memory" in output, output
    assert "Traceback" not in output, output
    _assert_unchanged(db, scenario)


def test_copy_larger_than_memory_spills_to_disk_and_keeps_every_row(
    big_file: BigFile, tmp_path: Path
) -> None:
    """Same limit as "temp directory full", with room on disk: it succeeds."""
    limit_bytes = int(SPILLING_LIMIT.removesuffix("MB")) * 1000**2
    assert big_file.raw_bytes > 2 * limit_bytes  # the copy is bigger than the memory
    path = tmp_path / "big.duckdb"
    shutil.copyfile(big_file.path, path)
    if duckdb_version() < (2, 0, 0):
        # DuckDB 1.4 does not spill building the PRIMARY KEY's index of this copy
        # (measured on 1.4.3: "Out of Memory: failed to allocate data of size 64.0
        # KiB (83.9 MiB/83.9 MiB used)", duckdb_versions.py): refused, unchanged
        before = file_sha256(path)
        with pytest.raises(MigrationFailed, match="Out of Memory") as failed:
            _copy_swap_capped(path, _big(), SPILLING_LIMIT, tmp_path / "spill", None)
        assert "\n" not in str(failed.value) and file_sha256(path) == before
        return
    seconds = _copy_swap_capped(path, _big(), SPILLING_LIMIT, tmp_path / "spill", None)
    print(f"copied {big_file.raw_bytes / 1e6:.0f} MB with {SPILLING_LIMIT} in {seconds:.1f} s")
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert _rows_digest(con, f"SELECT id, payload FROM {BIG_TABLE}") == big_file.rows
        (sql,) = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE table_name = ?", [BIG_TABLE]
        ).fetchone()  # type: ignore[misc]
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()
    assert "PRIMARY KEY" in sql
    assert tables == {BIG_TABLE}
