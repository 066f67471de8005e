"""What `alembic upgrade head` from a legacy V3 file costs, against copying the data once.

For each ``--rows`` (default 500,000 and 5,000,000), a V3 file is made with
the baseline revision (`alembic upgrade v3` on an empty file) and grown with
SQL to about that many rows over the six tables (posts with author lists
that reference profiles), with ``--violations`` rows that break the V4
rules (a journal window backwards, an empty profile title). Copies of it are
then taken, each run in its own process (peak memory is that process's
maximum resident set):

- ``floor``: every table rewritten once in one transaction (CREATE TABLE AS,
  DROP, RENAME), the least any rebuild-based upgrade can cost;
- ``keyed floor``: every row of the upgraded file written once into the head
  schema, with its keys, indexes and FOREIGN KEYs: the least an upgrade that
  must build them can cost;
- ``quarantine``: `alembic -x on_violation=quarantine upgrade head`, which
  writes each table once (issue 16), and the same with ``-x fuse=false``,
  each operation written as it comes (how every run worked before);
- ``refused``: `alembic upgrade head` in fail mode, which stops with the
  violation report, fused (scans only) and not.

Goals (issue 16): quarantine <= 1.5x the floor; refused <= 0.5x quarantine;
peak memory no higher than without fusion.

Run: .venv/bin/python benchmarks/upgrade.py [--rows 500000 5000000] [--violations 20]
[--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
V3_TABLES = ("posts", "profiles", "media", "journals", "tasks", "annotations")
#: rows per table, as a share of --rows
SHARES = {
    "posts": 0.3,
    "profiles": 0.1,
    "media": 0.1,
    "journals": 0.1,
    "tasks": 0.1,
    "annotations": 0.3,
}

FILL = {
    "profiles": """
        INSERT INTO profiles SELECT 'u' || i, 'bio ' || i, TIMESTAMPTZ '2024-01-01' +
          to_seconds(i), 'c' || i, uuid()::VARCHAR, 'Person ' || i, 'alias' || i,
          'summary', NULL, ['x', 'y'] FROM range($n) AS r(i)""",
    "posts": """
        INSERT INTO posts SELECT 'p' || i, repeat('text ', 20) || i, TIMESTAMPTZ '2024-01-01'
          + to_seconds(i), 'c' || i, 'Post ' || i, 'post-' || i, DATE '2024-01-01',
          'summary', ['u' || (i % $profiles), 'u' || ((i + 1) % $profiles)], ['tag'],
          ['draft', 'published', 'archived'][1 + i % 3] FROM range($n) AS r(i)""",
    "media": """
        INSERT INTO media SELECT 'm' || i, NULL, TIMESTAMPTZ '2024-01-01' + to_seconds(i),
          'c' || i, 'f' || i || '.png', 'image/png', 'image', 'h' || i FROM range($n) AS r(i)""",
    "journals": """
        INSERT INTO journals SELECT 'j' || i, 'log', TIMESTAMPTZ '2024-01-01' + to_seconds(i),
          'c' || i, 'Journal ' || i, TIMESTAMPTZ '2024-01-01' + to_seconds(i),
          TIMESTAMPTZ '2024-01-01' + to_seconds(i + 60) FROM range($n) AS r(i)""",
    "tasks": """
        INSERT INTO tasks SELECT uuid(), 'enrich_media', 'pending', '{"k": 1}',
          TIMESTAMPTZ '2024-01-01' + to_seconds(i), NULL, NULL FROM range($n) AS r(i)""",
    "annotations": """
        INSERT INTO annotations SELECT 'a' || i, 'note', TIMESTAMPTZ '2024-01-01' +
          to_seconds(i), 'c' || i, 'p' || (i % $posts), 'post', 'u' || (i % $profiles)
          FROM range($n) AS r(i)""",
}
VIOLATIONS = (
    "UPDATE journals SET window_end = window_start - INTERVAL 1 HOUR WHERE id IN "
    "(SELECT id FROM journals ORDER BY id LIMIT $k)",
    "UPDATE profiles SET title = '' WHERE id IN (SELECT id FROM profiles ORDER BY id LIMIT $k)",
)


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(ROOT / "alembic.ini"),
            "-x",
            f"url={url}",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def build(path: Path, rows: int, violations: int) -> dict[str, int]:
    done = alembic(f"duckdb:///{path}", "upgrade", "v3")
    assert done.returncode == 0, done.stdout + done.stderr
    counts = {t: max(1, int(rows * share)) for t, share in SHARES.items()}
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE alembic_version")  # a legacy file: no version table
        for table in ("profiles", "posts", "media", "journals", "tasks", "annotations"):
            sql = FILL[table].replace("$profiles", str(counts["profiles"]))
            sql = sql.replace("$posts", str(counts["posts"]))
            con.execute(sql.replace("$n", str(counts[table])))
        for statement in VIOLATIONS:
            con.execute(statement.replace("$k", str(violations)))
        con.execute("CHECKPOINT")
    return counts


def floor(path: Path) -> float:
    """Every table rewritten once, in one transaction."""
    started = time.perf_counter()
    with duckdb.connect(str(path)) as con:
        con.execute("BEGIN")
        for table in V3_TABLES:
            con.execute(f"CREATE TABLE {table}__copy AS SELECT * FROM {table}")
        con.execute("DROP VIEW IF EXISTS documents_view")
        for table in V3_TABLES:
            con.execute(f"DROP TABLE {table}")
            con.execute(f"ALTER TABLE {table}__copy RENAME TO {table}")
        con.execute("COMMIT")
    return time.perf_counter() - started


#: the head tables in an order their FOREIGN KEYs allow
HEAD_ORDER = ("profiles", "posts", "media", "journals", "tasks", "annotations", "post_authors")


def keyed_floor(upgraded: Path, work: Path) -> float:
    """Every row of an upgraded file written once into the head schema, with its keys.

    The floor above builds no PRIMARY KEY, UNIQUE, index or FOREIGN KEY, all
    of which V4 must build: this is the least an upgrade that ends with them
    can cost (tables created from the head file's own DDL, filled with one
    INSERT ... SELECT each, indexes after, one transaction).
    """
    with duckdb.connect(str(upgraded), read_only=True) as con:
        ddl = dict(con.execute("SELECT table_name, sql FROM duckdb_tables()").fetchall())
        indexes = [
            r[0]
            for r in con.execute(
                "SELECT sql FROM duckdb_indexes() WHERE sql IS NOT NULL"
            ).fetchall()
        ]
    target = work / "keyed_floor.duckdb"
    target.unlink(missing_ok=True)
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{upgraded}' AS old (READ_ONLY)")
        started = time.perf_counter()
        con.execute("BEGIN")
        for table in HEAD_ORDER:
            con.execute(ddl[table])
            con.execute(f"INSERT INTO {table} SELECT * FROM old.{table}")
        for sql in indexes:
            con.execute(sql)
        con.execute("COMMIT")
        return time.perf_counter() - started


def timed(path: Path, *args: str) -> tuple[float, int, float]:
    """Seconds, exit code and peak memory (MiB) of one alembic process."""
    command = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    command += ["-x", f"url=duckdb:///{path}", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    assert process.stderr is not None
    process.stderr.read()
    return seconds, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def startup(path: Path) -> float:
    """Alembic's own start-up (env.py, opening the file), left out of the upgrade figures."""
    return min(timed(path, "current")[0] for _ in range(2))


