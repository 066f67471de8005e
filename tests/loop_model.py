"""A small schema shaped like Egregora's, and edits of it: the everyday loop's test matrix.

``model(edits)`` builds the metadata a developer would have after making
``edits`` to ``schemas.py``. The tables cover the shapes that decide how a
change runs: an FK parent (authors), a child that is also a parent and has
an index (books), a grandchild (reviews), a lone table (media), an indexed
append-only table (events) and a table without a primary key (tags).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from egregora.database import schemas

TABLES = ("authors", "books", "reviews", "media", "events", "tags", "series")

#: Clean rows every case starts from (portable SQL: DuckDB and PostgreSQL).
SEED = (
    "INSERT INTO authors (id, name, email, score) VALUES ('a1', 'Ana', 'ana@x', 3), "
    "('a2', 'Bo', 'bo@x', 1), ('a3', 'Cy', NULL, NULL)",
    "INSERT INTO books (id, author_id, editor_id, title, pages, isbn) VALUES "
    "('b1', 'a1', 'a2', 'One', 100, 'i1'), ('b2', 'a1', NULL, 'Two', 200, 'i2'), "
    "('b3', 'a2', 'a3', 'Three', NULL, NULL), ('b4', NULL, NULL, 'Four', 50, 'i4')",
    "INSERT INTO reviews (id, book_id, stars, note) VALUES ('r1', 'b1', 5, 'good'), "
    "('r2', 'b1', 4, NULL), ('r3', 'b2', 3, 'ok'), ('r4', 'b3', 1, 'bad'), "
    "('r5', NULL, 2, NULL), ('r6', 'b4', 5, 'fine')",
    "INSERT INTO media (id, filename, code, size, kind) VALUES ('m1', 'a.png', '10', 5, "
    "'image'), ('m2', 'b.png', '20', 0, 'image'), ('m3', 'c.mp4', NULL, 7, 'video'), "
    "('m4', 'd.ogg', '40', NULL, NULL)",
    "INSERT INTO events (id, created_at, body) VALUES ('e1', '2024-01-01 10:00:00', "
    "'start'), ('e2', '2024-01-02 10:00:00', 'middle'), ('e3', '2024-01-03 10:00:00', NULL)",
    "INSERT INTO tags (name, note) VALUES ('t1', 'x'), ('t2', NULL), ('t3', 'z')",
)


def model(edits: Iterable[str] = ()) -> sa.MetaData:
    """The test schema with ``edits`` applied, named by the project's naming convention."""
    e = set(edits)
    meta = sa.MetaData(naming_convention=schemas.NAMING_CONVENTION)
    _authors(meta, e)
    _books(meta, e)
    _reviews(meta, e)
    _media(meta, e)
    _events(meta, e)
    if "tags.drop" not in e:
        sa.Table(
            "tags",
            meta,
            sa.Column("name", sa.String(), primary_key="tags.pk" in e),
            sa.Column("note", sa.String()),
        )
    if "series.new" in e:
        sa.Table(
            "series",
            meta,
            sa.Column("id", sa.String(), primary_key=True),
            sa.Column("title", sa.String()),
            *_if(
                "series.rating" in e,
                sa.Column("rating", sa.Integer(), sa.CheckConstraint("rating >= 0")),
            ),
            sa.Index("ix_series_title", "title"),
        )
    return meta


def _authors(meta: sa.MetaData, e: set[str]) -> None:
    score_check = {
        "authors.score_check_changed": [sa.CheckConstraint("score >= 1", name="score_min")],
        "authors.no_score_check": [],
    }
    checks = next(
        (v for k, v in score_check.items() if k in e),
        [sa.CheckConstraint("score >= 0", name="score_min")],
    )
    sa.Table(
        "authors",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("name", sa.String(), nullable="authors.name_notnull" not in e),
        sa.Column("email", sa.String()),
        sa.Column("score", sa.Integer()),
        *_if("authors.bio" in e, sa.Column("bio", sa.String())),
        *_if(
            "authors.lang" in e,
            sa.Column("lang", sa.String(), nullable=False, server_default="en"),
        ),
        *checks,
        *_if("authors.name_check" in e, sa.CheckConstraint("length(name) > 0", name="name_len")),
        *_if("authors.email_unique" in e, sa.UniqueConstraint("email")),
    )


