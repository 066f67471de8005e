"""The Egregora application's writes and reads work on head (issue 21, item 4).

Each file of ``tests/upgraded_files.py`` (the field corpus plugs in there)
is upgraded to head, then written and read through ibis over DuckDB as the
app does it (``tests/app_like.py``): its start-up caches (DELETE then INSERT
of profiles and posts that other rows reference: the case that crashed on
V4's FOREIGN KEYs), a profile's interests updated in place, repository
saves, task enqueue of all four types and status updates, annotation saves,
the unified view and the profile-posts lookup. Every write that head
refuses is one a V4 rule refuses on purpose, named below, and V3 took it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest
from alembic.util import CommandError

from alembic import command
from egregora.database import schemas
from egregora.database.integrity import foreign_key_violations

from . import legacy
from .app_like import ANNOTATION_AUTHOR, AppLike
from .conftest import alembic_cfg
from .upgraded_files import BUILDERS, NEEDS

pytestmark = pytest.mark.e2e  # the application's paths on every upgraded file

ANA, BO, CY = (f"{n}-{'0' * 8}-0000-0000-0000-{'0' * 11}{i}" for i, n in enumerate("abc", 1))
DOCUMENT_TABLES = ("posts", "profiles", "journals", "media", "annotations")


@pytest.fixture(scope="module")
def upgraded_originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each builder's file, upgraded once per module: tests write on copies."""
    return {}


@pytest.fixture(params=sorted(BUILDERS))
def upgraded_file(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    upgraded_originals: dict[str, Path],
) -> Path:
    """A V3 file from ``BUILDERS``, upgraded to head (what V4 refuses quarantined)."""
    name = request.param
    if name not in upgraded_originals:
        original = tmp_path_factory.mktemp("upgraded") / f"{name}.duckdb"
        BUILDERS[name](original)
        options = {"on_violation": "quarantine", **NEEDS.get(name, {})}
        command.upgrade(alembic_cfg(f"duckdb:///{original}", **options), "head")
        upgraded_originals[name] = original
    path = tmp_path / f"{name}.duckdb"
    shutil.copyfile(upgraded_originals[name], path)
    return path


@pytest.fixture
def app(upgraded_file: Path) -> Iterator[AppLike]:
    app = AppLike(upgraded_file)
    yield app
    app.close()


def count(app: AppLike, table: str) -> int:
    return int(one(app, f'SELECT count(*) FROM "{table}"')[0])


def one(app: AppLike, sql: str, params: list[Any] | None = None) -> tuple[Any, ...]:
    """The first row (fetched whole: DuckDB 2 keeps a half-read result open, and then
    refuses the next statement on the connection, ibis's included)."""
    rows = app.raw.execute(sql, params or []).fetchall()
    return tuple(rows[0]) if rows else ()


def referenced(app: AppLike) -> tuple[str | None, str | None]:
    """A profile and a post of the file that other rows reference, if any."""
    profile = one(
        app,
        "SELECT profile_id FROM post_authors INTERSECT SELECT author_id FROM annotations "
        "ORDER BY 1 LIMIT 1",
    )
    post = one(app, "SELECT post_id FROM post_authors ORDER BY 1 LIMIT 1")
    return (profile[0] if profile else None), (post[0] if post else None)


def test_startup_caches_replace_referenced_profiles_and_posts(app: AppLike) -> None:
    app.annotation_store_startup()
    old_profile, old_post = referenced(app)
    for author, alias in ((ANA, "Ana"), (BO, "Bo 🎉"), (CY, "Cy O'Brien")):
        app.cache_profile(author, {"alias": alias, "interests": ["chess", "日本語"]})
    app.cache_post("hello", {"title": "Olá", "tags": ["a"]}, [ANA, BO])
    app.save_annotation("msg-1@wa", "message", "a note", ANA)
    app.save_annotation("hello", "post", "on the post", BO)
    # the second start-up replaces rows that post_authors and annotations reference
    app.cache_profile(ANA, {"alias": "Ana B.", "interests": ["go"]})
    app.cache_post("hello", {"title": "Olá!", "tags": ["a", "b"]}, [BO, ANA, CY])
    references = (
        "SELECT (SELECT count(*) FROM post_authors WHERE profile_id = ?) "
        "+ (SELECT count(*) FROM annotations WHERE author_id = ?)"
    )
    if old_profile is not None:  # a profile the V3 data references, cached again
        held = one(app, references, [old_profile, old_profile])
        app.cache_profile(old_profile, {"alias": "from the file", "interests": ["x"]})
        assert one(app, references, [old_profile, old_profile]) == held != (0,)
        assert one(app, "SELECT title FROM profiles WHERE id = ?", [old_profile]) == (
            "from the file",
        )
    if old_post is not None:
        authors = one(app, "SELECT authors FROM posts_with_authors WHERE id = ?", [old_post])[0]
        app.cache_post(old_post, {"title": "again"}, authors)
    # a list column updated in place on a referenced row (DuckDB refuses it under a key)
    app.raw.execute("UPDATE profiles SET interests = ['tango'] WHERE id = ?", [BO])

    assert app.profile_posts(ANA) == ["hello"]
    assert app.profile_posts(CY) == ["hello"]
    assert app.raw.execute(
        "SELECT authors, tags, title FROM posts_with_authors WHERE id = 'hello'"
    ).fetchall() == [([BO, ANA, CY], ["a", "b"], "Olá!")]
    assert "Ana B." in app.profile_content(ANA)
    assert one(app, "SELECT interests FROM profiles WHERE id = ?", [BO]) == (["tango"],)
    assert foreign_key_violations(app.raw) == []


