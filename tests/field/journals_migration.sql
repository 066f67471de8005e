-- The helper-built V3 file after the journals migration the application ran itself.
-- app: franklinbaldo/egregora 806193bf1 (2026-01-17, "feat: Add schema evolution plan and
--   journal constraints", pull request 2599)
-- made by: as helper_v3, then src/egregora/database/migrations.py
--   migrate_journals_table(conn): journals rebuilt (create, copy, swap) with
--   CHECK (window_end >= window_start), V4's own first rule
-- Measured by running the application's own code at that commit in a scratch
-- environment (Python 3.11, duckdb 1.4.3 and ibis-framework 11.0.0, the versions its
-- uv.lock pins), then reading what DuckDB stored: duckdb_sequences().sql,
-- duckdb_tables().sql, duckdb_indexes().sql, duckdb_views().sql, replayed below in an
-- order that recreates them (DuckDB 2.0 stores the same text: tests/test_field_files.py).
-- The rows are ours, in the shapes the application writes (see docs/field-files.md),
-- with messy ones (legacy-v3.md's kinds) where this variant's own constraints let them in.

-- the DDL, as DuckDB stored it
CREATE TABLE annotations(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, parent_id VARCHAR, parent_type VARCHAR, author_id VARCHAR, CHECK((parent_type IN ('message', 'post', 'annotation'))));
CREATE TABLE journals(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, title VARCHAR, window_start TIMESTAMP WITH TIME ZONE, window_end TIMESTAMP WITH TIME ZONE, CHECK((window_end >= window_start)));
CREATE TABLE media(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, filename VARCHAR, mime_type VARCHAR, media_type VARCHAR, phash VARCHAR, CHECK((media_type IN ('image', 'video', 'audio'))));
CREATE TABLE posts(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, title VARCHAR, slug VARCHAR, date DATE, summary VARCHAR, authors VARCHAR[], tags VARCHAR[], status VARCHAR, CHECK((status IN ('draft', 'published', 'archived'))));
CREATE TABLE profiles(id VARCHAR, "content" VARCHAR, created_at TIMESTAMP WITH TIME ZONE, source_checksum VARCHAR, subject_uuid VARCHAR, title VARCHAR, alias VARCHAR, summary VARCHAR, avatar_url VARCHAR, interests VARCHAR[]);
CREATE TABLE tasks(task_id UUID, task_type VARCHAR, status VARCHAR, payload JSON, created_at TIMESTAMP WITH TIME ZONE, processed_at TIMESTAMP WITH TIME ZONE, "error" VARCHAR, CHECK((status IN ('pending', 'processing', 'completed', 'failed', 'superseded'))), CHECK((task_type IN ('generate_banner', 'update_profile', 'enrich_media'))));
CREATE VIEW documents_view AS ((((SELECT id, 'post' AS "type", "content", created_at, title, slug, NULL AS subject_uuid FROM posts) UNION ALL (SELECT id, 'profile' AS "type", "content", created_at, title, NULL AS slug, subject_uuid FROM profiles)) UNION ALL (SELECT id, 'journal' AS "type", "content", created_at, title, NULL AS slug, NULL AS subject_uuid FROM journals)) UNION ALL (SELECT id, 'media' AS "type", "content", created_at, NULL AS title, NULL AS slug, NULL AS subject_uuid FROM media)) UNION ALL (SELECT id, 'annotation' AS "type", "content", created_at, NULL AS title, NULL AS slug, NULL AS subject_uuid FROM annotations);

-- rows
INSERT INTO profiles (id, "content", created_at, source_checksum, subject_uuid, title, alias, summary, avatar_url, interests) VALUES ('5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', '---
alias: Ana
bio: Olá!
---
', TIMESTAMPTZ '2025-12-30 21:00:00+00', 'c1', '5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', 'Ana', 'Ana', 'Olá!', '', ['cats', '☕']);
INSERT INTO profiles (id, "content", created_at, source_checksum, subject_uuid, title, alias, summary, avatar_url, interests) VALUES ('0b9e8d7c-6f5a-4b3c-8d2e-1f0a9b8c7d6e', '---
name: Bruno O''Brien
---
', TIMESTAMPTZ '2025-12-30 21:00:01+00', 'c2', '0b9e8d7c-6f5a-4b3c-8d2e-1f0a9b8c7d6e', 'Bruno O''Brien', '', '', '', []);
INSERT INTO profiles (id, "content", created_at, source_checksum, subject_uuid, title, alias, summary, avatar_url, interests) VALUES ('e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f', '中文内容，标点。', TIMESTAMPTZ '2025-12-30 21:00:02+00', NULL, 'e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f', 'ユーザー', NULL, NULL, NULL, NULL);
INSERT INTO profiles (id, "content", created_at, source_checksum, subject_uuid, title, alias, summary, avatar_url, interests) VALUES ('empty-title-profile', '', TIMESTAMPTZ '2026-01-02 00:00:00+00', NULL, 'empty-title-profile', '', '', '', '', []);
INSERT INTO profiles (id, "content", created_at, source_checksum, subject_uuid, title, alias, summary, avatar_url, interests) VALUES ('e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f', 'a second copy of the same profile', TIMESTAMPTZ '2026-01-10 00:00:00+00', 'c3b', 'e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f', 'ユーザー (new)', NULL, NULL, NULL, ['新']);
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('ola-mundo', '---
title: Olá, mundo
---
# Olá 👋
«quotes» "double" back\slash
改行', TIMESTAMPTZ '2025-12-30 21:14:05.123456+00', '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'Olá, mundo', 'ola-mundo', DATE '2025-12-30', '', ['5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', '0b9e8d7c-6f5a-4b3c-8d2e-1f0a9b8c7d6e'], ['intro', '🎉'], 'published');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('rascunho', 'draft body
with CRLF	and tab', TIMESTAMPTZ '2026-01-02 08:00:00+05:30', NULL, 'Rascunho', 'rascunho', NULL, NULL, NULL, [], 'draft');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('日本語の記事', '日本語のテキスト 𠜎𠜱', TIMESTAMPTZ '2026-01-03 23:59:59.999999-03', 'e3b0c442', '日本語の記事', '日本語の記事', DATE '2024-02-29', '''; DROP TABLE posts; --', ['e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f'], NULL, 'archived');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('repeated-post', 'first version', TIMESTAMPTZ '2026-01-05 10:00:00+00', 'a', 'Repeated', 'repeated-post', NULL, NULL, ['0b9e8d7c-6f5a-4b3c-8d2e-1f0a9b8c7d6e'], [], 'published');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('repeated-post', 'second version, newer', TIMESTAMPTZ '2026-01-06 10:00:00+00', 'b', 'Repeated', 'repeated-post', NULL, NULL, ['0b9e8d7c-6f5a-4b3c-8d2e-1f0a9b8c7d6e'], [], 'published');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('no-title', '', TIMESTAMPTZ '2026-01-07 10:00:00+00', NULL, NULL, 'no-title', NULL, NULL, [], [], 'draft');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('ghost-author', 'by nobody we know', TIMESTAMPTZ '2026-01-08 10:00:00+00', NULL, 'Ghost', 'ghost-author', NULL, NULL, ['99999999-0000-4000-8000-000000000000'], [], 'published');
INSERT INTO posts (id, "content", created_at, source_checksum, title, slug, date, summary, authors, tags, status) VALUES ('twice-the-same-author', 'x', TIMESTAMPTZ '2026-01-09 10:00:00+00', NULL, 'Twice', 'twice-the-same-author', NULL, NULL, ['5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f', '5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f'], [], 'published');
INSERT INTO media (id, "content", created_at, source_checksum, filename, mime_type, media_type, phash) VALUES ('m-photo', NULL, TIMESTAMPTZ '2026-01-02 12:00:00+00', 'm1', 'IMG-20260102-WA0001.jpg', 'image/jpeg', 'image', 'f0e1d2c3b4a59687');
INSERT INTO media (id, "content", created_at, source_checksum, filename, mime_type, media_type, phash) VALUES ('m-voice', NULL, TIMESTAMPTZ '2026-01-02 12:01:00+00', 'm2', 'PTT-20260102-WA0002.opus', 'audio/ogg', 'audio', NULL);
INSERT INTO media (id, "content", created_at, source_checksum, filename, mime_type, media_type, phash) VALUES ('m-unenriched', NULL, TIMESTAMPTZ '2026-01-02 12:02:00+00', NULL, 'VID-20260102-WA0003.mp4', 'video/mp4', NULL, NULL);
INSERT INTO media (id, "content", created_at, source_checksum, filename, mime_type, media_type, phash) VALUES ('m-photo-again', NULL, TIMESTAMPTZ '2026-01-04 12:00:00+00', 'm1b', 'IMG-20260104-WA0009.jpg', 'image/jpeg', 'image', 'f0e1d2c3b4a59687');
INSERT INTO journals (id, "content", created_at, source_checksum, title, window_start, window_end) VALUES ('j-2025-12-30', '# Journal

- item *one*', TIMESTAMPTZ '2025-12-31 00:00:00+00', NULL, '2025-12-30 20:00 to 23:59', TIMESTAMPTZ '2025-12-30 20:00:00+00', TIMESTAMPTZ '2025-12-30 23:59:59+00');
INSERT INTO journals (id, "content", created_at, source_checksum, title, window_start, window_end) VALUES ('j-open', 'window still open', TIMESTAMPTZ '2026-01-01 00:00:00+00', NULL, NULL, TIMESTAMPTZ '2026-01-01 00:00:00+00', NULL);
INSERT INTO journals (id, "content", created_at, source_checksum, title, window_start, window_end) VALUES ('j-undated', 'no created_at', NULL, NULL, 'undated', NULL, NULL);
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('3f1e2d3c-4b5a-4697-8a9b-0c1d2e3f4a5b', 'generate_banner', 'pending', '{"post_slug": "ola-mundo", "prompt": "Ol\u00e1 \ud83d\udc4b"}', TIMESTAMPTZ '2026-01-02 09:00:00+00', NULL, NULL);
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d', 'update_profile', 'completed', '{"author_uuid": "5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f", "content": {"nested": [1, null, "\u00df"]}}', TIMESTAMPTZ '2026-01-02 09:01:00+00', TIMESTAMPTZ '2026-01-02 09:05:00+00', NULL);
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES ('1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e', 'enrich_media', 'failed', '{"media_id": "m-photo"}', TIMESTAMPTZ '2026-01-02 09:02:00+00', TIMESTAMPTZ '2026-01-02 09:03:00+00', '429 RESOURCE_EXHAUSTED
retry later');
INSERT INTO tasks (task_id, task_type, status, payload, created_at, processed_at, "error") VALUES (NULL, 'generate_banner', 'pending', '{}', TIMESTAMPTZ '2026-01-03 11:00:00+00', NULL, NULL);
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('1', 'Notei que ele sempre responde com 🎉', TIMESTAMPTZ '2025-12-30 21:30:00+00', 'manual', 'msg-0001', 'message', NULL);
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('2', 'Follow-up on the note above', TIMESTAMPTZ '2025-12-30 21:31:00+00', 'manual', '1', 'annotation', NULL);
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('a5b6c7d8-0000-4000-8000-00000000000a', 'on a post', TIMESTAMPTZ '2026-01-05 10:00:00+00', 'manual', NULL, 'post', '5f2c1d3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f');
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('a5b6c7d8-0000-4000-8000-00000000000c', 'by an author with no profile', TIMESTAMPTZ '2026-01-05 10:02:00+00', NULL, NULL, 'message', '99999999-0000-4000-8000-000000000000');
INSERT INTO annotations (id, "content", created_at, source_checksum, parent_id, parent_type, author_id) VALUES ('1', 'the same id again', TIMESTAMPTZ '2026-01-06 10:00:00+00', NULL, 'msg-0002', 'message', NULL);
-- rows of the common set this variant's own constraints refuse, left out:
-- left out (Constraint Error: CHECK constraint failed on table "posts" with expression CHECK((status I): posts status-typo
-- left out (Constraint Error: CHECK constraint failed on table "media" with expression CHECK((media_ty): media m-pdf
-- left out (Constraint Error: CHECK constraint failed on table "journals" with expression CHECK((windo): journals j-inverted
-- left out (Constraint Error: CHECK constraint failed on table "tasks" with expression CHECK((task_typ): tasks c0ffee00-1234-4567-89ab-cdef01234567
-- left out (Constraint Error: CHECK constraint failed on table "tasks" with expression CHECK((status I): tasks d00d0000-1234-4567-89ab-cdef01234567
-- left out (Constraint Error: CHECK constraint failed on table "annotations" with expression CHECK((pa): annotations a5b6c7d8-0000-4000-8000-00000000000b
