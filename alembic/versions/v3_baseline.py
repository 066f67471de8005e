"""V3 baseline: the schema as deployed before Alembic.

Revision ID: v3
Revises:
Create Date: 2026-11-28

On an empty database this creates exactly the legacy V3 DDL. On a legacy
database (the V3 tables, no alembic_version) it verifies that every table,
column, type and CHECK expression matches, changes nothing, and Alembic
stamps it at v3. Anything else is refused before a change is made.

Frozen history: the definitions below are a copy, never the live metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from egregora.database.adoption import create_or_adopt

revision: str = "v3"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

metadata = sa.MetaData(naming_convention={"ck": "chk_%(table_name)s_%(constraint_name)s"})
TZ = sa.TIMESTAMP(timezone=True)


def _document(name: str, *extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String()),
        sa.Column("content", sa.String()),
        sa.Column("created_at", TZ),
        sa.Column("source_checksum", sa.String()),
        *extra,
    )


def _one_of(column: str, *values: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sa.column(column).in_(values), name=column)


_document(
    "posts",
    sa.Column("title", sa.String()),
    sa.Column("slug", sa.String()),
    sa.Column("date", sa.Date()),
    sa.Column("summary", sa.String()),
    sa.Column("authors", sa.ARRAY(sa.String())),
    sa.Column("tags", sa.ARRAY(sa.String())),
    sa.Column("status", sa.String()),
    _one_of("status", "draft", "published", "archived"),
)
_document(
    "profiles",
    sa.Column("subject_uuid", sa.String()),
    sa.Column("title", sa.String()),
    sa.Column("alias", sa.String()),
    sa.Column("summary", sa.String()),
    sa.Column("avatar_url", sa.String()),
    sa.Column("interests", sa.ARRAY(sa.String())),
)
_document(
    "media",
    sa.Column("filename", sa.String()),
    sa.Column("mime_type", sa.String()),
    sa.Column("media_type", sa.String()),
    sa.Column("phash", sa.String()),
    _one_of("media_type", "image", "video", "audio"),
)
_document(
    "journals",
    sa.Column("title", sa.String()),
    sa.Column("window_start", TZ),
    sa.Column("window_end", TZ),
)
sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.Uuid()),
    sa.Column("task_type", sa.String()),
    sa.Column("status", sa.String()),
    sa.Column("payload", sa.JSON()),
    sa.Column("created_at", TZ),
    sa.Column("processed_at", TZ),
    sa.Column("error", sa.String()),
    _one_of("status", "pending", "processing", "completed", "failed", "superseded"),
    _one_of("task_type", "generate_banner", "update_profile", "enrich_media"),
)
_document(
    "annotations",
    sa.Column("parent_id", sa.String()),
    sa.Column("parent_type", sa.String()),
    sa.Column("author_id", sa.String()),
    _one_of("parent_type", "message", "post", "annotation"),
)

VIEWS = {
    "documents_view": (
        "SELECT id, 'post' AS type, content, created_at, title, slug, NULL AS subject_uuid "
        "FROM posts "
        "UNION ALL SELECT id, 'profile', content, created_at, title, NULL, subject_uuid "
        "FROM profiles "
        "UNION ALL SELECT id, 'journal', content, created_at, title, NULL, NULL FROM journals "
        "UNION ALL SELECT id, 'media', content, created_at, NULL, NULL, NULL FROM media "
        "UNION ALL SELECT id, 'annotation', content, created_at, NULL, NULL, NULL "
        "FROM annotations"
    ),
}


def upgrade() -> None:
    create_or_adopt(op, metadata, VIEWS, revision)


def downgrade() -> None:
    for name in VIEWS:
        op.execute(
            f"DROP VIEW IF EXISTS {op.get_context().dialect.identifier_preparer.quote(name)}"
        )
    for table in reversed(metadata.sorted_tables):
        op.drop_table(table.name)
