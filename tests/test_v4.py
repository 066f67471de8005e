"""The V4 revisions on a messy legacy V3 database (tests/messy.py), real DuckDB files.

1. ``upgrade v4g`` refuses with one report of every planted violation and changes nothing.
2. ``upgrade v4g -x on_violation=quarantine`` loses no row and no (post, author) pair, and
   puts exactly the planted rows in quarantine; of repeated keys it keeps the newest row in
   the tables the app rewrites (posts, profiles, media) and the earliest in the others.
3. At head, ``alembic check`` is clean; at V4, every new constraint rejects a violating write.
4. ``downgrade v3`` brings back the V3 layout, the authors lists and every kept row.

The messy V3 file is built once per module and copied; so are the upgraded and
downgraded files, which no test changes.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from alembic.util import CommandError

from alembic import command
from egregora.database.migration.errors import ConstraintViolations
from egregora.database.migration.report import sample_text

from . import legacy
from .conftest import HEAD, alembic_cfg, database_digest, run_cli
from .messy import COLUMNS, FIELD_STORAGE_VERSION, KEY, V3_TABLES, MessyV3, build_v3

#: The last V4 revision. These tests describe what V4 does; a later revision that
#: tightens the schema further must not change what they assert, so they upgrade
#: to V4, not to head (only "alembic check is clean" is about head).
V4 = "v4g"


Row = tuple[Any, ...]
Pair = tuple[str | None, int, str | None]

V3_COLUMNS = {table: [name for name, _ in columns] for table, columns in COLUMNS.items()}
#: The columns V4 keeps unchanged (posts.authors becomes post_authors).
KEPT_COLUMNS = {
    t: [c for c in cols if (t, c) != ("posts", "authors")] for t, cols in V3_COLUMNS.items()
}
QUARANTINE_META = ("_quarantine_reason", "_quarantined_at", "_quarantine_revision")
POST_QUARANTINED = "post quarantined: see posts_quarantine"


# -- reading DuckDB files ----------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def query(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the file ``path``, opened read-only, timestamps in UTC."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return [tuple(r) for r in con.execute(sql, list(params)).fetchall()]
    finally:
        con.close()


def _frozen(value: Any) -> Any:
    """Lists as tuples (hashable), recursively; every other value as DuckDB returned it."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def content(path: Path, table: str, columns: Sequence[str]) -> list[Row]:
    """Every row of ``table`` with its Python values, sorted: a comparable multiset.

    Values are compared as DuckDB returns them (text, tz-aware datetimes in UTC, dates,
    UUIDs, JSON text, lists as tuples), so nothing is lost to a textual rendering.
    """
    select = ", ".join(_q(c) for c in columns)
    rows = query(path, f"SELECT {select} FROM {_q(table)}")
    return sorted((tuple(_frozen(v) for v in row) for row in rows), key=repr)


def tables(path: Path) -> set[str]:
    return {r[0] for r in query(path, "SELECT table_name FROM duckdb_tables()")}


def pairs_of(rows: Sequence[tuple[Any, Any]]) -> list[Pair]:
    """The (post_id, position, profile_id) pairs of (id, authors) rows, position from 1."""
    return [(pid, i, author) for pid, authors in rows for i, author in enumerate(authors or [], 1)]


def stored_pairs(path: Path, table: str, where: str = "") -> list[Pair]:
    return sorted(
        query(path, f"SELECT post_id, position, profile_id FROM {table} {where}"), key=repr
    )


