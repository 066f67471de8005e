"""The code as it is against the code at an earlier commit, side by side, in one run.

Made for issue 23 (one road for an operation): a refactor must not slow an
upgrade down. The earlier commit's ``src``, ``alembic.ini``, ``alembic/`` and
``benchmarks/`` are taken with ``git archive`` into a scratch folder; each
measurement then runs in its own process with that tree's ``src`` first on
``PYTHONPATH``, alternating before and after, on copies of the same files:

- ``upgrade``: `alembic -x on_violation=quarantine upgrade <target>` on a
  legacy V3 file grown to ``--rows`` (benchmarks/upgrade.py builds it), to a
  revision both trees have (``--target``, default v4g: the head before issue
  21's revisions);
- ``refused``: the same in fail mode (stops with the violation report);
- ``copy_swap``: one `op.create_copy_swap` on a ``--rows`` table
  (benchmarks/copy_swap.py's own child, each tree's).

Run: .venv/bin/python benchmarks/before_after.py [--before 0b047cf] [--after REV]
[--rows 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import copy_swap, upgrade  # noqa: E402  (the tree's own builders)

#: the last commit before issue 23's refactor
BEFORE = "0b047cf"
TREE_PARTS = ("src", "alembic", "alembic.ini", "benchmarks")


def checkout(revision: str, into: Path) -> Path:
    """The tree of ``revision`` (its src, alembic, benchmarks) in ``into``."""
    archive = into / "tree.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision, *TREE_PARTS], stdout=out, check=True
        )
    tree = into / revision
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def environment(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree / "src")}


def alembic_run(tree: Path, path: Path, *args: str) -> tuple[float, int, float]:
    """Seconds, exit code and peak memory (MiB) of one alembic process of ``tree``."""
    command = [sys.executable, "-m", "alembic", "-c", str(tree / "alembic.ini")]
    command += ["-x", f"url=duckdb:///{path}", *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=tree, env=environment(tree), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    assert process.stderr is not None
    process.stderr.read()
    return seconds, os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def copy_swap_run(tree: Path, path: Path) -> tuple[float, int, float]:
    """Seconds, 0 or 1, and peak memory (MiB) of one create_copy_swap, in ``tree``'s code."""
    script = tree / "benchmarks" / "copy_swap.py"
    command = [sys.executable, str(script), "--child", "create_copy_swap", "--db", str(path)]
    done = subprocess.run(command, env=environment(tree), capture_output=True, text=True)
    if done.returncode != 0:
        return 0.0, done.returncode, 0.0
    result = json.loads(done.stdout.strip().splitlines()[-1])
    failed = int("error" in result)
    return float(result.get("seconds", 0.0)), failed, int(result["peak_kib"]) / 1024


def measure(
    trees: dict[str, Path], sources: dict[str, Path], work: Path, target: str, repeat: int
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Each case, in each tree, ``repeat`` times, alternating trees on fresh copies."""
    cases = {
        "upgrade": ("legacy", ("-x", "on_violation=quarantine", "upgrade", target)),
        "refused": ("legacy", ("upgrade", target)),
        "copy_swap": ("table", ()),
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(repeat):
        for case, (source, args) in cases.items():
            for name, tree in trees.items():
                path = work / f"{case}-{name}.duckdb"
                copy_swap.fresh_copy(sources[source], path)
                if case == "copy_swap":
                    seconds, code, peak = copy_swap_run(tree, path)
                else:
                    seconds, code, peak = alembic_run(tree, path, *args)
                refused = case == "refused"  # the violation report, a non-zero exit
                assert (code != 0) == refused, f"{case} in {name}: exit status {code}"
                results.setdefault((case, name), []).append((seconds, peak))
                path.unlink()
    return results


def report(results: dict[tuple[str, str], list[tuple[float, float]]], before: str) -> None:
    header = ("case", "before s", "after s", "ratio", "before MiB", "after MiB")
    print("{:<10} {:>9} {:>9} {:>6} {:>11} {:>10}".format(*header))
    for case in ("upgrade", "refused", "copy_swap"):
        old, new = results[case, before], results[case, "after"]
        old_s = statistics.median(s for s, _ in old)
        new_s = statistics.median(s for s, _ in new)
        old_m, new_m = max(m for _, m in old), max(m for _, m in new)
        print(
            f"{case:<10} {old_s:>9.2f} {new_s:>9.2f} {new_s / old_s:>6.2f} "
            f"{old_m:>11.0f} {new_m:>10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--before", default=BEFORE, help="the earlier commit (default: %(default)s)"
    )
    parser.add_argument("--after", help="a later commit (default: the working tree)")
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--violations", type=int, default=20)
    parser.add_argument("--target", default="v4g", help="a revision both trees have")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="before-after-") as scratch:
        work = Path(scratch)
        after = ROOT if args.after is None else checkout(args.after, work)
        trees = {args.before: checkout(args.before, work), "after": after}
        sources = {"legacy": work / "legacy.duckdb", "table": work / "table.duckdb"}
        upgrade.build(sources["legacy"], args.rows, args.violations)
        copy_swap.build(sources["table"], args.rows)
        print(f"{args.rows:,} rows, median of {args.repeat}, each run in its own process")
        report(measure(trees, sources, work, args.target, args.repeat), args.before)
        shutil.rmtree(work / args.before, ignore_errors=True)


if __name__ == "__main__":
    main()
