"""Long lines in generated revisions (issue 25, item 1): split at SQL token boundaries, the
value kept, and the file clean under ``ruff check`` and ``ruff format --check``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import render_python_code
from alembic.operations import ops
from hypothesis import given
from hypothesis import strategies as st

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap's renderer)
from alembic import command
from egregora.database.migration.autogenerate.longlines import (
    LINE,
    PIECE,
    columns,
    fit,
    sql_pieces,
    wrap_message,
)
from egregora.database.migration.copyswap.op import CreateCopySwapOp

from .test_compare import _cfg, _metadata, _project, _ruff, _seed

QUOTED = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*\"""")

sql_text = st.lists(
    st.one_of(
        st.sampled_from(["(", ")", " ", "  ", ",", "::", "<>", "!=", " OR ", " AND ", "\n"]),
        st.from_regex(r"[a-z_][a-z0-9_]{0,30}", fullmatch=True),
        st.from_regex(r"'([^']|''){0,80}'", fullmatch=True),
        st.from_regex(r'"([^"]|""){0,20}"', fullmatch=True),
        st.integers().map(str),
    ),
    max_size=40,
).map("".join)


@given(sql_text, st.integers(min_value=8, max_value=80))
def test_pieces_are_the_text_cut_between_tokens(text: str, width: int) -> None:
    pieces = sql_pieces(text, width)
    assert "".join(pieces) == text
    assert all(pieces)
    cuts, at = set(), 0
    for piece in pieces[:-1]:
        at += len(piece)
        cuts.add(at)
    for quoted in QUOTED.finditer(text):  # never inside a quoted literal or identifier
        assert not any(quoted.start() < cut < quoted.end() for cut in cuts), (text, pieces)
    for piece in pieces:
        if len(piece) > width:  # only a token longer than the width stands alone
            assert len(QUOTED.findall(piece)) <= 1 or " " not in piece.strip(), piece


def test_a_cut_falls_after_a_space_where_it_can() -> None:
    text = "(doc_type != 'journal') OR (title IS NOT NULL AND window_start IS NOT NULL)"
    pieces = sql_pieces(text, 40)
    assert pieces == [
        "(doc_type != 'journal') OR (title IS ",
        "NOT NULL AND window_start IS NOT NULL)",
    ]
    assert all(p.endswith(" ") for p in pieces[:-1])


def _check_file(tmp_path: Path, body: str) -> str:
    """``body`` (a rendered upgrade) through fit() and ruff, as the template and hooks do."""
    path = tmp_path / "rev.py"
    path.write_text(
        "import sqlalchemy as sa  # noqa: F401\n\nfrom alembic import op\n\n\n"
        "def upgrade() -> None:\n    " + (fit(body) or "") + "\n"
    )
    assert _ruff("format", path).returncode == 0
    lint = _ruff("check", path)
    assert lint.returncode == 0, lint.stdout + path.read_text()
    assert _ruff("format", "--check", path).returncode == 0
    return path.read_text()


def _strings(text: str) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant) and n.value}


LONG_EXPRESSIONS = {
    "a_rather_long_target_column_name_for_a_map": (
        "coalesce(nullif(trim(both ' ' from the_old_free_text_column), ''), "
        "'a placeholder for rows that had none', 'and more')"
    ),
    "short": "CASE WHEN kind = 'x' THEN 'a value that is long enough to need a cut' ELSE NULL END",
}


def test_column_map_dependents_and_defaults_fit_at_any_depth(tmp_path: Path) -> None:
    meta = sa.MetaData()
    parent = sa.Table(
        "parents",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("a_rather_long_target_column_name_for_a_map", sa.String()),
        sa.Column("short", sa.String()),
        sa.Column(
            "labelled",
            sa.String(),
            server_default="a plain string default that runs on and on past any line length",
            comment="a comment on the column that is also much longer than the piece size",
        ),
        sa.CheckConstraint("length(id) > 0 AND " + " AND ".join(["id <> 'x'"] * 12), name="c"),
    )
    child = sa.Table(
        "children",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column(
            "parent_id",
            sa.String(),
            server_default=sa.text("'" + "an unsplittable literal " * 6 + "'"),
        ),
        sa.CheckConstraint(" OR ".join(f"parent_id = 'value number {i}'" for i in range(9))),
    )
    operation = CreateCopySwapOp(
        parent, previous=parent, column_map=LONG_EXPRESSIONS, dependents=[child]
    )
    body = render_python_code(ops.UpgradeOps(ops=[operation]))
    assert any(len(line) > LINE for line in body.splitlines())  # it needs the cuts
    text = _check_file(tmp_path, body)
    assert all(len(line) <= LINE or line.endswith("# noqa: E501") for line in text.splitlines())
    assert _strings(text) >= {
        *LONG_EXPRESSIONS.values(),
        "'" + "an unsplittable literal " * 6 + "'",
        "a plain string default that runs on and on past any line length",
        "a comment on the column that is also much longer than the piece size",
    }
    assert _strings("def upgrade():\n    " + body) <= _strings(text)  # every value, as it was


def test_a_long_comment_line_is_wrapped(tmp_path: Path) -> None:
    body = (
        "# converts a_table_with_a_long_name.a_column_with_a_long_name from TIMESTAMP WITH "
        "TIME ZONE to TIMESTAMP WITHOUT TIME ZONE:\n    op.execute('SELECT 1')"
    )
    text = _check_file(tmp_path, body)
    comment = [line for line in text.splitlines() if line.strip().startswith("#")]
    assert len(comment) == 2 and comment[1].startswith("    #   ")
    assert " ".join(c.strip("# ") for c in comment).startswith("converts a_table")


def test_short_strings_are_left_as_they_are() -> None:
    body = "op.execute('SELECT 1')\n    op.drop_column('t', 'c')"
    assert fit(body) == body
    assert fit(None) is None and fit("") == ""


def test_a_long_message_makes_a_lint_clean_revision(tmp_path: Path) -> None:
    message = (
        "documents: conditional CHECK constraints for every doc_type, as the builder journal "
        "of 2026-01-18 describes them, and a NOT NULL on doc_type"
    )
    assert all(len(line) <= LINE for line in ('"""' + wrap_message(message)).splitlines())
    folder = _project(tmp_path)
    path = tmp_path / "db.duckdb"
    _seed(path, _metadata())
    script = command.revision(_cfg(folder, f"duckdb:///{path}", _metadata()), message)
    revision = Path(script.path)  # type: ignore[union-attr]
    assert _ruff("check", revision).returncode == 0, revision.read_text()
    docstring = ast.get_docstring(ast.parse(revision.read_text())) or ""
    assert " ".join(docstring.split("\n\n")[0].split()) == message


def test_the_piece_size_fits_the_deepest_line() -> None:
    # a dependents= table's column's server default: 24 columns in, quotes and a comma
    assert 24 + 2 + PIECE + 1 <= LINE
    assert columns("a\nb") == 4 and columns("日本") == 4 and columns("é") == 1