def _books(meta: sa.MetaData, e: set[str]) -> None:
    sa.Table(
        "books",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column(
            "author_id",
            sa.String(),
            *_if("books.no_author_fk" not in e, sa.ForeignKey("authors.id")),
        ),
        sa.Column(
            "editor_id", sa.String(), *_if("books.editor_fk" in e, sa.ForeignKey("authors.id"))
        ),
        sa.Column(
            "title",
            sa.Text() if "books.title_text" in e else sa.String(),
            nullable="books.title_notnull" not in e,
        ),
        *_if(
            "books.pages_drop" not in e,
            sa.Column("pages", sa.BigInteger() if "books.pages_bigint" in e else sa.Integer()),
        ),
        sa.Column("isbn", sa.String()),
        *_if(
            "books.no_isbn_index" not in e,
            sa.Index("ix_books_isbn", "isbn", unique="books.isbn_unique_index" in e),
        ),
    )


def _reviews(meta: sa.MetaData, e: set[str]) -> None:
    stars_type: sa.types.TypeEngine[int] = (
        sa.SmallInteger() if "reviews.stars_smallint" in e else sa.Integer()
    )
    sa.Table(
        "reviews",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("book_id", sa.String(), sa.ForeignKey("books.id")),
        sa.Column(
            "stars",
            stars_type,
            *_if("reviews.stars_check_col" in e, sa.CheckConstraint("stars BETWEEN 1 AND 5")),
        ),
        *_if("reviews.note_drop" not in e, sa.Column("note", sa.String())),
    )


def _media(meta: sa.MetaData, e: set[str]) -> None:
    sa.Table(
        "media",
        meta,
        sa.Column("id", sa.String(), primary_key="media.no_pk" not in e),
        sa.Column("filename", sa.String(), nullable="media.filename_notnull" not in e),
        sa.Column("code", sa.Integer() if "media.code_int" in e else sa.String()),
        sa.Column(
            "size",
            sa.Integer(),
            *_if("media.size_check_col" in e, sa.CheckConstraint("size >= 0")),
            comment="bytes" if "media.size_comment" in e else None,
        ),
        sa.Column(
            "kind", sa.String(), server_default="image" if "media.kind_default" in e else None
        ),
        *_if(
            "media.language" in e,
            sa.Column(
                "language",
                sa.String(),
                sa.CheckConstraint("language IN ('en', 'pt', 'es')", name="language"),
            ),
        ),
        *_if(
            "media.lang_nn_check" in e,
            sa.Column(
                "lang",
                sa.String(),
                sa.CheckConstraint("length(lang) = 2", name="lang_len"),
                nullable=False,
                server_default="en",
            ),
        ),
        *_if("media.book_fk" in e, sa.Column("book_id", sa.String(), sa.ForeignKey("books.id"))),
        *_if(
            "media.filename_unique_index" in e,
            sa.Index("ux_media_filename", "filename", unique=True),
        ),
        *_if("media.kind_index" in e, sa.Index("ix_media_kind", "kind")),
        *_if(
            "media.generated" in e,
            sa.Column("big", sa.Integer(), sa.Computed("size * 1000")),
        ),
    )


def _events(meta: sa.MetaData, e: set[str]) -> None:
    sa.Table(
        "events",
        meta,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("created_at", sa.TIMESTAMP()),
        *_if("events.body_drop" not in e, sa.Column("body", sa.String())),
        *_if("events.source" in e, sa.Column("source", sa.String())),
        *_if("events.body_check" in e, sa.CheckConstraint("length(body) > 0", name="body")),
        sa.Index("ix_events_created_at", "created_at"),
        info={schemas.APPEND_ONLY: True},
    )


def _if(condition: bool, *items: object) -> list[object]:
    return list(items) if condition else []


@dataclass(frozen=True)
class Edit:
    """One model edit of the matrix, and what it must do on a database with rows."""

    after: tuple[str, ...]
    #: SQL that plants rows the edit's new rule rejects (none: the edit can't trip)
    violate: tuple[str, ...] = ()
    #: what the refusal must name (a rule kind: CHECK, NOT NULL, UNIQUE...)
    refusal: str = ""
    #: SQL that must fail once the edit is applied: the new rule holds
    refused_after: str = ""
    #: SQL that must work once the edit is applied
    works_after: str = ""
    before: tuple[str, ...] = ()
    #: run on PostgreSQL too, generated against each engine
    postgresql: bool = False
    #: what autogenerate must write in the upgrade
    writes: tuple[str, ...] = field(default=())