def test_the_unchanged_profile_posts_lookup_reads_no_authors_from_posts(app: AppLike) -> None:
    """Why the app reads posts_with_authors: posts.authors left with v4e (the app's
    lookup catches the error and returns no posts)."""
    app.cache_profile(ANA, {"alias": "Ana"})
    app.cache_post("p", {"title": "t"}, [ANA])
    with pytest.raises(AttributeError, match="authors"):
        app.profile_posts(ANA, table="posts")
    assert app.profile_posts(ANA) == ["p"]


def test_tasks_of_every_type_are_enqueued_updated_and_fetched(app: AppLike) -> None:
    ids = {t: app.enqueue(t, {"kind": t, "nested": {"ünï": [1, None]}}) for t in schemas.TASK_TYPES}
    assert set(ids) == {"generate_banner", "update_profile", "enrich_media", "enrich_url"}
    pending = {str(r["task_id"]) for r in app.fetch_pending()}
    assert set(ids.values()) <= pending
    app.update_status(ids["generate_banner"], "completed")
    app.update_status(ids["update_profile"], "failed", "Traceback ...\n'quoted'")
    app.update_status(ids["enrich_media"], "superseded", "Newer update found")
    app.update_status(ids["enrich_url"], "processing")
    assert not set(ids.values()) & {str(r["task_id"]) for r in app.fetch_pending()}
    waiting = app.enqueue("enrich_url", {"url": "https://example.org/ü?q='x'"})
    assert [str(r["task_id"]) for r in app.fetch_pending("enrich_url")] == [waiting]
    rows = app.raw.execute(
        "SELECT task_type, status, error IS NOT NULL, processed_at IS NOT NULL, "
        "payload->>'$.kind' FROM tasks WHERE task_id IN (?, ?, ?, ?) ORDER BY 1",
        list(ids.values()),
    ).fetchall()
    assert rows == [
        ("enrich_media", "superseded", True, True, "enrich_media"),
        ("enrich_url", "processing", False, True, "enrich_url"),
        ("generate_banner", "completed", False, True, "generate_banner"),
        ("update_profile", "failed", True, True, "update_profile"),
    ]