WAYS = {
    "quarantine": ("-x", "on_violation=quarantine", "upgrade", "head"),
    "quarantine, unfused": ("-x", "on_violation=quarantine", "-x", "fuse=false", "upgrade", "head"),
    "refused": ("upgrade", "head"),
    "refused, unfused": ("-x", "fuse=false", "upgrade", "head"),
}


def measure(rows: int, violations: int, work: Path, repeat: int) -> dict[str, tuple[float, float]]:
    """Each way's seconds (start-up left out) and peak MiB on a fresh V3 file of ``rows``.

    With ``repeat`` > 1, each way runs that many times on fresh copies: the
    median time, the largest peak.
    """
    source = work / f"v3_{rows}.duckdb"
    started = time.perf_counter()
    counts = build(source, rows, violations)
    print(
        f"built a V3 file of {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f} s"
    )
    copy = work / f"copy_{rows}.duckdb"
    shutil.copy(source, copy)
    base = startup(copy)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in ("floor", *WAYS)}
    for _ in range(repeat):
        shutil.copy(source, copy)
        runs["floor"].append((floor(copy), 0.0))
        for name, args in WAYS.items():
            shutil.copy(source, copy)
            seconds, code, peak = timed(copy, *args)
            assert (code == 0) is name.startswith("quarantine"), f"{name}: exit code {code}"
            runs[name].append((seconds - base, peak))
    results = {
        name: (statistics.median(s for s, _ in done), max(p for _, p in done))
        for name, done in runs.items()
    }
    shutil.copy(source, copy)
    assert timed(copy, *WAYS["quarantine"])[1] == 0
    results["keyed floor"] = (keyed_floor(copy, work), 0.0)
    copy.unlink()
    source.unlink()
    return results


def report(rows: int, results: dict[str, tuple[float, float]]) -> None:
    print(f"\n{rows:,} rows{'':<22}{'seconds':>10}{'peak MiB':>10}")
    for name in ("floor", "keyed floor", *WAYS):
        seconds, peak = results[name]
        print(f"{name:<34}{seconds:>10.2f}{(f'{peak:.0f}' if peak else ''):>10}")

    def ratio(a: str, b: str) -> float:
        return results[a][0] / results[b][0]

    q_floor = ratio("quarantine", "floor")
    print(f"quarantine / floor            {q_floor:6.2f}  (goal <= 1.5: {_ok(q_floor <= 1.5)})")
    print(f"quarantine / keyed floor      {ratio('quarantine', 'keyed floor'):6.2f}")
    print(f"quarantine / unfused          {ratio('quarantine', 'quarantine, unfused'):6.2f}")
    refused = ratio("refused", "quarantine")
    print(f"refused / quarantine          {refused:6.2f}  (goal <= 0.5: {_ok(refused <= 0.5)})")
    print(f"refused / refused unfused     {ratio('refused', 'refused, unfused'):6.2f}")
    for way in ("quarantine", "refused"):
        peak = results[way][1] / results[f"{way}, unfused"][1]
        print(
            f"peak memory {way + ' / unfused':<18}{peak:6.2f}  (goal <= 1.0: {_ok(peak <= 1.05)})"
        )


def _ok(met: bool) -> str:
    return "ok" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000, 5_000_000])
    parser.add_argument("--violations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs per way (median time)")
    args = parser.parse_args()
    print("(Alembic's start-up is measured and left out of the upgrade figures)")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            report(rows, measure(rows, args.violations, Path(tmp), args.repeat))


if __name__ == "__main__":
    main()
