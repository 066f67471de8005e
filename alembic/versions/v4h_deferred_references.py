"""FOREIGN KEYs into posts and profiles: DEFERRABLE INITIALLY DEFERRED (checked on DuckDB)

The Egregora application upserts its profile and post caches by DELETE then
INSERT, and updates list columns (profiles.interests, posts.tags) in place.
Measured on DuckDB 1.4.3 and 2.0.1: a FOREIGN KEY refuses all of these on a
referenced row (DELETE, even followed by INSERT in one transaction; UPDATE
of a LIST column; INSERT OR REPLACE and ON CONFLICT DO UPDATE setting one),
so after v4e/v4f the app's start-up crashed. The three keys into posts and
profiles become DEFERRABLE INITIALLY DEFERRED:

- PostgreSQL checks them at COMMIT: the app's DELETE then INSERT in one
  transaction passes, an orphan still can't be committed. Each key is
  dropped and added again (NOT VALID, then VALIDATE after the commit).
- DuckDB can't defer a key (its parser refuses DEFERRABLE): post_authors and
  annotations are rebuilt without them, and egregora.database.integrity
  checks them instead (alembic check; a later rebuild of either table
  judges its rows; the application may call foreign_key_violations).

Downgrade makes them immediate again; on DuckDB the rebuild then judges the
rows the app wrote meanwhile: orphans are reported, or quarantined.

Written by hand (autogenerate proposes the same two create_copy_swap calls).
Why this design and not another, with the measurements: docs/app-on-head.md.

Revision ID: v4h
Revises: v4g
Create Date: 2026-12-07

Frozen history: this script never imports the live metadata
(egregora.database.schemas); it carries the definitions it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4h"
down_revision: str | Sequence[str] | None = "v4g"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timing(deferred: bool) -> dict[str, Any]:
    return {"deferrable": True, "initially": "DEFERRED"} if deferred else {}


def _parents(meta: sa.MetaData) -> None:
    """The referenced tables, as far as the FOREIGN KEYs need them."""
    sa.Table("posts", meta, sa.Column("id", sa.String(), primary_key=True))
    sa.Table("profiles", meta, sa.Column("id", sa.String(), primary_key=True))


def post_authors(deferred: bool) -> sa.Table:
    meta = sa.MetaData()
    _parents(meta)
    return sa.Table(
        "post_authors",
        meta,
        sa.Column("post_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_post_authors_post_id_posts", **_timing(deferred)
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name="fk_post_authors_profile_id_profiles",
            **_timing(deferred),
        ),
        sa.PrimaryKeyConstraint("post_id", "position", name="pk_post_authors"),
        sa.UniqueConstraint("post_id", "profile_id", name="uq_post_authors_post_id_profile_id"),
    )


def annotations(deferred: bool) -> sa.Table:
    meta = sa.MetaData()
    _parents(meta)
    return sa.Table(
        "annotations",
        meta,
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("content", sa.String()),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source_checksum", sa.String()),
        sa.Column("parent_id", sa.String()),
        sa.Column("parent_type", sa.String()),
        sa.Column("author_id", sa.String()),
        sa.CheckConstraint(
            "parent_type IN ('message', 'post', 'annotation')", name="chk_annotations_parent_type"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_annotations"),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["profiles.id"],
            name="fk_annotations_author_id_profiles",
            **_timing(deferred),
        ),
    )


def upgrade() -> None:
    op.create_copy_swap(post_authors(deferred=True), previous=post_authors(deferred=False))
    op.create_copy_swap(annotations(deferred=True), previous=annotations(deferred=False))


def downgrade() -> None:
    op.create_copy_swap(annotations(deferred=False), previous=annotations(deferred=True))
    op.create_copy_swap(post_authors(deferred=False), previous=post_authors(deferred=True))
