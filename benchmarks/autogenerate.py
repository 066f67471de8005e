"""How long autogenerate and `alembic check` take on the whole schema.

Goal (issue 4): under one second beyond Alembic's own start-up. Alembic's
start-up is measured as `alembic current` (it loads env.py, opens the
database and reads the version); `alembic check` does that too, then reflects
every table and compares it with the metadata, including this package's
CHECK and PRIMARY KEY comparators. The difference is the cost of comparing.

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


def cli(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args],
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
    startup, full = statistics.median(current), statistics.median(check)
    print(f"{'command':<20}{'median s':>10}")
    print(f"{'alembic current':<20}{startup:>10.3f}")
    print(f"{'alembic check':<20}{full:>10.3f}")
    extra = full - startup
    verdict = "ok" if extra < 1.0 else "MISSED"
    print(f"check beyond start-up: {extra:.3f} s (goal < 1.0 s: {verdict})")


if __name__ == "__main__":
    main()
