"""The Egregora database schema (V4): the single source of truth.

SQLAlchemy Core metadata only. The application imports this module at run
time for its queries (``select(posts)``), so it must never import Alembic.

Column types follow the databases already in the field (legacy V3): text is
``VARCHAR``, timestamps ``TIMESTAMP WITH TIME ZONE``, lists of text
``VARCHAR[]``, plus ``DATE``, ``UUID`` and ``JSON``. V4 adds the roadmap of
docs/schema-evolution-plan.md: a PRIMARY KEY on every table, NOT NULL where
a value is required, the journal window and profile title CHECKs, UNIQUE
media hashes, and FOREIGN KEYs (post authors through ``post_authors``),
deferrable where the application replaces the rows they reference.
"""

import hashlib
from typing import Any, Final

import sqlalchemy as sa

from egregora.database import foreign_keys  # noqa: F401  (DuckDB's DDL rule for deferrable keys)

# Allowed values, shared by the CHECK constraints and the application.
POST_STATUSES: Final = ("draft", "published", "archived")
TASK_STATUSES: Final = ("pending", "processing", "completed", "failed", "superseded")
TASK_TYPES: Final = ("generate_banner", "update_profile", "enrich_media", "enrich_url")
MEDIA_TYPES: Final = ("image", "video", "audio")
ANNOTATION_PARENT_TYPES: Final = ("message", "post", "annotation")


def check_name(constraint: sa.Constraint, table: sa.Table) -> str:
    """The ``<name>`` of ``chk_<table>_<name>``: the CHECK's own name, else its column's.

    A CHECK declared on a column (``sa.Column("score", sa.Integer(),
    sa.CheckConstraint("score >= 0"))``, a common SQLAlchemy style) usually has
    no name; it is named after that column (``chk_t_score``, then
    ``chk_t_score_2``...), so that PostgreSQL, which keeps names, and the
    revisions agree on it. A nameless table-level CHECK is named after its
    expression (a stable hash). A name that already is whole
    (``chk_profiles_title_not_empty`` on profiles) is not prefixed again:
    ``op.drop_constraint("chk_profiles_title_not_empty", "profiles",
    type_="check")`` means that constraint, not ``chk_profiles_chk_profiles_...``.
    """
    if constraint.name is not None and str(constraint.name) != "_NONE_NAME":
        name, whole = str(constraint.name), f"chk_{table.name}_"
        return name[len(whole) :] if name.startswith(whole) and name != whole else name
    for column in table.columns:
        checks = [c for c in column.constraints if isinstance(c, sa.CheckConstraint)]
        if constraint in checks:
            position = checks.index(constraint)
            return column.name + (f"_{position + 1}" if position else "")
    text = str(getattr(constraint, "sqltext", ""))
    return "expr_" + hashlib.sha1(text.encode()).hexdigest()[:8]


