"""posts.authors -> post_authors (post_id, position, profile_id), with FOREIGN KEYs

Roadmap row "Foreign Keys": posts' authors reference profiles.id. DuckDB can't
reference an element of a list, so the ``authors`` list becomes rows of
``post_authors``, in order (``position`` is the list index, from 1).
Autogenerate produced the create_table, the drop_column and the keys;
reviewed by hand to fill the table from the lists before the list is dropped,
and to add the keys with create_copy_swap, so that authors with no profile,
NULL authors and an author repeated in one post are reported (or
quarantined) rather than failing. The authors of posts that an earlier
revision quarantined go to post_authors_quarantine too: every (post, author)
pair stays somewhere.

Downgrade rebuilds the lists from post_authors, in order. A post with no
rows there gets NULL (V3 held both NULL and empty lists; they are not told
apart).

Revision ID: v4e
Revises: v4d
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op
from egregora.database.migrations import has_table

revision: str = "v4e"
down_revision: str | Sequence[str] | None = "v4d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def post_authors(keyed: bool) -> sa.Table:
    meta = sa.MetaData()
    # the referenced tables, as far as the FOREIGN KEYs need them
    sa.Table("posts", meta, sa.Column("id", sa.String(), primary_key=True))
    sa.Table("profiles", meta, sa.Column("id", sa.String(), primary_key=True))
    if not keyed:
        return sa.Table(
            "post_authors",
            meta,
            sa.Column("post_id", sa.String()),
            sa.Column("position", sa.Integer()),
            sa.Column("profile_id", sa.String()),
        )
    return sa.Table(
        "post_authors",
        meta,
        sa.Column("post_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_post_authors_post_id_posts"),
        sa.ForeignKeyConstraint(
            ["profile_id"], ["profiles.id"], name="fk_post_authors_profile_id_profiles"
        ),
        sa.PrimaryKeyConstraint("post_id", "position", name="pk_post_authors"),
        sa.UniqueConstraint("post_id", "profile_id", name="uq_post_authors_post_id_profile_id"),
    )


REASON = "'post quarantined: see posts_quarantine'"
PAIRS = (
    "SELECT p.id, a.position, a.profile_id FROM {table} AS p, "
    "unnest(p.authors) WITH ORDINALITY AS a(profile_id, position)"
)


def upgrade() -> None:
    plain = post_authors(keyed=False)
    op.create_table(plain.name, *(c._copy() for c in plain.columns))
    op.execute(
        "INSERT INTO post_authors (post_id, position, profile_id) "
        + PAIRS.format(table="posts")
        + " ORDER BY p.id, a.position"
    )
    # has_table, not the inspector: a catalog read has every rebuild the run holds
    # back written first, and v4f, v4h, v4i would write some of them again
    if not op.get_context().as_sql and has_table("posts_quarantine"):
        op.execute(
            "CREATE TABLE IF NOT EXISTS post_authors_quarantine (post_id VARCHAR, "
            "position INTEGER, profile_id VARCHAR, _quarantine_reason VARCHAR, "
            "_quarantined_at TIMESTAMP WITH TIME ZONE, _quarantine_revision VARCHAR)"
        )
        # EXCEPT ALL: an upgrade after a downgrade adds only the pairs not there yet
        op.execute(
            "INSERT INTO post_authors_quarantine SELECT q.*, "
            f"{REASON}, now(), 'v4e upgrade' FROM ("
            + PAIRS.format(table="posts_quarantine")
            + " EXCEPT ALL SELECT post_id, position, profile_id FROM post_authors_quarantine "
            f"WHERE _quarantine_reason = {REASON}) AS q"
        )
    op.drop_column("posts", "authors")
    op.create_copy_swap(post_authors(keyed=True), previous=post_authors(keyed=False))


def downgrade() -> None:
    op.create_copy_swap(post_authors(keyed=False), previous=post_authors(keyed=True))
    op.add_column("posts", sa.Column("authors", sa.ARRAY(sa.String())))
    op.execute(
        "UPDATE posts SET authors = pa.authors FROM (SELECT post_id, "
        "array_agg(profile_id ORDER BY position) AS authors FROM post_authors GROUP BY post_id) "
        "AS pa "
        "WHERE posts.id = pa.post_id"
    )
    op.drop_table("post_authors")
