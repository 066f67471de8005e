"""``-x`` options: parsed once, every bad value refused in one paragraph."""

from __future__ import annotations

from pathlib import Path

import pytest

from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.options import X_OPTIONS, RunOptions
from egregora.database.migration.postgresql.locks import LockPolicy


def test_defaults_when_nothing_is_given() -> None:
    options = RunOptions.from_x_args({})
    assert options == RunOptions()
    assert (options.on_violation, options.dry_run, options.report) == ("fail", False, None)
    assert options.lock_policy == LockPolicy()
    assert options.fuse is True


def test_every_option_is_read(tmp_path: Path) -> None:
    options = RunOptions.from_x_args(
        {
            "url": "duckdb:///x.duckdb",
            "on_violation": "quarantine",
            "dry_run": "YES",
            "report": str(tmp_path / "r.json"),
            "progress_after_ms": "50",
            "memory_limit": " 1500MB ",
            "lock_timeout": "2s",
            "lock_retries": "7",
            "statement_timeout": "1min",
            "fuse": "off",
        }
    )
    assert options.fuse is False
    assert options.on_violation == "quarantine"
    assert options.dry_run is True
    assert options.report == str(tmp_path / "r.json")
    assert options.progress_after_ms == 50
    assert options.memory_limit == "1500MB"
    assert options.lock_policy.lock_timeout == "2s"
    assert options.lock_policy.retries == 7
    assert options.lock_policy.statement_timeout == "1min"


@pytest.mark.parametrize(
    ("x_args", "words"),
    [
        ({"dryrun": "true"}, "-x dryrun is not an option"),
        ({"on_violation": "skip"}, "-x on_violation=skip is not one of fail, quarantine"),
        ({"dry_run": "maybe"}, "neither true nor false"),
        ({"fuse": "sometimes"}, "-x fuse=sometimes is neither true nor false"),
        ({"report": "/no/such/folder/r.json"}, "does not exist"),
        ({"progress_after_ms": "soon"}, "not a whole number of milliseconds"),
        ({"memory_limit": "lots"}, "not an amount of memory"),
        ({"lock_retries": "-1"}, "not a whole number"),
        ({"lock_timeout": "5 parsecs"}, "not a duration"),
    ],
)
def test_a_bad_option_is_refused_in_one_paragraph(x_args: dict[str, str], words: str) -> None:
    with pytest.raises(InvalidOperation) as refused:
        RunOptions.from_x_args(x_args)
    assert words in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_list_of_options_is_the_one_the_refusal_names() -> None:
    with pytest.raises(InvalidOperation) as refused:
        RunOptions.from_x_args({"nope": "1"})
    assert ", ".join(X_OPTIONS) in str(refused.value)
