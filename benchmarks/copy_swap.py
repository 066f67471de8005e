"""How fast, and how lean, ``op.create_copy_swap`` rebuilds a large table.

One DuckDB file gets a posts-shaped table (UUID PRIMARY KEY, UNIQUE slug, an
index on created_at, a CHECK on status, a list column) with ``--rows`` rows.
It is copied once per way, and each copy gets the new CHECK
``length(title) > 0`` (every row satisfies it):

- ``create_copy_swap``: ``op.create_copy_swap(posts)`` with the full target
  definition, through SQLAlchemy and an Alembic MigrationContext;
- ``hand-written``: the same deferred-index plan as plain SQL on a plain
  ``duckdb`` connection (create, copy, drop, rename, then keys and index);
- ``batch``: Alembic's ``batch_alter_table(recreate="always")``, through
  duckdb-sqlalchemy's impl (this package's refuses it: it loses CHECKs);
- ``alembic op``: Alembic's own ``op.create_check_constraint`` written by
  hand, which this package's DuckDB impl runs as the same rebuild (issue 27):
  the table as the database holds it, with the CHECK added.

Each way runs in its own child process, which reports the migration's time
(from opening its transaction to its commit; not start-up, imports or
connecting) and its own peak memory. Every child imports the same modules
(SQLAlchemy, Alembic, this package), so their baselines match. The peak is
``VmHWM`` from ``/proc/self/status`` (Linux): a child's ``ru_maxrss`` also
counts its parent's peak, which Linux carries over through vfork and exec.
Each copy is flushed to disk before its child starts, so no way pays for the
copy's write-back. Afterwards the parent checks each copy: still ``--rows``
rows, the new CHECK present, its keys and index intact.

Goals: create_copy_swap within 15% of the hand-written SQL's time, at least
15% faster than batch mode, and within 20% of the hand-written SQL's peak
memory; Alembic's own operation within 15% of create_copy_swap's time.
Timings vary by 10-20% from run to run; ``--repeat`` runs every way that
many times (in turns) and reports medians.

Run: .venv/bin/python benchmarks/copy_swap.py --rows 1000000 [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from duckdb_sqlalchemy.alembic_impl import DuckDBImpl

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)

NEW_CHECK = "length(title) > 0"
STATUS_CHECK = "status IN ('draft', 'published', 'archived')"
COLUMNS_SQL = """
    id UUID NOT NULL,
    slug VARCHAR,
    title VARCHAR,
    content VARCHAR,
    status VARCHAR,
    created_at TIMESTAMP WITH TIME ZONE,
    tags VARCHAR[]"""
FILL_SQL = """
INSERT INTO posts
SELECT
    uuid(),
    'slug-' || i,
    'Post number ' || i,
    repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', 1 + i % 4) || i,
    ['draft', 'published', 'archived'][1 + i % 3],
    TIMESTAMPTZ '2020-01-01 00:00:00+00' + to_seconds(i * 60),
    ['tag-' || (i % 7), 'tag-' || (i % 11)]
