"""How long autogenerate and `alembic check` take on the whole schema.

Goal (issue 4): under one second beyond Alembic's own start-up. Alembic's
start-up is measured as `alembic current` (it loads env.py, opens the
database and reads the version); `alembic check` does that too, then reflects
every table and compares it with the metadata, including this package's
CHECK and PRIMARY KEY comparators. The difference is the cost of comparing.
`alembic revision --autogenerate` is measured on a database that differs
from the metadata (a column added by hand to posts, which other tables
reference): it compares, then chooses and writes a create_copy_swap with
the previous and dependent definitions reflected. It writes into a copy of
alembic/, deleted after each run.

Run: .venv/bin/python benchmarks/autogenerate.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(args: list[str], cwd: Path, ini: Path = ROOT / "alembic.ini") -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        cli(["upgrade", "head"], cwd)
        current = [cli(["current"], cwd) for _ in range(runs)]
        check = [cli(["check"], cwd) for _ in range(runs)]
        generate = autogenerate_runs(cwd, runs)
    startup, full = statistics.median(current), statistics.median(check)
    written = statistics.median(generate)
    print(f"{'command':<30}{'median s':>10}")
    print(f"{'alembic current':<30}{startup:>10.3f}")
    print(f"{'alembic check':<30}{full:>10.3f}")
    print(f"{'alembic revision --autogenerate':<30}{written:>10.3f}")
    for name, seconds in (("check", full), ("autogenerate", written)):
        extra = seconds - startup
        verdict = "ok" if extra < 1.0 else "MISSED"
        print(f"{name} beyond start-up: {extra:.3f} s (goal < 1.0 s: {verdict})")


def autogenerate_runs(cwd: Path, runs: int) -> list[float]:
    """``revision --autogenerate`` against a drifted database, into a scratch alembic/."""
    import shutil

    import duckdb

    folder = cwd / "alembic"
    shutil.copytree(ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__"))
    ini = cwd / "alembic.ini"
    ini.write_text((ROOT / "alembic.ini").read_text().replace("%(here)s/alembic", str(folder)))
    con = duckdb.connect(str(cwd / "egregora.duckdb"))
    con.execute("ALTER TABLE posts ADD COLUMN drifted VARCHAR")
    con.close()
    before = set((folder / "versions").glob("*.py"))
    seconds = []
    for _ in range(runs):
        seconds.append(cli(["revision", "--autogenerate", "-m", "bench"], cwd, ini))
        written = set((folder / "versions").glob("*.py")) - before
        assert len(written) == 1 and "create_copy_swap" in next(iter(written)).read_text()
        next(iter(written)).unlink()
    return seconds


if __name__ == "__main__":
    main()
