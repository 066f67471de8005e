-- A file of the later unified-documents lineage: content lives in documents.
-- app: franklinbaldo/egregora 16c5e75ff (2026-01-25, main, "Merge pull request #2843")
-- made by: the start-up of orchestration/factory.py: initialize_database() (documents
--   with PRIMARY KEY and its per-kind CHECKs, tasks, messages, annotations referencing
--   documents); ContentRepository writes documents (doc_type says the kind); no posts,
--   profiles, media or journals table any more.
-- Measured by running the application's own code at that commit in a scratch
-- environment (Python 3.11, duckdb 1.4.3 and ibis-framework 11.0.0, the versions its
-- uv.lock pins), then reading what DuckDB stored: duckdb_sequences().sql,
-- duckdb_tables().sql, duckdb_indexes().sql, duckdb_views().sql, replayed below in an
-- order that recreates them (DuckDB 2.0 stores the same text: tests/test_field_files.py).
-- The rows are ours, in the shapes the application writes (see docs/field-files.md),
-- with messy ones (legacy-v3.md's kinds) where this variant's own constraints let them in.

-- the DDL, as DuckDB stored it
CREATE TABLE documents(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, title VARCHAR, slug VARCHAR, date DATE, summary VARCHAR, authors VARCHAR[], tags VARCHAR[], status VARCHAR, subject_uuid VARCHAR, alias VARCHAR, avatar_url VARCHAR, interests VARCHAR[], filename VARCHAR, mime_type VARCHAR, media_type VARCHAR, phash VARCHAR, window_start TIMESTAMP WITH TIME ZONE, window_end TIMESTAMP WITH TIME ZONE, doc_type VARCHAR, "extensions" JSON, PRIMARY KEY(id), CHECK(((doc_type != 'post') OR ((title IS NOT NULL) AND (slug IS NOT NULL) AND (status IS NOT NULL)))), CHECK(((doc_type != 'post') OR (status IN ('draft', 'published', 'archived')))), CHECK(((doc_type != 'profile') OR ((title IS NOT NULL) AND (subject_uuid IS NOT NULL)))), CHECK(((doc_type != 'journal') OR ((title IS NOT NULL) AND (window_start IS NOT NULL) AND (window_end IS NOT NULL)))), CHECK(((doc_type != 'media') OR (filename IS NOT NULL))), CHECK(((doc_type != 'media') OR (media_type IN ('image', 'video', 'audio')))));
CREATE TABLE messages(event_id VARCHAR, tenant_id VARCHAR, "source" VARCHAR, thread_id VARCHAR, msg_id VARCHAR, ts TIMESTAMP WITH TIME ZONE, author_raw VARCHAR, author_uuid VARCHAR, "text" VARCHAR, media_url VARCHAR, media_type VARCHAR, attrs JSON, pii_flags JSON, created_at TIMESTAMP WITH TIME ZONE, created_by_run VARCHAR);
CREATE TABLE tasks(task_id UUID, task_type VARCHAR, status VARCHAR, payload JSON, created_at TIMESTAMP WITH TIME ZONE, processed_at TIMESTAMP WITH TIME ZONE, "error" VARCHAR, CHECK((status IN ('pending', 'processing', 'completed', 'failed', 'superseded'))), CHECK((task_type IN ('generate_banner', 'update_profile', 'enrich_media', 'enrich_url'))));
CREATE TABLE annotations(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, parent_id VARCHAR, parent_type VARCHAR, author_id VARCHAR, FOREIGN KEY (parent_id) REFERENCES documents(id), CHECK((parent_type IN ('message', 'post', 'annotation'))), PRIMARY KEY(id));
CREATE INDEX idx_annotations_parent_created ON annotations(parent_id, parent_type, created_at);
CREATE INDEX idx_messages_author ON messages(author_uuid);
CREATE UNIQUE INDEX idx_messages_pk ON messages(event_id);
CREATE INDEX idx_messages_thread ON messages(thread_id);
CREATE INDEX idx_messages_ts ON messages(ts);

-- rows
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('3f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b', 'generate_banner', 'pending', '{"post_slug": "ola-mundo", "prompt": "Ol\u00e1 \ud83d\udc4b"}', TIMESTAMPTZ '2026-01-02 09:00:00+00', NULL, NULL);
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d', 'update_profile', 'completed', '{"author_uuid": "5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f", "content": {"nested": [1, null, "\u00df"]}}', TIMESTAMPTZ '2026-01-02 09:01:00+00', TIMESTAMPTZ '2026-01-02 09:05:00+00', NULL);
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e', 'enrich_media', 'failed', '{"media_id": "m-photo"}', TIMESTAMPTZ '2026-01-02 09:02:00+00', TIMESTAMPTZ '2026-01-02 09:03:00+00', '429 RESOURCE_EXHAUSTED
retry later');
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('c0ffee00-1234-4567-89ab-cdef01234567', 'enrich_url', 'pending', '{"url": "https://example.org/a?b=c&d"}', TIMESTAMPTZ '2026-01-21 10:00:00+00', NULL, NULL);
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES (NULL, 'generate_banner', 'pending', '{}', TIMESTAMPTZ '2026-01-03 11:00:00+00', NULL, NULL);
INSERT INTO documents (id, "content", created_at, title, slug, status, doc_type, authors) VALUES ('ola-mundo', '# Olá 👋', TIMESTAMPTZ '2026-01-25 10:00:00+00', 'Olá, mundo', 'ola-mundo', 'published', 'post', ['5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f']);
INSERT INTO documents (id, "content", created_at, title, subject_uuid, doc_type, status) VALUES ('5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', '---
alias: Ana
---', TIMESTAMPTZ '2026-01-25 10:00:00+00', 'Ana', '5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', 'profile', 'published');
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('a5b6c7d8-0000-4000-8000-00000000000a', 'on a post', TIMESTAMPTZ '2026-01-05 10:00:00+00', 'manual', NULL, 'post', '5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f');
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('a5b6c7d8-0000-4000-8000-00000000000c', 'by an author with no profile', TIMESTAMPTZ '2026-01-05 10:02:00+00', NULL, NULL, 'message', '99999999-0000-4000-8000-000000000000');
INSERT INTO messages (event_id, tenant_id, "source", thread_id, msg_id, ts, author_raw, author_uuid, "text", media_url, media_type, attrs, pii_flags, created_at, created_by_run) VALUES ('ev-1', 'default', 'whatsapp', 't-1', 'msg-0001', TIMESTAMPTZ '2025-12-30 20:01:00+00', '+55 11 99999-0000', '5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', 'Olá 👋 tudo bem?', NULL, NULL, '{"reply_to": null}', NULL, TIMESTAMPTZ '2025-12-30 21:00:00+00', 'run-1');
INSERT INTO messages (event_id, tenant_id, "source", thread_id, msg_id, ts, author_raw, author_uuid, "text", media_url, media_type, attrs, pii_flags, created_at, created_by_run) VALUES ('ev-2', 'default', 'whatsapp', 't-1', 'msg-0002', TIMESTAMPTZ '2025-12-30 20:02:00+00', 'Bruno', '0b9e8d7c-6f5a-4b3c-8d2e-1f0a9b8c7d6e', NULL, 'IMG-20260102-WA0001.jpg', 'image', NULL, '["phone"]', TIMESTAMPTZ '2025-12-30 21:00:00+00', 'run-1');
-- rows of the common set this variant's own constraints refuse, left out:
-- left out (Constraint Error: CHECK constraint failed on table "tasks" with expression CHECK((status I): tasks d00d0000-1234-4567-89ab-cdef01234567
-- left out (Constraint Error: Violates foreign key constraint because key "id: msg-0001" does not exis): annotations 1
-- left out (Constraint Error: Violates foreign key constraint because key "id: 1" does not exist in th): annotations 2
-- left out (Constraint Error: CHECK constraint failed on table "annotations" with expression CHECK((pa): annotations a5b6c7d8-0000-4000-8000-00000000000b
-- left out (Constraint Error: Violates foreign key constraint because key "id: msg-0002" does not exis): annotations 1
