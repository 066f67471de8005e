"""What `alembic upgrade head` from a legacy V3 file costs, against writing its result once.

For each ``--rows`` (default 500,000; 5,000,000 too with ``--rows 500000
5000000``: about 10 minutes on 2 idle cores), a V3 file is made with
the baseline revision (`alembic upgrade v3` on an empty file) and grown with
SQL to about that many rows over the six tables (posts with author lists
that reference profiles), with ``--violations`` rows that break the V4
rules (a journal window backwards, an empty profile title). Copies of it are
then taken, each run in its own process (peak memory is that process's
maximum resident set; Alembic's start-up, measured with `alembic current`,
is left out):

- ``floor``: every table rewritten once in one transaction (CREATE TABLE AS,
  DROP, RENAME): no key, CHECK or index, which no real upgrade can reach;
- ``keyed floor``: head's tables written once into a fresh file, parents
  first, with every key, CHECK, FOREIGN KEY and index (the upgraded file's
  own DDL), one INSERT ... SELECT each, one transaction: the honest floor;
- ``quarantine``: `alembic -x on_violation=quarantine upgrade head` (each
  table written once, issue 16), and the same with ``-x fuse=false``, each
  operation written as it comes;
- ``refused``: `alembic upgrade head` in fail mode, which stops with the
  violation report, and the same unfused; every table must be as it was
  after it (names, rows, DDL).

Goals (issue 24): quarantine <= 1.25x the keyed floor (moonshot 1.05);
refused <= 0.3x quarantine; peak memory no higher than without fusion.
``--profile`` runs one quarantine upgrade in this process and prints where
its time goes: each statement's seconds by the code that ran it, COMMIT,
and the Python around them.

Run: .venv/bin/python benchmarks/upgrade.py [--rows 500000 5000000] [--violations 20]
[--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
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


def content(path: Path) -> list[tuple[str, int, str]]:
    """Each table's name, rows and DDL: what a refused run must leave as it was.

    Not the file's bytes: DuckDB writes a large transaction's rows to the
    file before its commit (optimistic writes), and a rollback frees those
    blocks without restoring the bytes.
    """
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT table_name, sql FROM duckdb_tables() ORDER BY 1").fetchall()
        return [
            (name, con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0], sql)  # type: ignore[index]
            for name, sql in tables
        ]


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
    names = ("floor", "keyed floor", *WAYS)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    original = content(source)
    for _ in range(repeat):
        shutil.copy(source, copy)
        base = startup(copy)  # in each repeat: the machine's load varies
        runs["floor"].append((floor(copy), 0.0))
        for name, args in WAYS.items():
            shutil.copy(source, copy)
            seconds, code, peak = timed(copy, *args)
            assert (code == 0) is name.startswith("quarantine"), f"{name}: exit code {code}"
            if name.startswith("refused"):  # refused: nothing changed
                assert content(copy) == original, f"{name}: the file changed"
            runs[name].append((seconds - base, peak))
            if name == "quarantine":  # measured beside it: the machine may be shared
                runs["keyed floor"].append((keyed_floor(copy, work), 0.0))
    results = {
        name: (statistics.median(s for s, _ in done), max(p for _, p in done))
        for name, done in runs.items()
    }
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

    keyed = ratio("quarantine", "keyed floor")
    print(f"quarantine / keyed floor      {keyed:6.2f}  (goal <= 1.25: {_ok(keyed <= 1.25)})")
    print(f"quarantine / key-less floor   {ratio('quarantine', 'floor'):6.2f}")
    print(f"unfused / keyed floor         {ratio('quarantine, unfused', 'keyed floor'):6.2f}")
    print(f"quarantine / unfused          {ratio('quarantine', 'quarantine, unfused'):6.2f}")
    refused = ratio("refused", "quarantine")
    print(f"refused / quarantine          {refused:6.2f}  (goal <= 0.3: {_ok(refused <= 0.3)})")
    print(f"refused / refused unfused     {ratio('refused', 'refused, unfused'):6.2f}")
    print("refused runs left every table as it was (names, rows, DDL)")
    for way in ("quarantine", "refused"):
        peak = results[way][1] / results[f"{way}, unfused"][1]
        print(
            f"peak memory {way + ' / unfused':<18}{peak:6.2f}  (goal <= 1.0: {_ok(peak <= 1.05)})"
        )


def _ok(met: bool) -> str:
    return "ok" if met else "MISSED"


PROFILE_LINES = int(os.environ.get("PROFILE_LINES", "30"))


def profile(rows: int, violations: int, work: Path, way: str = "quarantine") -> None:
    """One upgrade (``way``: quarantine, or refused) in this process: where its time goes.

    Every statement is timed with the code that ran it (SQLAlchemy's
    statements through its events, the plans' own through a wrapper around
    the driver's connection, catalog.driver), COMMIT apart; the rest is
    Python: start-up, planning, reflection.
    """
    import collections
    import pkgutil
    import traceback

    import sqlalchemy as sa
    from alembic.config import main as alembic_main

    import egregora.database.migration as migration
    from egregora.database.migration import catalog

    source = work / "profiled.duckdb"
    build(source, rows, violations)
    spent: dict[tuple[str, str], list[float]] = collections.defaultdict(lambda: [0, 0.0])

    def caller() -> str:
        for frame in reversed(traceback.extract_stack()[:-3]):
            if "/egregora/" in frame.filename or "/versions/" in frame.filename:
                return f"{Path(frame.filename).name}:{frame.name}"
        return "?"

    def record(sql: str, seconds: float) -> None:
        words = " ".join(str(sql).split())
        kind = "COMMIT" if words.upper() == "COMMIT" else " ".join(words.split()[:3])
        entry = spent[(caller(), kind)]
        entry[0] += 1
        entry[1] += seconds

    class Timed:
        def __init__(self, raw: object) -> None:
            self.raw = raw

        def __getattr__(self, name: str) -> object:
            return getattr(self.raw, name)

        def execute(self, sql: str, *args: object) -> object:
            started = time.perf_counter()
            try:
                return self.raw.execute(sql, *args)  # type: ignore[attr-defined]
            finally:
                record(sql, time.perf_counter() - started)

    plain = catalog.driver
    for info in pkgutil.walk_packages(migration.__path__, migration.__name__ + "."):
        module = __import__(info.name, fromlist=["_"])
        if getattr(module, "driver", None) is plain:
            module.driver = lambda connection: Timed(plain(connection))

    def before(conn: sa.Connection, *args: object) -> None:
        conn.info["started"] = time.perf_counter()

    def after(conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        record(statement, time.perf_counter() - conn.info.pop("started"))

    dialect = type(sa.create_engine("duckdb:///:memory:").dialect)
    plain_commit = dialect.do_commit

    def do_commit(self: sa.Dialect, connection: object) -> None:
        started = time.perf_counter()
        plain_commit(self, connection)
        record("COMMIT", time.perf_counter() - started)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
    dialect.do_commit = do_commit  # type: ignore[method-assign]
    started = time.perf_counter()
    mode = ["-x", "on_violation=quarantine"] if way == "quarantine" else []
    with contextlib.suppress(SystemExit):  # a refused run exits non-zero
        alembic_main(
            ["-c", str(ROOT / "alembic.ini"), "-x", f"url=duckdb:///{source}"]
            + ["-q", *mode, "upgrade", "head"]
        )
    total = time.perf_counter() - started
    statements = sum(seconds for _, seconds in spent.values())
    print(
        f"\nprofile, {way} run, {rows:,} rows: {total:.2f} s in all, "
        f"{statements:.2f} s in statements"
    )
    print(f"{'seconds':>8} {'calls':>5}  where, what")
    ranked = sorted(spent.items(), key=lambda i: -i[1][1])
    for (where, what), (calls, seconds) in ranked[:PROFILE_LINES]:
        print(f"{seconds:8.3f} {calls:5d}  {where}, {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[500_000])
    parser.add_argument("--violations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs per way (median time)")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="quarantine",
        choices=["quarantine", "refused"],
        help="where one run's time goes (a quarantine run unless told)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            for rows in args.rows:
                profile(rows, args.violations, Path(tmp), args.profile)
            return
        print("(Alembic's start-up is measured and left out of the upgrade figures)")
        for rows in args.rows:
            report(rows, measure(rows, args.violations, Path(tmp), args.repeat))


if __name__ == "__main__":
    main()
