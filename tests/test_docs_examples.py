"""The examples of docs/using-the-schema.md run, as written, one after the other, on a file
at head (as a reader who ran ``alembic upgrade head`` would)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from alembic import command

from .conftest import ROOT, alembic_cfg

GUIDE = ROOT / "docs" / "using-the-schema.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_guide_has_an_example_for_each_way() -> None:
    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) == 3
    assert "sqlalchemy" in blocks[0] and "ibis_schemas" in blocks[1]
    assert "guard_duckdb" in blocks[2]


def test_the_guide_s_examples_run(tmp_path: Path) -> None:
    command.upgrade(alembic_cfg(f"duckdb:///{tmp_path / 'egregora.duckdb'}"), "head")
    result = None
    for number, block in enumerate(python_blocks(GUIDE.read_text()), start=1):
        result = subprocess.run(
            [sys.executable, "-c", block],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"example {number}:\n{block}\n{result.stderr[-3000:]}"
    assert result is not None
    # the last one printed what the guard refused (overwrite=True is a TRUNCATE)
    assert result.stdout.splitlines() == ["UPDATE refused", "TRUNCATE refused", "TRUNCATE refused"]