def test_repository_saves_and_reads_every_document_type(app: AppLike, upgraded_file: Path) -> None:
    now = datetime.now(UTC)
    has_view = bool(
        one(app, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'documents_view'")[0]
    )
    before = len(app.documents()) if has_view else 0
    app.save("profiles", {"id": ANA, "created_at": now, "title": "Ana", "subject_uuid": ANA})
    app.save(
        "posts", {"id": "p1", "created_at": now, "title": "T", "slug": "s1", "status": "draft"}
    )
    app.save("media", {"id": "m1", "created_at": now, "filename": "a.png", "phash": "00ff"})
    app.save(
        "journals",
        {"id": "j1", "created_at": now, "title": "w", "window_start": now, "window_end": now},
    )
    app.save(
        "annotations",
        {"id": "a1", "created_at": now, "parent_id": "p1", "parent_type": "post", "author_id": ANA},
    )
    assert app.get("posts", "s1")["id"].tolist() == ["p1"]
    assert app.get("profiles", ANA)["title"].tolist() == ["Ana"]
    assert app.get("media", "m1")["phash"].tolist() == ["00ff"]
    if has_view:  # the unified view still reads every table after the upgrade
        rows = app.documents()
        assert len(rows) == before + 5 == sum(count(app, t) for t in DOCUMENT_TABLES)
        assert {r["type"] for r in app.documents_by_ibis()} >= {"post", "profile", "media"}
    assert foreign_key_violations(app.raw) == []
    app.close()  # the app's writes leave the database as the metadata describes it
    command.check(alembic_cfg(f"duckdb:///{upgraded_file}"))


@dataclass(frozen=True)
class Refusal:
    """A write head refuses, the V4 rule that refuses it on purpose, and its words."""

    rule: str
    words: str
    write: Callable[[AppLike], Any]
    #: a write that goes first, and passes
    first: Callable[[AppLike], Any] = lambda app: None  # noqa: E731


NOW = datetime(2026, 1, 17, tzinfo=UTC)
REFUSALS = {
    "empty profile title": Refusal(
        "v4b CHECK chk_profiles_title_not_empty (length(title) > 0)",
        "length(title) > 0",
        lambda app: app.cache_profile(ANA, {"alias": ""}),  # the cache's alias is ""
    ),
    "post without title": Refusal(
        "v4c NOT NULL posts.title",
        "posts.title",
        lambda app: app.save("posts", {"id": "n", "created_at": NOW, "status": "draft"}),
    ),
    "repeated id": Refusal(
        "v4c PRIMARY KEY pk_profiles",
        "Duplicate key",
        lambda app: app.save("profiles", {"id": BO, "created_at": NOW, "title": "Bo 2"}),
        lambda app: app.save("profiles", {"id": BO, "created_at": NOW, "title": "Bo"}),
    ),
    "inverted journal window": Refusal(
        "v4a CHECK chk_journals_window_order (window_end >= window_start)",
        "window_end >= window_start",
        lambda app: app.save(
            "journals",
            {"id": "j", "created_at": NOW, "window_start": NOW, "window_end": NOW - timedelta(1)},
        ),
    ),
    "repeated phash": Refusal(
        "v4d UNIQUE uq_media_phash",
        "Duplicate key",
        lambda app: app.save("media", {"id": "n", "created_at": NOW, "phash": "abcd"}),
        lambda app: app.save("media", {"id": "m", "created_at": NOW, "phash": "abcd"}),
    ),
    "post row with V3's authors list": Refusal(
        "v4e: posts.authors became post_authors rows (write_post_authors)",
        "expected 10 columns but 11 values",
        lambda app: app.replace_rows(
            "posts", {**app.post_row("x", {"title": "t"}), "authors": [ANA]}
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_a_write_head_refuses_is_refused_by_a_v4_rule_that_v3_lacked(
    app: AppLike, name: str
) -> None:
    refusal = REFUSALS[name]
    refusal.first(app)
    before = {t: count(app, t) for t in DOCUMENT_TABLES}
    with pytest.raises(duckdb.Error, match=re.escape(refusal.words)):
        refusal.write(app)
    assert {t: count(app, t) for t in DOCUMENT_TABLES} == before, refusal.rule
    # the same write, on the same tables as V3 made them, passes
    v3 = AppLike.__new__(AppLike)
    v3.backend = ibis.duckdb.connect()
    v3.raw = v3.backend.con
    legacy.create(v3.raw, view=False)
    refusal.first(v3)
    if name != "post row with V3's authors list":
        refusal.write(v3)


def test_an_annotation_by_an_author_without_profile_is_found_by_the_check(
    app: AppLike, upgraded_file: Path
) -> None:
    """The app's own author ("egregora") has no profile: V4's FOREIGN KEY
    fk_annotations_author_id_profiles refuses it on purpose. DuckDB does not enforce
    that key (the app replaces profiles), so the check finds it: the app's call,
    and alembic check."""
    app.save_annotation("msg-9@wa", "message", "bot note", ANNOTATION_AUTHOR)
    found = foreign_key_violations(app.raw)
    assert [(o.constraint, o.missing) for o in found] == [
        ("fk_annotations_author_id_profiles", ((ANNOTATION_AUTHOR,),))
    ]
    app.close()
    with pytest.raises(CommandError, match="fk_annotations_author_id_profiles.*'egregora'"):
        command.check(alembic_cfg(f"duckdb:///{upgraded_file}"))
    app.__init__(upgraded_file)  # type: ignore[misc]
    app.cache_profile(ANNOTATION_AUTHOR, {"alias": "Egregora"})
    assert foreign_key_violations(app.raw) == []
