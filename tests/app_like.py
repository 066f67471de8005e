"""The Egregora application's writes and reads, done the way it does them, in our own code.

Read from the app's public source (franklinbaldo/egregora, mid-January 2026,
commit 12119c12c: ``database/duckdb_manager.py``, ``profile_cache.py``,
``repository.py``, ``task_store.py``, ``agents/shared/annotations``), and
written here anew: one ibis DuckDB backend per file, whose raw ``duckdb``
connection (``backend.con``) takes the statements the app sends raw.

- Caches: ``replace_rows`` = raw ``DELETE ... WHERE id = ?`` then
  ``backend.insert(table, ibis.memtable([row]))``, once per profile or post
  file, each statement on its own (autocommit).
- Repository saves: ``backend.insert(table, [row])``.
- Tasks: ``backend.insert("tasks", [row])`` with a text UUID and a JSON text
  payload; status updates by a raw ``UPDATE tasks SET status = ?, ...``.
- Annotations: ``backend.insert("annotations", ibis.memtable([row]))``. (The
  app's own row names the author ``author`` where the table has ``author_id``;
  ibis then inserts by position, which fails on V3 as on head. Here the row
  uses the table's name, as the app means.)
- Reads: ``backend.table(...)`` filters, raw ``SELECT * FROM documents_view``.

On head, what the app must change (docs/app-on-head.md): a post's authors go
to ``post_authors`` rows (``write_post_authors``), and the profile-posts
lookup reads ``posts_with_authors`` instead of ``posts``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pandas as pd

ANNOTATION_AUTHOR = "egregora"  # the app's default annotation author


class AppLike:
    """An ibis DuckDB backend on one file, and the app's operations over it."""

    def __init__(self, path: Path) -> None:
        self.backend = ibis.duckdb.connect(database=str(path), read_only=False)
        self.raw = self.backend.con

    def close(self) -> None:
        self.backend.disconnect()

    # -- writes -----------------------------------------------------------------

    def replace_rows(self, table: str, row: dict[str, Any], key: str = "id") -> None:
        """The app's upsert: DELETE by key, then INSERT the new row (two statements)."""
        self.raw.execute(f'DELETE FROM "{table}" WHERE "{key}" = ?', [row[key]])
        self.backend.insert(table, ibis.memtable([row]))

    def cache_profile(self, author_uuid: str, meta: dict[str, Any]) -> None:
        """scan_and_cache_profiles, for one profile file."""
        content = f"---\nalias: {meta.get('alias', '')}\n---\n{meta.get('bio', '')}"
        self.replace_rows(
            "profiles",
            {
                "id": author_uuid,
                "content": content,
                "created_at": datetime.now(UTC),
                "source_checksum": str(hash(content)),
                "subject_uuid": author_uuid,
                "title": meta.get("alias", meta.get("name", author_uuid)),
                "alias": meta.get("alias", ""),
                "summary": meta.get("bio", ""),
                "avatar_url": meta.get("avatar", ""),
                "interests": meta.get("interests", []),
            },
        )

    def post_row(self, slug: str, meta: dict[str, Any]) -> dict[str, Any]:
        """scan_and_cache_posts' row for one post file, without V3's authors list."""
        return {
            "id": slug,
            "content": f"# {meta.get('title', '')}",
            "created_at": datetime.now(UTC),
            "source_checksum": slug,
            "title": meta.get("title", ""),
            "slug": slug,
            "date": meta.get("date"),
            "summary": meta.get("description", ""),
            "tags": meta.get("tags", []),
            "status": meta.get("status", "published"),
        }

    def cache_post(self, slug: str, meta: dict[str, Any], authors: list[str]) -> None:
        """scan_and_cache_posts on head: the post row, then its authors as rows."""
        self.replace_rows("posts", self.post_row(slug, meta))
        self.write_post_authors(slug, authors)

    def write_post_authors(self, post_id: str, authors: list[str]) -> None:
        """The one write the app adds on head: a post's authors, replaced, in order."""
        self.raw.execute("DELETE FROM post_authors WHERE post_id = ?", [post_id])
        if authors:
            rows = [
                {"post_id": post_id, "position": n, "profile_id": a}
                for n, a in enumerate(authors, start=1)
            ]
            self.backend.insert("post_authors", ibis.memtable(rows))

    def save(self, table: str, row: dict[str, Any]) -> None:
        """ContentRepository.save: one row into the document type's table."""
        self.backend.insert(table, [row])

    def enqueue(self, task_type: str, payload: dict[str, Any]) -> str:
        """TaskStore.enqueue."""
        task_id = str(uuid.uuid4())
        row = {
            "task_id": task_id,
            "task_type": task_type,
            "status": "pending",
            "payload": json.dumps(payload),
            "created_at": datetime.now(UTC),
            "processed_at": None,
            "error": None,
        }
        self.backend.insert("tasks", [row])
        return task_id

    def update_status(self, task_id: str, status: str, error: str | None = None) -> None:
        """TaskStore._update_status (mark_completed, mark_failed, mark_superseded)."""
        self.raw.execute(
            'UPDATE "tasks" SET status = ?, processed_at = ?, error = ? WHERE task_id = ?',
            [status, datetime.now(UTC), error, task_id],
        )

    def save_annotation(self, parent_id: str, parent_type: str, text: str, author: str) -> str:
        """AnnotationStore.save_annotation (author under the table's column name)."""
        annotation_id = str(uuid.uuid4())
        row = {
            "id": annotation_id,
            "parent_id": parent_id,
            "parent_type": parent_type,
            "author_id": author,
            "content": text,
            "created_at": datetime.now(UTC),
            "source_checksum": "manual",
        }
        self.backend.insert("annotations", ibis.memtable([row]))
        return annotation_id

    def annotation_store_startup(self) -> None:
        """AnnotationStore._initialize_schema on an existing table: a PRIMARY KEY
        (refused, there is one: the app logs and goes on) and its own index."""
        with contextlib.suppress(duckdb.Error):  # the app catches it and logs it
            self.raw.execute('ALTER TABLE annotations ADD CONSTRAINT "pk" PRIMARY KEY (id)')
        self.backend.raw_sql(
            "CREATE INDEX IF NOT EXISTS idx_annotations_parent_created "
            "ON annotations (parent_id, parent_type, created_at)"
        )

    # -- reads ------------------------------------------------------------------

    def fetch_pending(self, task_type: str | None = None) -> list[dict[str, Any]]:
        t = self.backend.table("tasks")
        query = t.filter(t.status == "pending")
        if task_type:
            query = query.filter(t.task_type == task_type)
        return query.order_by(t.created_at).limit(100).execute().to_dict(orient="records")

    def profile_posts(self, author_uuid: str, table: str = "posts_with_authors") -> list[str]:
        """get_profile_posts_from_db: the slugs of the posts that list the author."""
        t = self.backend.table(table)
        result = t.filter(t.authors.contains(author_uuid)).execute()
        return [str(slug) for slug in result["slug"]]

    def profile_content(self, author_uuid: str) -> str:
        """get_profile_from_db."""
        t = self.backend.table("profiles")
        result = t.filter(t.subject_uuid == author_uuid).execute()
        return "" if len(result) == 0 else str(result.iloc[0]["content"])

    def get(self, table: str, identifier: str) -> pd.DataFrame:
        """ContentRepository.get: by id (or slug / subject_uuid)."""
        t = self.backend.table(table)
        other = {"posts": "slug", "profiles": "subject_uuid"}.get(table)
        where = t.id == identifier
        if other:
            where = where | (t[other] == identifier)
        return t.filter(where).limit(1).execute()

    def documents(self) -> list[tuple[Any, ...]]:
        """ContentRepository.get_all: the unified view, raw."""
        return self.raw.execute("SELECT * FROM documents_view").fetchall()

    def documents_by_ibis(self) -> list[dict[str, Any]]:
        """ContentRepository.list(): the unified view through ibis."""
        return self.backend.table("documents_view").execute().to_dict(orient="records")


def today() -> date:
    return datetime.now(UTC).date()