FROM range($rows) AS r(i)
"""
KEYS_SQL = [
    "ALTER TABLE posts ADD PRIMARY KEY (id)",
    "ALTER TABLE posts ADD UNIQUE (slug)",
    "CREATE INDEX ix_posts_created_at ON posts (created_at)",
]
HAND_WRITTEN_SQL = [
    "BEGIN",
    f"CREATE TABLE posts__new ({COLUMNS_SQL}, CHECK ({STATUS_CHECK}), CHECK ({NEW_CHECK}))",
    "INSERT INTO posts__new SELECT * FROM posts",
    "DROP TABLE posts",
    "ALTER TABLE posts__new RENAME TO posts",
    *KEYS_SQL,
    "COMMIT",
]
GOALS = {
    "time vs hand-written": 1.15,
    "time vs batch": 0.85,
    "memory vs hand-written": 1.2,
    "alembic op vs create_copy_swap": 1.15,
}


def build(path: Path, rows: int) -> None:
    """The source database: a plain table, filled, then its keys and index."""
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE posts ({COLUMNS_SQL}, CHECK ({STATUS_CHECK}))")
        con.execute(FILL_SQL, {"rows": rows})
        for sql in KEYS_SQL:
            con.execute(sql)


def target_table() -> sa.Table:
    """The complete definition of posts after the migration."""
    return sa.Table(
        "posts",
        sa.MetaData(),
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("slug", sa.String),
        sa.Column("title", sa.String),
        sa.Column("content", sa.String),
        sa.Column("status", sa.String),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("tags", sa.ARRAY(sa.String)),
        sa.UniqueConstraint("slug"),
        sa.Index("ix_posts_created_at", "created_at"),
        sa.CheckConstraint(STATUS_CHECK),
        sa.CheckConstraint(NEW_CHECK),
    )


# -- the three ways, each run in a child process ----------------------------------


#: ``--memory-limit``: DuckDB's memory_limit in every way's connection (children read it here)
MEMORY_LIMIT_ENV = "EGREGORA_BENCH_MEMORY_LIMIT"


def duckdb_config() -> dict[str, str]:
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    return {"memory_limit": limit} if limit else {}


def timed_alembic(
    path: Path, migrate: Callable[[Operations], None], impl: type[DuckDBImpl] | None = None
) -> float:
    """Run ``migrate`` in one transaction through SQLAlchemy and Alembic; its seconds.

    ``impl``: Alembic's impl for the context (by default, the one Alembic chooses).
    """
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={"config": duckdb_config()})
    with engine.connect():  # the dialect's first-connect set-up, outside the timing
        pass
    started = time.perf_counter()
    with engine.begin() as conn:
        context = MigrationContext.configure(conn)
        if impl is not None:
            context.impl = impl(context.dialect, conn, False, None, None, context.opts)
        migrate(Operations(context))
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def run_create_copy_swap(path: Path) -> float:
    table = target_table()
    return timed_alembic(path, lambda ops: ops.create_copy_swap(table))  # type: ignore[attr-defined]


def run_hand_written(path: Path) -> float:
    with duckdb.connect(str(path), config=duckdb_config()) as con:
        started = time.perf_counter()
        for sql in HAND_WRITTEN_SQL:
            con.execute(sql)
        return time.perf_counter() - started


def batch_add_check(ops: Operations) -> None:
    with ops.batch_alter_table("posts", recreate="always") as batch:
        batch.create_check_constraint("ck_posts_title", NEW_CHECK)


def run_batch(path: Path) -> float:
    return timed_alembic(path, batch_add_check, DuckDBImpl)


def run_alembic_op(path: Path) -> float:
    """Alembic's own operation, as a user writes it; the impl makes it a rebuild."""
    return timed_alembic(
        path,
        lambda ops: ops.create_check_constraint("ck_posts_title", "posts", NEW_CHECK),
    )


WAYS: dict[str, Callable[[Path], float]] = {
    "create_copy_swap": run_create_copy_swap,
    "hand-written": run_hand_written,
    "batch": run_batch,
    "alembic op": run_alembic_op,
}


def peak_rss_kib() -> int:
    """This process's peak resident memory since it started (not its parent's)."""
    found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert found, "VmHWM missing from /proc/self/status (this benchmark needs Linux)"
    return int(found.group(1))


def child(way: str, path: Path) -> None:
    """Run one way on ``path``; print its seconds (or error) and peak memory as JSON."""
    result: dict[str, object] = {}
    try:
        result["seconds"] = WAYS[way](path)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        result["error"] = lines[0] if lines else type(exc).__name__
    result["peak_kib"] = peak_rss_kib()
    print(json.dumps(result))


# -- the parent: build, copy, spawn, verify, report --------------------------------


