"""Structure before scale: a PRIMARY KEY on every table, NOT NULL where a value is required

ids, created_at, statuses, task types and post titles get NOT NULL; each
table's id (tasks: task_id) becomes its PRIMARY KEY. Autogenerate found the
NOT NULLs and the PRIMARY KEYs (through egregora's comparator); DuckDB can
ALTER some of them in place, but this revision rebuilds every table with
create_copy_swap so that rows with a NULL or repeated id are reported (or
quarantined, keeping the row the environment's policy keeps: the newest
created_at in posts, profiles and media, the earliest elsewhere) instead of
failing the ALTER.

Revision ID: v4c
Revises: v4b
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4c"
down_revision: str | Sequence[str] | None = "v4b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.TIMESTAMP(timezone=True)


def _document(name: str, keyed: bool, *extra: sa.SchemaItem) -> sa.Table:
    """A V3 content table; ``keyed``: with this revision's PRIMARY KEY and NOT NULLs."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.String(), nullable=not keyed),
        sa.Column("content", sa.String()),
        sa.Column("created_at", TZ, nullable=not keyed),
        sa.Column("source_checksum", sa.String()),
        *extra,
        *([sa.PrimaryKeyConstraint("id", name=f"pk_{name}")] if keyed else []),
    )


def _one_of(table: str, column: str, *values: str) -> sa.CheckConstraint:
    # named as the baseline names it: PostgreSQL keeps constraint names
    return sa.CheckConstraint(sa.column(column).in_(values), name=f"chk_{table}_{column}")


def posts(keyed: bool) -> sa.Table:
    return _document(
        "posts",
        keyed,
        sa.Column("title", sa.String(), nullable=not keyed),
        sa.Column("slug", sa.String()),
        sa.Column("date", sa.Date()),
        sa.Column("summary", sa.String()),
        sa.Column("authors", sa.ARRAY(sa.String())),
        sa.Column("tags", sa.ARRAY(sa.String())),
        sa.Column("status", sa.String(), nullable=not keyed),
        _one_of("posts", "status", "draft", "published", "archived"),
    )


def profiles(keyed: bool) -> sa.Table:
    return _document(
        "profiles",
        keyed,
        sa.Column("subject_uuid", sa.String()),
        sa.Column("title", sa.String()),
        sa.Column("alias", sa.String()),
        sa.Column("summary", sa.String()),
        sa.Column("avatar_url", sa.String()),
        sa.Column("interests", sa.ARRAY(sa.String())),
        sa.CheckConstraint("length(title) > 0", name="chk_profiles_title_not_empty"),
    )


def media(keyed: bool) -> sa.Table:
    return _document(
        "media",
        keyed,
        sa.Column("filename", sa.String()),
        sa.Column("mime_type", sa.String()),
        sa.Column("media_type", sa.String()),
        sa.Column("phash", sa.String()),
        _one_of("media", "media_type", "image", "video", "audio"),
    )


def journals(keyed: bool) -> sa.Table:
    return _document(
        "journals",
        keyed,
        sa.Column("title", sa.String()),
        sa.Column("window_start", TZ),
        sa.Column("window_end", TZ),
        sa.CheckConstraint("window_end >= window_start", name="chk_journals_window_order"),
    )


def annotations(keyed: bool) -> sa.Table:
    return _document(
        "annotations",
        keyed,
        sa.Column("parent_id", sa.String()),
        sa.Column("parent_type", sa.String()),
        sa.Column("author_id", sa.String()),
        _one_of("annotations", "parent_type", "message", "post", "annotation"),
    )


def tasks(keyed: bool) -> sa.Table:
    return sa.Table(
        "tasks",
        sa.MetaData(),
        sa.Column("task_id", sa.Uuid(), nullable=not keyed),
        sa.Column("task_type", sa.String(), nullable=not keyed),
        sa.Column("status", sa.String(), nullable=not keyed),
        sa.Column("payload", sa.JSON()),
        sa.Column("created_at", TZ, nullable=not keyed),
        sa.Column("processed_at", TZ),
        sa.Column("error", sa.String()),
        _one_of("tasks", "status", "pending", "processing", "completed", "failed", "superseded"),
        _one_of("tasks", "task_type", "generate_banner", "update_profile", "enrich_media"),
        *([sa.PrimaryKeyConstraint("task_id", name="pk_tasks")] if keyed else []),
    )


TABLES = (posts, profiles, media, journals, tasks, annotations)


def upgrade() -> None:
    for table in TABLES:
        op.create_copy_swap(table(keyed=True), previous=table(keyed=False))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.create_copy_swap(table(keyed=False), previous=table(keyed=True))