def copy_to(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


# -- fixtures: one messy file, upgraded and downgraded once ---------------------


@dataclass
class Original:
    """What the V3 file held, read back before any migration."""

    content: dict[str, list[Row]]  # per table, KEPT_COLUMNS, Python values
    posts: list[tuple[str | None, datetime | None, list[str | None] | None]]
    created: dict[str, list[tuple[str | None, datetime | None]]]  # (key, created_at)

    @property
    def pairs(self) -> list[Pair]:
        return sorted(pairs_of([(pid, authors) for pid, _, authors in self.posts]), key=repr)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> MessyV3:
    return build_v3(tmp_path_factory.mktemp("v3") / "messy-v3.duckdb")


@pytest.fixture(scope="module")
def original(messy: MessyV3) -> Original:
    path = messy.path
    return Original(
        content={t: content(path, t, KEPT_COLUMNS[t]) for t in V3_TABLES},
        posts=query(path, "SELECT id, created_at, authors FROM posts"),  # type: ignore[arg-type]
        created={
            t: [
                (None if k is None else str(k), c)
                for k, c in query(path, f"SELECT {KEY[t]}, created_at FROM {t}")
            ]
            for t in V3_TABLES
        },
    )


@pytest.fixture(scope="module")
def upgraded(messy: MessyV3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The messy file after ``upgrade v4g -x on_violation=quarantine``. Read only."""
    path = copy_to(messy.path, tmp_path_factory.mktemp("v4") / "quarantined.duckdb")
    command.upgrade(alembic_cfg(f"duckdb:///{path}", on_violation="quarantine"), V4)
    return path


@pytest.fixture(scope="module")
def downgraded(upgraded: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The upgraded file after ``downgrade v3``. Read only."""
    path = copy_to(upgraded, tmp_path_factory.mktemp("down") / "downgraded.duckdb")
    command.downgrade(alembic_cfg(f"duckdb:///{path}"), "v3")
    return path


#: The tables whose repeated keys keep the newest row: the app rewrites their rows by
#: inserting a new version (README, "Which duplicate is kept"). The others keep the earliest.
NEWEST_KEPT = {"posts", "profiles", "media"}


def kept_at(rows: Sequence[tuple[str | None, datetime | None]], key: str, table: str) -> datetime:
    """The created_at of the row of ``table`` that the rule keeps among those keyed ``key``."""
    times = [c for k, c in rows if k == key and c is not None]
    return max(times) if table in NEWEST_KEPT else min(times)


def quarantined_post_rows(messy: MessyV3, original: Original) -> list[tuple[Any, ...]]:
    """The V3 posts rows that V4 must quarantine, from the plan (not from the result)."""
    rejected = messy.rejected_ids("posts")
    dups = messy.duplicate_ids["posts"]
    return [
        row
        for row in original.posts
        if row[0] is None
        or row[0] in rejected
        or (row[0] in dups and row[1] != kept_at(original.created["posts"], row[0], "posts"))
    ]


def planted_bad_pairs(messy: MessyV3) -> dict[str, list[Pair]]:
    """Planted pairs of surviving posts that v4e must quarantine, by reason prefix."""
    return {
        "NOT NULL post_authors.profile_id": [(p, i, None) for p, i in messy.null_author_pairs],
        "UNIQUE uq_post_authors_post_id_profile_id": list(messy.repeated_author_pairs),
        "FOREIGN KEY fk_post_authors_profile_id_profiles": [
            *messy.unknown_author_pairs,
            *messy.quarantined_author_pairs,
        ],
    }


# -- 1. fail mode: one report, nothing changed -------------------------------


def expected_report(messy: MessyV3) -> dict[str, tuple[int, str]]:
    """Violation line prefix -> (rows, revision), for every constraint the data violates."""
    expected = {
        "CHECK chk_journals_window_order on journals": (len(messy.inverted_journals), "v4a"),
        "CHECK chk_profiles_title_not_empty on profiles": (
            len(messy.empty_title_profiles),
            "v4b",
        ),
        "NOT NULL posts.title on posts": (len(messy.null_post_titles), "v4c"),
        "NOT NULL posts.status on posts": (len(messy.null_post_statuses), "v4c"),
        "NOT NULL tasks.task_type on tasks": (len(messy.null_task_types), "v4c"),
        "NOT NULL tasks.status on tasks": (len(messy.null_task_statuses), "v4c"),
        "UNIQUE uq_media_phash on media": (messy.extra_phashes(), "v4d"),
        "FOREIGN KEY fk_annotations_author_id_profiles on annotations": (
            len(messy.unknown_annotation_authors) + len(messy.quarantined_annotation_authors),
            "v4f",
        ),
    }
    for prefix, pairs in planted_bad_pairs(messy).items():
        expected[f"{prefix} on post_authors"] = (len(pairs), "v4e")
    for t in V3_TABLES:
        expected[f"NOT NULL {t}.{KEY[t]} on {t}"] = (messy.null_ids[t], "v4c")
        expected[f"NOT NULL {t}.created_at on {t}"] = (len(messy.null_created_at[t]), "v4c")
        expected[f"PRIMARY KEY pk_{t} on {t}"] = (messy.extra_duplicates(t), "v4c")
    return expected


LINE = re.compile(
    r"^  - (?P<rule>.+?) \(.*\): (?P<rows>\d+) rows? \(for example (?P<samples>.*)\)"
    r" \[revision (?P<revision>\w+) upgrade\]$"
)


def test_fail_mode_refuses_with_one_report_and_changes_nothing(
    messy: MessyV3, db_path: Path, upgrade: Callable[..., None]
) -> None:
    copy_to(messy.path, db_path)
    before = database_digest(db_path)
    with pytest.raises(CommandError) as err:
        upgrade(V4)
    assert isinstance(err.value, ConstraintViolations)
    message = str(err.value)
    assert "Traceback" not in message and 'File "' not in message
    assert "nothing was changed" in message and "on_violation=quarantine" in message

    expected = expected_report(messy)
    lines = [line for line in message.splitlines() if line.startswith("  - ")]
    found: dict[str, tuple[int, str]] = {}
    for line in lines:
        match = LINE.match(line)
        assert match, f"unexpected report line: {line!r}"
        rule = match["rule"]
        assert rule not in found, f"{rule} reported twice"
        found[rule] = (int(match["rows"]), match["revision"])
    # every planted violation, with its count and revision, and nothing else
    assert found == expected
    assert f"violate {len(expected)} constraints" in message
    # the report is in revision order: one report across every revision
    revisions = [found[LINE.match(line)["rule"]][1] for line in lines]  # type: ignore[index]
    assert revisions == sorted(revisions)
    # the samples are the first planted keys, as DuckDB orders text (by code point)
    samples = {
        "CHECK chk_journals_window_order on journals": messy.inverted_journals,
        "CHECK chk_profiles_title_not_empty on profiles": messy.empty_title_profiles,
        "FOREIGN KEY fk_annotations_author_id_profiles on annotations": [
            *messy.unknown_annotation_authors,
            *messy.quarantined_annotation_authors,
        ],
    }
    for rule, ids in samples.items():
        [line] = [line for line in lines if line.startswith(f"  - {rule} ")]
        first = ", ".join(sample_text((i,)) for i in sorted(ids)[:5])  # in SQL's spelling
        assert f"(for example {first}, ...)" in line
    assert database_digest(db_path) == before
    assert "alembic_version" not in tables(db_path)


def test_cli_refusal_prints_the_report_without_a_traceback(messy: MessyV3, tmp_path: Path) -> None:
    path = copy_to(messy.path, tmp_path / "cli.duckdb")
    before = database_digest(path)
    result = run_cli("-x", f"url=duckdb:///{path}", "upgrade", V4, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "FAILED: Refused: existing rows violate" in output
    assert output.count("Refused: existing rows violate") == 1  # once, not logged again
    assert "Traceback" not in output
    assert all(f"  - {rule} (" in output for rule in expected_report(messy))
    assert database_digest(path) == before


# -- 2. quarantine mode: every row and every pair kept somewhere --------------


def test_quarantine_upgrade_reaches_v4_without_leftovers(upgraded: Path) -> None:
    assert query(upgraded, "SELECT version_num FROM alembic_version") == [(V4,)]
    names = tables(upgraded)
    assert {f"{t}_quarantine" for t in V3_TABLES} | {"post_authors", "post_authors_quarantine"} <= (
        names
    )
    assert not [n for n in names if "__ccs" in n]


@pytest.mark.parametrize("table", V3_TABLES)
def test_quarantine_loses_no_row(
    table: str, messy: MessyV3, original: Original, upgraded: Path
) -> None:
    kept = content(upgraded, table, KEPT_COLUMNS[table])
    moved = content(upgraded, f"{table}_quarantine", KEPT_COLUMNS[table])
    assert len(kept) + len(moved) == messy.rows[table]
    assert sorted(kept + moved, key=repr) == original.content[table]
    # posts_quarantine keeps the V3 authors list of the rows it holds
    if table == "posts":
        with_authors = content(upgraded, "posts_quarantine", V3_COLUMNS["posts"])
        full = content(messy.path, "posts", V3_COLUMNS["posts"])
        assert not Counter(with_authors) - Counter(full)
    # every quarantined row says why, when and which revision
    meta = query(upgraded, f"SELECT {', '.join(QUARANTINE_META)} FROM {table}_quarantine")
    assert all(reason and at and re.fullmatch(r"v4[a-f] upgrade", rev) for reason, at, rev in meta)


def test_every_post_author_pair_is_kept_or_quarantined(
    messy: MessyV3, original: Original, upgraded: Path
) -> None:
    kept = stored_pairs(upgraded, "post_authors")
    moved = stored_pairs(upgraded, "post_authors_quarantine")
    assert sorted(kept + moved, key=repr) == original.pairs
    # pairs of quarantined posts followed their post; the planted bad pairs of
    # surviving posts were quarantined by the rule they break, and nothing else was
    of_gone_posts = sorted(
        pairs_of([(r[0], r[2]) for r in quarantined_post_rows(messy, original)]), key=repr
    )
    assert (
        stored_pairs(
            upgraded, "post_authors_quarantine", f"WHERE _quarantine_reason = '{POST_QUARANTINED}'"
        )
        == of_gone_posts
    )
    for prefix, pairs in planted_bad_pairs(messy).items():
        got = query(
            upgraded,
            "SELECT post_id, position, profile_id, _quarantine_revision FROM "
            "post_authors_quarantine WHERE starts_with(_quarantine_reason, ?)",
            [prefix],
        )
        if prefix.startswith("UNIQUE"):  # which occurrence: see the test below
            got = [(p, 0, a, rev) for p, _, a, rev in got]
            pairs = [(p, 0, a) for p, _, a in pairs]
        assert sorted(got, key=repr) == sorted([(*p, "v4e upgrade") for p in pairs], key=repr)
    assert len(moved) == len(of_gone_posts) + sum(map(len, planted_bad_pairs(messy).values()))


# Regression: of an author listed twice in one post ([a, b, a, c]) the first
# occurrence is kept. It once was the last: without created_at the UNIQUE rule fell
# back to rowid order, and DuckDB 2.0.1 emits `unnest(...) WITH ORDINALITY` in
# reverse. The rule now breaks ties by primary key (position) before rowid.
def test_repeated_author_keeps_its_first_position(
    messy: MessyV3, original: Original, upgraded: Path, downgraded: Path
) -> None:
    lists = {pid: authors for pid, _, authors in original.posts}
    wrong = []
    for post_id, position, author in messy.repeated_author_pairs:
        kept = query(
            upgraded,
            "SELECT position FROM post_authors WHERE post_id = ? AND profile_id = ?",
            [post_id, author],
        )
        first = lists[post_id].index(author) + 1  # type: ignore[union-attr]
        [(back,)] = query(downgraded, "SELECT authors FROM posts WHERE id = ?", [post_id])
        without_later = [a for i, a in enumerate(lists[post_id], 1) if i != position]  # type: ignore[arg-type]
        if kept != [(first,)] or back != without_later:
            wrong.append((post_id, lists[post_id], kept, back))
    assert not wrong, (
        f"kept a later occurrence (post, V3 authors, kept position, V3 again): {wrong}"
    )


def _quarantine_keys(path: Path, table: str) -> list[tuple[str | None, str, str]]:
    return query(
        path,
        f"SELECT CAST({KEY[table]} AS VARCHAR), _quarantine_reason, _quarantine_revision "
        f"FROM {table}_quarantine",
    )


@pytest.mark.parametrize("table", V3_TABLES)
def test_exactly_the_planted_rows_are_quarantined(
    table: str, messy: MessyV3, original: Original, upgraded: Path
) -> None:
    moved = _quarantine_keys(upgraded, table)
    expected: Counter[str | None] = Counter(messy.rejected_ids(table))
    expected[None] = messy.null_ids[table]
    expected.update({k: n - 1 for k, n in messy.duplicate_ids[table].items()})
    if table == "media":
        for ids in messy.repeated_phash.values():
            kept = _kept_of_hash(original, ids)
            expected.update(i for i in ids if i != kept)
    assert Counter(k for k, _, _ in moved) == expected
    reasons = {k: (reason, rev) for k, reason, rev in moved}

    def assert_reason(ids: Sequence[str], prefix: str, revision: str) -> None:
        for i in ids:
            reason, rev = reasons[i]
            assert reason.startswith(prefix) and rev == f"{revision} upgrade", (i, reason, rev)

    assert_reason(messy.null_created_at[table], f"NOT NULL {table}.created_at", "v4c")
    nulls = [(reason, rev) for k, reason, rev in moved if k is None]
    assert all(
        r.startswith(f"NOT NULL {table}.{KEY[table]}") and v == "v4c upgrade" for r, v in nulls
    )
    if table == "journals":
        assert_reason(messy.inverted_journals, "CHECK chk_journals_window_order", "v4a")
        kept = {r[0] for r in query(upgraded, "SELECT id FROM journals")}
        assert set(messy.tricky_valid_journals) <= kept  # ordered as instants
    if table == "profiles":
        assert_reason(messy.empty_title_profiles, "CHECK chk_profiles_title_not_empty", "v4b")
        kept = {r[0] for r in query(upgraded, "SELECT id FROM profiles")}
        assert set(messy.lookalike_profile_ids) <= kept  # distinct ids, all kept
    if table == "posts":
        titles = [i for i in messy.null_post_titles if i != messy.overlap_post]
        statuses = [i for i in messy.null_post_statuses if i != messy.overlap_post]
        assert_reason(titles, "NOT NULL posts.title", "v4c")
        assert_reason(statuses, "NOT NULL posts.status", "v4c")
        both, _ = reasons[messy.overlap_post]  # one row, both reasons
        assert "NOT NULL posts.title" in both and "NOT NULL posts.status" in both
    if table == "tasks":
        assert_reason(messy.null_task_types, "NOT NULL tasks.task_type", "v4c")
        assert_reason(messy.null_task_statuses, "NOT NULL tasks.status", "v4c")
    if table == "media":
        for phash, ids in messy.repeated_phash.items():
            later = [i for i in ids if reasons.get(i)]
            assert len(later) == len(ids) - 1
            assert_reason(later, "UNIQUE uq_media_phash", "v4d")
            [(kept_id, _)] = query(
                upgraded, "SELECT id, created_at FROM media WHERE phash = ?", [phash]
            )
            assert kept_id == _kept_of_hash(original, ids)
        kept = {r[0] for r in query(upgraded, "SELECT phash FROM media")}
        assert set(messy.lookalike_phashes) <= kept  # differ by case only: both kept
    if table == "annotations":
        assert_reason(
            messy.unknown_annotation_authors + messy.quarantined_annotation_authors,
            "FOREIGN KEY fk_annotations_author_id_profiles",
            "v4f",
        )


def _kept_of_hash(original: Original, ids: Sequence[str]) -> str:
    """Of media sharing a phash (each id deduplicated first, by v4c), the one v4d keeps."""
    pick = max if "media" in NEWEST_KEPT else min
    return pick(ids, key=lambda i: kept_at(original.created["media"], i, "media"))


@pytest.mark.parametrize("table", V3_TABLES)
def test_duplicate_keys_keep_the_row_their_table_keeps(
    table: str, messy: MessyV3, original: Original, upgraded: Path
) -> None:
    newest = table in NEWEST_KEPT
    assert messy.duplicate_ids[table]  # every table has repeated keys to choose among
    for key, copies in messy.duplicate_ids[table].items():
        kept = query(
            upgraded,
            f"SELECT created_at FROM {table} WHERE CAST({KEY[table]} AS VARCHAR) = ?",
            [key],
        )
        assert kept == [(kept_at(original.created[table], key, table),)]
        moved = query(
            upgraded,
            f"SELECT created_at, _quarantine_reason, _quarantine_revision FROM {table}_quarantine "
            f"WHERE CAST({KEY[table]} AS VARCHAR) = ?",
            [key],
        )
        assert len(moved) == copies - 1
        assert all((at < kept[0][0]) if newest else (at > kept[0][0]) for at, _, _ in moved)
        which = "a newer" if newest else "an earlier"
        assert all(
            reason == f"PRIMARY KEY pk_{table}: duplicate of {which} row" and rev == "v4c upgrade"
            for _, reason, rev in moved
        )


# -- 3. at head: the schema is the model and the constraints hold -------------


def test_alembic_check_is_clean_at_head(upgraded: Path, tmp_path: Path) -> None:
    path = copy_to(upgraded, tmp_path / "check.duckdb")
    command.upgrade(alembic_cfg(f"duckdb:///{path}", on_violation="quarantine"), "head")
    assert query(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    command.check(alembic_cfg(f"duckdb:///{path}"))  # raises when autogenerate sees a diff


@pytest.fixture(scope="module")
def enforcing(upgraded: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A connection to a copy of the upgraded file, and values that exist in it."""
    path = copy_to(upgraded, tmp_path_factory.mktemp("enforce") / "head.duckdb")
    con = duckdb.connect(str(path))
    post, position, author = con.execute(
        "SELECT post_id, position, profile_id FROM post_authors ORDER BY ALL LIMIT 1"
    ).fetchone()  # type: ignore[misc]

    def one(sql: str, *params: Any) -> Any:
        return con.execute(sql, list(params)).fetchone()[0]  # type: ignore[index]

    known = {
        "post": post,
        "position": position,
        "author": author,
        # a profile that is not yet an author of that post
        "profile": one(
            "SELECT min(id) FROM profiles WHERE id NOT IN "
            "(SELECT profile_id FROM post_authors WHERE post_id = ?)",
            post,
        ),
        "task": one("SELECT min(task_id) FROM tasks"),
        "phash": one("SELECT min(phash) FROM media"),
        "journal": one(
            "SELECT min(id) FROM journals WHERE window_start IS NOT NULL AND window_end IS NOT NULL"
        ),
        "annotation": one("SELECT min(id) FROM annotations"),
    }
    yield con, known
    con.close()


NOW = "TIMESTAMPTZ '2026-11-28 12:00:00+00'"
NEW_POST = f"INSERT INTO posts (id, created_at, title, status) VALUES (?, {NOW}, ?, ?)"
NEW_TASK = f"INSERT INTO tasks (task_id, task_type, status, created_at) VALUES (?, ?, ?, {NOW})"

#: Writes that break one V4 constraint each: (SQL, parameters from the known values).
REJECTED: dict[str, tuple[str, Callable[[dict[str, Any]], list[Any]]]] = {
    "journal window inverted": (
        f"INSERT INTO journals (id, created_at, window_start, window_end) VALUES "
        f"('j-new', {NOW}, TIMESTAMPTZ '2024-01-02 00:00:00+00', "
        "TIMESTAMPTZ '2024-01-01 00:00:00+00')",
        lambda k: [],
    ),
    "journal window inverted across offsets": (
        f"INSERT INTO journals (id, created_at, window_start, window_end) VALUES ('j-new', "
        f"{NOW}, TIMESTAMPTZ '2024-01-01 10:00:00+00', TIMESTAMPTZ '2024-01-01 11:00:00+05:30')",
        lambda k: [],
    ),
    "journal window inverted by update": (
        "UPDATE journals SET window_start = window_end + INTERVAL 1 SECOND "
        "WHERE id = ? AND window_end IS NOT NULL",
        lambda k: [k["journal"]],
    ),
    "empty profile title": (
        f"INSERT INTO profiles (id, created_at, title) VALUES ('p-new', {NOW}, '')",
        lambda k: [],
    ),
    "NULL post title": (NEW_POST, lambda k: ["post-new", None, "draft"]),
    "NULL post status": (NEW_POST, lambda k: ["post-new", "t", None]),
    "post status outside the list": (NEW_POST, lambda k: ["post-new", "t", "deleted"]),
    "NULL task_type": (
        NEW_TASK,
        lambda k: ["00000000-0000-4000-8000-000000000000", None, "pending"],
    ),
    "NULL task status": (
        NEW_TASK,
        lambda k: ["00000000-0000-4000-8000-000000000000", "enrich_media", None],
    ),
    "duplicate phash": (
        f"INSERT INTO media (id, created_at, phash) VALUES ('m-new', {NOW}, ?)",
        lambda k: [k["phash"]],
    ),
    "post author with no profile": (
        "INSERT INTO post_authors VALUES (?, 999, 'ghost-no-such-profile')",
        lambda k: [k["post"]],
    ),
    "post author of no post": (
        "INSERT INTO post_authors VALUES ('no-such-post', 1, ?)",
        lambda k: [k["profile"]],
    ),
    "NULL post author": ("INSERT INTO post_authors VALUES (?, 999, NULL)", lambda k: [k["post"]]),
    "repeated post author": (
        "INSERT INTO post_authors VALUES (?, 999, ?)",
        lambda k: [k["post"], k["author"]],
    ),
    "repeated author position": (
        "INSERT INTO post_authors VALUES (?, ?, ?)",
        lambda k: [k["post"], k["position"], k["profile"]],
    ),
    "annotation by an unknown author": (
        f"INSERT INTO annotations (id, created_at, author_id) VALUES ('a-new', {NOW}, 'ghost')",
        lambda k: [],
    ),
    "deleting a referenced profile": (
        "DELETE FROM profiles WHERE id = ?",
        lambda k: [k["author"]],
    ),
}

DOCUMENTS = ("posts", "profiles", "media", "journals", "annotations")


def _copy_row(table: str, **replace: str) -> str:
    """INSERT a copy of one existing row of ``table`` with some columns replaced.

    A copied media row gets a NULL phash, so that it breaks only the rule under test.
    """
    if table == "media":
        replace.setdefault("phash", "NULL")
    where = " WHERE window_end >= window_start" if table == "journals" else ""
    changes = ", ".join(f"{value} AS {column}" for column, value in replace.items())
    star = f"* REPLACE ({changes})" if changes else "*"
    return f"INSERT INTO {table} SELECT {star} FROM {table}{where} LIMIT 1"


for _t in (*DOCUMENTS, "tasks"):
    _key = KEY[_t]
    _new = "'00000000-0000-4000-8000-00000000abcd'" if _t == "tasks" else "'brand-new-id'"
    REJECTED[f"NULL {_t}.{_key}"] = (_copy_row(_t, **{_key: "NULL"}), lambda k: [])
    REJECTED[f"duplicate {_t}.{_key}"] = (_copy_row(_t), lambda k: [])
    REJECTED[f"NULL {_t}.created_at"] = (
        _copy_row(_t, **{_key: _new, "created_at": "NULL"}),
        lambda k: [],
    )
REJECTED["empty profile title by update"] = (
    "UPDATE profiles SET title = '' WHERE id = ?",
    lambda k: [k["profile"]],
)

#: Writes that V4 must still accept (NULL semantics, edges): rolled back afterwards.
ACCEPTED: dict[str, tuple[str, Callable[[dict[str, Any]], list[Any]]]] = {
    "empty journal window": (
        f"INSERT INTO journals (id, created_at, window_start, window_end) VALUES "
        f"('j-new', {NOW}, {NOW}, {NOW})",
        lambda k: [],
    ),
    "NULL profile title": (
        f"INSERT INTO profiles (id, created_at, title) VALUES ('p-new', {NOW}, NULL)",
        lambda k: [],
    ),
    "two unhashed media": (
        f"INSERT INTO media (id, created_at, phash) VALUES ('m1', {NOW}, NULL), "
        f"('m2', {NOW}, NULL)",
        lambda k: [],
    ),
    "renaming a referenced profile's title": (
        "UPDATE profiles SET title = 'renamed ✨' WHERE id = ?",
        lambda k: [k["profile"]],
    ),
    "annotation without author": (
        f"INSERT INTO annotations (id, created_at, author_id) VALUES ('a-new', {NOW}, NULL)",
        lambda k: [],
    ),
    "a new author for a post": (
        "INSERT INTO post_authors VALUES (?, 999, ?)",
        lambda k: [k["post"], k["profile"]],
    ),
}


def expected_error(case: str) -> str:
    """The start of DuckDB's message for the constraint that ``case`` breaks."""
    if case.startswith("NULL"):
        return "NOT NULL constraint failed"
    if case.startswith(("duplicate", "repeated")):
        return "Duplicate key"
    if "author" in case or "referenced" in case:
        return "foreign key constraint"
    return "CHECK constraint failed"


@pytest.mark.parametrize("case", REJECTED)
def test_each_new_constraint_rejects_a_violating_write(enforcing: Any, case: str) -> None:
    con, known = enforcing
    statement, params = REJECTED[case]
    con.execute("BEGIN")
    try:
        with pytest.raises(duckdb.ConstraintException, match=re.escape(expected_error(case))):
            con.execute(statement, params(known))
    finally:
        con.execute("ROLLBACK")


@pytest.mark.parametrize("case", ACCEPTED)
def test_valid_writes_are_still_accepted(enforcing: Any, case: str) -> None:
    con, known = enforcing
    statement, params = ACCEPTED[case]
    con.execute("BEGIN")
    try:
        con.execute(statement, params(known))
    finally:
        con.execute("ROLLBACK")


# -- 4. downgrade to V3 ------------------------------------------------------

LAYOUT = {
    "columns": "SELECT table_name, column_index, column_name, data_type, is_nullable, "
    "column_default FROM duckdb_columns() WHERE table_name IN ({tables}) ORDER BY ALL",
    "constraints": "SELECT table_name, constraint_type, expression, constraint_column_names "
    "FROM duckdb_constraints() WHERE table_name IN ({tables}) ORDER BY ALL",
    "table ddl": "SELECT table_name, sql FROM duckdb_tables() WHERE table_name IN ({tables}) "
    "ORDER BY ALL",
    "indexes": "SELECT table_name, index_name FROM duckdb_indexes() ORDER BY ALL",
    "views": "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL",
}


@pytest.mark.parametrize("aspect", LAYOUT)
def test_downgrade_restores_the_v3_layout(aspect: str, downgraded: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-v3.duckdb"
    # in the messy file's format: DuckDB keeps a view's text as that format spells it
    storage = {"storage_compatibility_version": FIELD_STORAGE_VERSION}
    con = duckdb.connect(str(fresh), config=storage)
    try:
        legacy.create(con)
    finally:
        con.close()
    sql = LAYOUT[aspect].format(tables=", ".join(f"'{t}'" for t in V3_TABLES))
    assert query(downgraded, sql) == query(fresh, sql)


def test_downgrade_drops_post_authors_and_keeps_the_quarantine(
    downgraded: Path, upgraded: Path
) -> None:
    assert query(downgraded, "SELECT version_num FROM alembic_version") == [("v3",)]
    names = tables(downgraded)
    assert "post_authors" not in names and not [n for n in names if "__ccs" in n]
    # nothing is deleted: the quarantined rows stay where the upgrade put them
    for table in [*V3_TABLES, "post_authors"]:
        q = f"{table}_quarantine"
        columns = [
            c
            for (c,) in query(
                upgraded,
                f"SELECT column_name FROM duckdb_columns() "
                f"WHERE table_name = '{q}' ORDER BY column_index",
            )
        ]
        assert content(downgraded, q, columns) == content(upgraded, q, columns)
    # the view reads the restored tables
    assert query(downgraded, "SELECT count(*) FROM documents_view") == query(
        upgraded,
        "SELECT (SELECT count(*) FROM posts) + (SELECT count(*) FROM profiles) + "
        "(SELECT count(*) FROM journals) + (SELECT count(*) FROM media) + "
        "(SELECT count(*) FROM annotations)",
    )


@pytest.mark.parametrize("table", V3_TABLES)
def test_downgrade_keeps_every_kept_row_unchanged(
    table: str, original: Original, upgraded: Path, downgraded: Path
) -> None:
    back = content(downgraded, table, KEPT_COLUMNS[table])
    assert back == content(upgraded, table, KEPT_COLUMNS[table])
    moved = content(upgraded, f"{table}_quarantine", KEPT_COLUMNS[table])
    assert Counter(back) + Counter(moved) == Counter(original.content[table])


def test_downgrade_rebuilds_authors_in_order(
    messy: MessyV3, original: Original, upgraded: Path, downgraded: Path
) -> None:
    bad = {(p, i) for pairs in planted_bad_pairs(messy).values() for p, i, _ in pairs}
    bad_posts = {p for p, _ in bad}
    # posts with a repeated author: see test_repeated_author_keeps_its_first_position
    repeated = {p for p, _, _ in messy.repeated_author_pairs}
    gone = {(r[0], r[1]) for r in quarantined_post_rows(messy, original)}
    expected = {}
    for pid, created_at, authors in original.posts:
        if (pid, created_at) in gone or pid in repeated:
            continue
        survivors = [a for i, a in enumerate(authors or [], 1) if (pid, i) not in bad]
        expected[pid] = survivors or None  # V3 NULL and [] both come back as NULL
    back = dict(query(downgraded, "SELECT id, authors FROM posts"))
    assert {p: a for p, a in back.items() if p not in repeated} == expected
    assert set(back) == set(expected) | repeated
    # the lists of posts whose pairs all survived are their V3 lists exactly
    untouched = [
        (pid, authors)
        for pid, created_at, authors in original.posts
        if (pid, created_at) not in gone and authors and pid not in bad_posts
    ]
    assert untouched and all(back[pid] == authors for pid, authors in untouched)
    # the order is V4's position order
    at_head = query(
        upgraded, "SELECT post_id, list(profile_id ORDER BY position) FROM post_authors GROUP BY 1"
    )
    assert all(back[pid] == authors for pid, authors in at_head)


# Regression: v4e once copied the pairs of every row of posts_quarantine into
# post_authors_quarantine each time it ran, so upgrade -> downgrade v3 -> upgrade
# held every such pair twice. A second upgrade must quarantine nothing new.
def test_upgrade_after_downgrade_quarantines_nothing_new(
    downgraded: Path, upgraded: Path, tmp_path: Path
) -> None:
    path = copy_to(downgraded, tmp_path / "again.duckdb")
    command.upgrade(alembic_cfg(f"duckdb:///{path}", on_violation="quarantine"), V4)
    for table in [*V3_TABLES, "post_authors"]:
        q = f"{table}_quarantine"
        assert query(path, f"SELECT count(*) FROM {q}") == query(
            upgraded, f"SELECT count(*) FROM {q}"
        ), q

    # the same authors in the same order; positions close up where a repeated
    # author was quarantined ([a, b, a, c] -> a:1, b:2, c:4, then c:3 after a round trip)
    def authors_in_order(db: Path) -> list[tuple[str, list[str]]]:
        return query(
            db,
            "SELECT post_id, list(profile_id ORDER BY position) FROM post_authors "
            "GROUP BY post_id ORDER BY post_id",
        )

    assert authors_in_order(path) == authors_in_order(upgraded)