def spawn(way: str, path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", way, "--db", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return {"error": f"child crashed: {lines[-1]}"}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fresh_copy(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` and flush it, so the migration doesn't pay the write-back."""
    shutil.copy(source, path)
    with path.open("rb+") as copied:
        os.fsync(copied.fileno())


def verify(path: Path, rows: int) -> list[str]:
    """What is wrong with ``path`` after a migration (empty when all is well)."""
    with duckdb.connect(str(path), read_only=True) as con:
        count = con.execute("SELECT count(*) FROM posts").fetchone()
        constraints = con.execute(
            "SELECT constraint_type, coalesce(expression, '') FROM duckdb_constraints() "
            "WHERE table_name = 'posts'"
        ).fetchall()
        indexes = con.execute(
            "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'posts'"
        ).fetchall()
    problems = []
    if count is None or count[0] != rows:
        problems.append(f"posts has {count[0] if count else 'no'} rows, expected {rows}")
    if not any(kind == "CHECK" and "length(title)" in expr for kind, expr in constraints):
        problems.append(f"no CHECK ({NEW_CHECK}) in duckdb_constraints()")
    kinds = {kind for kind, _ in constraints}
    problems += [f"the {kind} is gone" for kind in ("PRIMARY KEY", "UNIQUE") if kind not in kinds]
    if ("ix_posts_created_at",) not in indexes:
        problems.append("the index ix_posts_created_at is gone")
    return problems


def median(runs: list[dict[str, object]], key: str) -> float | None:
    values = [float(run[key]) for run in runs if key in run]  # type: ignore[arg-type]
    return statistics.median(values) if values and len(values) == len(runs) else None


def ratio_line(
    label: str, numerator: float | None, denominator: float | None, prefix: str = "op / "
) -> str:
    goal = GOALS[label]
    if numerator is None or denominator is None:
        return f"{prefix}{label:<26}{'n/a':>6}  (goal <= {goal:.2f}: n/a, a way failed)"
    ratio = numerator / denominator
    verdict = "ok" if ratio <= goal else "MISSED"
    return f"{prefix}{label:<26}{ratio:>6.2f}  (goal <= {goal:.2f}: {verdict})"


def benchmark(rows: int, repeat: int, workdir: Path) -> None:
    source = workdir / "source.duckdb"
    started = time.perf_counter()
    build(source, rows)
    print(f"built {rows:,} rows in {time.perf_counter() - started:.1f} s ({source})")
    runs: dict[str, list[dict[str, object]]] = {way: [] for way in WAYS}
    for _ in range(repeat):
        for way in WAYS:
            path = workdir / f"{way}.duckdb"
            fresh_copy(source, path)
            result = spawn(way, path)
            runs[way].append(result)
            if "error" not in result:
                for problem in verify(path, rows):
                    print(f"WARNING: {way}: {problem}")
    seconds = {way: median(results, "seconds") for way, results in runs.items()}
    mib = {way: (median(results, "peak_kib") or 0) / 1024 for way, results in runs.items()}
    times = f"median of {repeat} runs" if repeat > 1 else "one run"
    print(f"\n{'way':<20}{'seconds':>10}{'peak RSS MiB':>14}   ({times})")
    for way, results in runs.items():
        errors = [str(r["error"]) for r in results if "error" in r]
        shown = f"{seconds[way]:.2f}" if seconds[way] is not None else f"failed: {errors[0]}"
        print(f"{way:<20}{shown:>10}{mib[way]:>14.0f}")
    op, hand, batch, alembic_op = WAYS
    print()
    print(ratio_line("time vs hand-written", seconds[op], seconds[hand]))
    print(ratio_line("time vs batch", seconds[op], seconds[batch]))
    print(ratio_line("memory vs hand-written", mib[op] or None, mib[hand] or None))
    print(ratio_line("alembic op vs create_copy_swap", seconds[alembic_op], seconds[op], prefix=""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per way (medians reported)")
    parser.add_argument("--workdir", type=Path, help="keep the databases here (default: a tempdir)")
    parser.add_argument(
        "--memory-limit", help="DuckDB's memory_limit for every way, e.g. 600MB (default: DuckDB's)"
    )
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_limit:
        os.environ[MEMORY_LIMIT_ENV] = args.memory_limit  # the children inherit it
        print(f"DuckDB memory_limit = {args.memory_limit}")
    if args.child:
        child(args.child, args.db)
    elif args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        benchmark(args.rows, args.repeat, args.workdir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            benchmark(args.rows, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