#: Constraint names for every kind. DuckDB does not keep them (it stores
#: ``<table>_<cols>_check`` and friends), but they make DDL, revisions and
#: error messages readable. ``chk_<table>_<name>`` is the legacy spelling.
#: The ``ck`` token's name contains ``constraint_name`` on purpose: SQLAlchemy
#: applies a convention to explicitly named constraints only when it does.
NAMING_CONVENTION: Final[dict[str, Any]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "chk_%(table_name)s_%(constraint_name_or_column)s",
    "constraint_name_or_column": check_name,
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: ``Table.info`` key of the append-only tables: rows are inserted, never
#: updated or deleted ("updates are new versions"). Which tables, and why:
#:
#: - journals: a journal is the log of one time window, written when the
#:   window closes; a correction is a new journal.
#: - annotations: comments and notes; an edit is a new annotation whose
#:   parent is the old one (parent_type 'annotation').
#:
#: Not append-only, because the application changes their rows in place:
#: posts (draft -> published -> archived), tasks (pending -> processing ->
#: completed/failed/superseded), profiles (update_profile tasks rewrite them),
#: media (enrich_media fills phash and media_type later) and post_authors
#: (a post's authors can change). Enforced by triggers on PostgreSQL
#: (revision v4g) and by an opt-in engine guard on DuckDB (guard.py).
APPEND_ONLY: Final = "append_only"

TZ_TIMESTAMP = sa.TIMESTAMP(timezone=True)

#: The options of a FOREIGN KEY into a table whose rows the application
#: replaces (posts and profiles: its caches upsert them by DELETE then INSERT):
#: checked at COMMIT on PostgreSQL; left out of DuckDB's DDL, which can't
#: defer one, and checked by egregora.database.integrity (foreign_keys.py).
REPLACED_PARENT: Final[dict[str, Any]] = {"deferrable": True, "initially": "DEFERRED"}
TEXT_LIST = sa.ARRAY(sa.String())


def _one_of(column: str, values: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """``column IN (values)``, rendered with literal values in DDL."""
    return sa.column(column).in_(values)


def _document_columns() -> list[sa.Column[object]]:
    """The columns every content document shares; ``id`` is its PRIMARY KEY."""
    return [
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("content", sa.String()),
        sa.Column("created_at", TZ_TIMESTAMP, nullable=False),
        sa.Column("source_checksum", sa.String()),
    ]


posts = sa.Table(
    "posts",
    metadata,
    *_document_columns(),
    sa.Column("title", sa.String(), nullable=False),
    sa.Column("slug", sa.String()),
    sa.Column("date", sa.Date()),
    sa.Column("summary", sa.String()),
    sa.Column("tags", TEXT_LIST),
    sa.Column("status", sa.String(), nullable=False),
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
    sa.CheckConstraint("length(title) > 0", name="title_not_empty"),
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
    sa.UniqueConstraint("phash"),  # NULLs allowed: media not hashed yet
)

journals = sa.Table(
    "journals",
    metadata,
    *_document_columns(),
    sa.Column("title", sa.String()),
    sa.Column("window_start", TZ_TIMESTAMP),
    sa.Column("window_end", TZ_TIMESTAMP),
    sa.CheckConstraint("window_end >= window_start", name="window_order"),
    info={APPEND_ONLY: True},
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.Uuid(), primary_key=True),
    sa.Column("task_type", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("payload", sa.JSON()),
    sa.Column("created_at", TZ_TIMESTAMP, nullable=False),
    sa.Column("processed_at", TZ_TIMESTAMP),
    sa.Column("error", sa.String()),
    sa.CheckConstraint(_one_of("status", TASK_STATUSES), name="status"),
    sa.CheckConstraint(_one_of("task_type", TASK_TYPES), name="task_type"),
)

annotations = sa.Table(
    "annotations",
    metadata,
    *_document_columns(),
    # parent_id is polymorphic (a message, a post or an annotation, by
    # parent_type): no single table to reference, and messages live outside
    # this database, so it has no FOREIGN KEY.
    sa.Column("parent_id", sa.String()),
    sa.Column("parent_type", sa.String()),
    sa.Column("author_id", sa.String(), sa.ForeignKey("profiles.id", **REPLACED_PARENT)),
    sa.CheckConstraint(_one_of("parent_type", ANNOTATION_PARENT_TYPES), name="parent_type"),
    info={APPEND_ONLY: True},
)

#: The authors of a post, in order. DuckDB can't reference the elements of a
#: list, so this table replaces the V3 ``posts.authors`` list; the view
#: ``posts_with_authors`` gives posts in the V3 shape, ``authors`` a list again.
post_authors = sa.Table(
    "post_authors",
    metadata,
    sa.Column(
        "post_id", sa.String(), sa.ForeignKey("posts.id", **REPLACED_PARENT), primary_key=True
    ),
    sa.Column("position", sa.Integer(), primary_key=True),
    sa.Column(
        "profile_id",
        sa.String(),
        sa.ForeignKey("profiles.id", **REPLACED_PARENT),
        nullable=False,
    ),
    sa.UniqueConstraint("post_id", "profile_id"),
)

#: The append-only tables, by name, in dependency order.
APPEND_ONLY_TABLES: Final = tuple(
    table.name for table in metadata.sorted_tables if table.info.get(APPEND_ONLY)
)


def allowed_values(table: sa.Table) -> dict[str, tuple[str, ...]]:
    """``{column: values}`` of each ``column IN (...)`` CHECK of ``table``, read from the CHECKs.

    What the database enforces is what the application gets: the values come
    out of the constraints themselves, not from a second list.
    """
    found: dict[str, tuple[str, ...]] = {}
    for check in sorted(table.constraints, key=lambda c: str(c.name)):
        if not isinstance(check, sa.CheckConstraint):
            continue
        expression = check.sqltext
        if (
            isinstance(expression, sa.BinaryExpression)
            and expression.operator is sa.sql.operators.in_op
            and isinstance(expression.left, sa.ColumnClause)
            and isinstance(expression.right, sa.BindParameter)
        ):
            found[expression.left.name] = tuple(expression.right.value or ())
    return found


#: ``{table: {column: allowed values}}``: every IN-list CHECK of the schema, as data
#: (``ALLOWED_VALUES["tasks"]["task_type"]``), one source with the CHECKs.
ALLOWED_VALUES: Final = {
    table.name: values for table in metadata.sorted_tables if (values := allowed_values(table))
}

__all__ = [
    "ALLOWED_VALUES",
    "ANNOTATION_PARENT_TYPES",
    "APPEND_ONLY",
    "APPEND_ONLY_TABLES",
    "MEDIA_TYPES",
    "NAMING_CONVENTION",
    "POST_STATUSES",
    "REPLACED_PARENT",
    "TASK_STATUSES",
    "TASK_TYPES",
    "allowed_values",
    "annotations",
    "check_name",
    "journals",
    "media",
    "metadata",
    "post_authors",
    "posts",
    "profiles",
    "tasks",
]
