"""The tests follow the history: a revision added on top becomes the head they use."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic.config import Config

from alembic import command

from .conftest import HEAD, copy_project, head_of
from .copy_swap_helpers import version


def test_a_new_revision_on_top_becomes_the_head(tmp_path: Path) -> None:
    ini = copy_project(tmp_path)
    path = tmp_path / "egregora.duckdb"
    cfg = Config(str(ini))
    cfg.cmd_opts = argparse.Namespace(x=[f"url=duckdb:///{path}"])

    script = command.revision(cfg, "the next step", rev_id="next_step")
    assert script is not None and script.down_revision == HEAD

    assert head_of(ini) == "next_step" != HEAD
    assert head_of() == HEAD  # the project's own history is untouched
    command.stamp(cfg, HEAD)  # quick: only the new revision runs
    command.upgrade(cfg, "head")
    assert version(path) == ["next_step"]
