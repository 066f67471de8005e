"""The Egregora database schema: the single source of truth.

SQLAlchemy Core metadata only. The application imports this module at run
time for its queries (``select(posts)``), so it must never import Alembic.

Column types follow the databases already in the field (legacy V3): text is
``VARCHAR``, timestamps ``TIMESTAMP WITH TIME ZONE``, lists of text
``VARCHAR[]``, plus ``DATE``, ``UUID`` and ``JSON``.
"""

from typing import Final

import sqlalchemy as sa

# Allowed values, shared by the CHECK constraints and the application.
POST_STATUSES: Final = ("draft", "published", "archived")
TASK_STATUSES: Final = ("pending", "processing", "completed", "failed", "superseded")
TASK_TYPES: Final = ("generate_banner", "update_profile", "enrich_media")
MEDIA_TYPES: Final = ("image", "video", "audio")
ANNOTATION_PARENT_TYPES: Final = ("message", "post", "annotation")

#: Constraint names for every kind. DuckDB does not keep them (it stores
#: ``<table>_<cols>_check`` and friends), but they make DDL, revisions and
#: error messages readable. ``chk_<table>_<name>`` is the legacy spelling.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "chk_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

TZ_TIMESTAMP = sa.TIMESTAMP(timezone=True)
TEXT_LIST = sa.ARRAY(sa.String())


def _one_of(column: str, values: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """``column IN (values)``, rendered with literal values in DDL."""
    return sa.column(column).in_(values)


def _document_columns() -> list[sa.Column[object]]:
    """The columns every content document shares."""
    return [
        sa.Column("id", sa.String()),
        sa.Column("content", sa.String()),
        sa.Column("created_at", TZ_TIMESTAMP),
        sa.Column("source_checksum", sa.String()),
    ]


posts = sa.Table(
    "posts",
    metadata,
    *_document_columns(),
    sa.Column("title", sa.String()),
    sa.Column("slug", sa.String()),
    sa.Column("date", sa.Date()),
    sa.Column("summary", sa.String()),
    sa.Column("authors", TEXT_LIST),
    sa.Column("tags", TEXT_LIST),
    sa.Column("status", sa.String()),
    sa.CheckConstraint(_one_of("status", POST_STATUSES), name="status"),
)

profiles = sa.Table(
    "profiles",
    metadata,
    *_document_columns(),
    sa.Column("subject_uuid", sa.String()),
    sa.Column("title", sa.String()),
    sa.Column("alias", sa.String()),
    sa.Column("summary", sa.String()),
    sa.Column("avatar_url", sa.String()),
    sa.Column("interests", TEXT_LIST),
)

media = sa.Table(
    "media",
    metadata,
    *_document_columns(),
    sa.Column("filename", sa.String()),
    sa.Column("mime_type", sa.String()),
    sa.Column("media_type", sa.String()),
    sa.Column("phash", sa.String()),
    sa.CheckConstraint(_one_of("media_type", MEDIA_TYPES), name="media_type"),
)

journals = sa.Table(
    "journals",
    metadata,
    *_document_columns(),
    sa.Column("title", sa.String()),
    sa.Column("window_start", TZ_TIMESTAMP),
    sa.Column("window_end", TZ_TIMESTAMP),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.Uuid()),
    sa.Column("task_type", sa.String()),
    sa.Column("status", sa.String()),
    sa.Column("payload", sa.JSON()),
    sa.Column("created_at", TZ_TIMESTAMP),
    sa.Column("processed_at", TZ_TIMESTAMP),
    sa.Column("error", sa.String()),
    sa.CheckConstraint(_one_of("status", TASK_STATUSES), name="status"),
    sa.CheckConstraint(_one_of("task_type", TASK_TYPES), name="task_type"),
)

annotations = sa.Table(
    "annotations",
    metadata,
    *_document_columns(),
    sa.Column("parent_id", sa.String()),
    sa.Column("parent_type", sa.String()),
    sa.Column("author_id", sa.String()),
    sa.CheckConstraint(_one_of("parent_type", ANNOTATION_PARENT_TYPES), name="parent_type"),
)

__all__ = [
    "ANNOTATION_PARENT_TYPES",
    "MEDIA_TYPES",
    "NAMING_CONVENTION",
    "POST_STATUSES",
    "TASK_STATUSES",
    "TASK_TYPES",
    "annotations",
    "journals",
    "media",
    "metadata",
    "posts",
    "profiles",
    "tasks",
]
