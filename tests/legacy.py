"""The legacy V3 DDL, exactly as the pre-Alembic code emitted it (shared/reference)."""

from __future__ import annotations

TABLES = {
    "posts": """CREATE TABLE posts (id VARCHAR, content VARCHAR, created_at TIMESTAMP WITH TIME ZONE,
  source_checksum VARCHAR, title VARCHAR, slug VARCHAR, date DATE, summary VARCHAR,
  authors VARCHAR[], tags VARCHAR[], status VARCHAR,
  CONSTRAINT chk_posts_status CHECK (status IN ('draft', 'published', 'archived')))""",
    "profiles": """CREATE TABLE profiles (id VARCHAR, content VARCHAR, created_at TIMESTAMP WITH TIME ZONE,
  source_checksum VARCHAR, subject_uuid VARCHAR, title VARCHAR, alias VARCHAR,
  summary VARCHAR, avatar_url VARCHAR, interests VARCHAR[])""",
    "media": """CREATE TABLE media (id VARCHAR, content VARCHAR, created_at TIMESTAMP WITH TIME ZONE,
  source_checksum VARCHAR, filename VARCHAR, mime_type VARCHAR, media_type VARCHAR,
  phash VARCHAR,
  CONSTRAINT chk_media_media_type CHECK (media_type IN ('image', 'video', 'audio')))""",
    "journals": """CREATE TABLE journals (id VARCHAR, content VARCHAR, created_at TIMESTAMP WITH TIME ZONE,
  source_checksum VARCHAR, title VARCHAR, window_start TIMESTAMP WITH TIME ZONE,
  window_end TIMESTAMP WITH TIME ZONE)""",
    "tasks": """CREATE TABLE tasks (task_id UUID, task_type VARCHAR, status VARCHAR, payload JSON,
  created_at TIMESTAMP WITH TIME ZONE, processed_at TIMESTAMP WITH TIME ZONE, error VARCHAR,
  CONSTRAINT chk_tasks_status CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'superseded')),
  CONSTRAINT chk_tasks_task_type CHECK (task_type IN ('generate_banner', 'update_profile', 'enrich_media')))""",
    "annotations": """CREATE TABLE annotations (id VARCHAR, content VARCHAR, created_at TIMESTAMP WITH TIME ZONE,
  source_checksum VARCHAR, parent_id VARCHAR, parent_type VARCHAR, author_id VARCHAR,
  CONSTRAINT chk_annotations_parent_type CHECK (parent_type IN ('message', 'post', 'annotation')))""",
}

VIEW = """CREATE OR REPLACE VIEW documents_view AS
  SELECT id, 'post' AS type, content, created_at, title, slug, NULL AS subject_uuid FROM posts
  UNION ALL SELECT id, 'profile', content, created_at, title, NULL, subject_uuid FROM profiles
  UNION ALL SELECT id, 'journal', content, created_at, title, NULL, NULL FROM journals
  UNION ALL SELECT id, 'media', content, created_at, NULL, NULL, NULL FROM media
  UNION ALL SELECT id, 'annotation', content, created_at, NULL, NULL, NULL FROM annotations"""


def create(con: object, *, view: bool = True) -> None:
    """Run the legacy DDL on a ``duckdb`` connection."""
    for ddl in TABLES.values():
        con.execute(ddl)  # type: ignore[attr-defined]
    if view:
        con.execute(VIEW)  # type: ignore[attr-defined]
