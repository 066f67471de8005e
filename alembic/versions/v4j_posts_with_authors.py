"""View posts_with_authors: posts in their V3 shape, authors as an ordered list again

v4e moved each post's authors from the list posts.authors into rows of
post_authors (DuckDB can't reference a list's elements), and the Egregora
application's profile-posts lookup, which filters posts on
``authors.contains(author)``, silently found nothing. This view gives every
post with V3's columns in V3's order, ``authors`` the post's profile ids in
post_authors' order (NULL when it has none, as v4e's downgrade gives), so
the app reads it with one change: the name it reads (posts_with_authors for
posts). The same SQL on DuckDB and PostgreSQL. Writes still go to posts and
post_authors (docs/app-on-head.md).

A later revision that drops or renames a posts column this view reads must
re-create the view: DuckDB's rebuild refuses before any change (a view reads
the column), PostgreSQL refuses the ALTER.

Revision ID: v4j
Revises: v4i
Create Date: 2026-12-07

Frozen history: this script never imports the live metadata
(egregora.database.schemas); it carries the definitions it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4j"
down_revision: str | Sequence[str] | None = "v4i"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = "posts_with_authors"
#: V3's posts columns, in V3's order; authors comes from post_authors
COLUMNS = (
    "id", "content", "created_at", "source_checksum", "title", "slug", "date", "summary",
    "authors", "tags", "status",
)  # fmt: skip


def upgrade() -> None:
    q = op.get_context().dialect.identifier_preparer.quote
    select = ", ".join(f"a.{q(c)}" if c == "authors" else f"p.{q(c)}" for c in COLUMNS)
    op.execute(
        f"CREATE VIEW {q(VIEW)} AS SELECT {select} FROM {q('posts')} AS p LEFT JOIN ("
        f"SELECT {q('post_id')}, array_agg({q('profile_id')} ORDER BY {q('position')}) "
        f"AS {q('authors')} FROM {q('post_authors')} GROUP BY {q('post_id')}"
        f") AS a ON a.{q('post_id')} = p.{q('id')}"
    )


def downgrade() -> None:
    op.execute(f"DROP VIEW {op.get_context().dialect.identifier_preparer.quote(VIEW)}")
