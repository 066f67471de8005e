"""A deterministic, messy legacy V3 database with a known set of planted violations.

``build_v3(path)`` creates the V3 tables (``legacy.create``) in a new DuckDB file and
fills them with a few thousand rows that look like the data in the field (see
shared/reference/legacy-v3.md): free text in every script, quotes, backslashes and
newlines, NULL in most nullable columns, NULL and empty lists, nested JSON, and
timestamps written in many time zones. On top of that it plants a known number of
rows that violate each constraint the V4 revisions add, and returns a
:class:`MessyV3` that says which rows they are.

Every planted row breaks one rule only (except ``MessyV3.overlap_post``, which
breaks two on purpose), and every other row is valid for V4, so the number of
violations of each rule follows from the plan.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from . import legacy

V3_TABLES = ("posts", "profiles", "media", "journals", "tasks", "annotations")
KEY = {table: "id" for table in V3_TABLES} | {"tasks": "task_id"}

#: Column types of the V3 tables, in order: the casts of the parameterized INSERTs.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "posts": (
        ("id", "VARCHAR"),
        ("content", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("source_checksum", "VARCHAR"),
        ("title", "VARCHAR"),
        ("slug", "VARCHAR"),
        ("date", "DATE"),
        ("summary", "VARCHAR"),
        ("authors", "VARCHAR[]"),
        ("tags", "VARCHAR[]"),
        ("status", "VARCHAR"),
    ),
    "profiles": (
        ("id", "VARCHAR"),
        ("content", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("source_checksum", "VARCHAR"),
        ("subject_uuid", "VARCHAR"),
        ("title", "VARCHAR"),
        ("alias", "VARCHAR"),
        ("summary", "VARCHAR"),
        ("avatar_url", "VARCHAR"),
        ("interests", "VARCHAR[]"),
    ),
    "media": (
        ("id", "VARCHAR"),
        ("content", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("source_checksum", "VARCHAR"),
        ("filename", "VARCHAR"),
        ("mime_type", "VARCHAR"),
        ("media_type", "VARCHAR"),
        ("phash", "VARCHAR"),
    ),
    "journals": (
        ("id", "VARCHAR"),
        ("content", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("source_checksum", "VARCHAR"),
        ("title", "VARCHAR"),
        ("window_start", "TIMESTAMPTZ"),
        ("window_end", "TIMESTAMPTZ"),
    ),
    "tasks": (
        ("task_id", "UUID"),
        ("task_type", "VARCHAR"),
        ("status", "VARCHAR"),
        ("payload", "JSON"),
        ("created_at", "TIMESTAMPTZ"),
        ("processed_at", "TIMESTAMPTZ"),
        ("error", "VARCHAR"),
    ),
    "annotations": (
        ("id", "VARCHAR"),
        ("content", "VARCHAR"),
        ("created_at", "TIMESTAMPTZ"),
        ("source_checksum", "VARCHAR"),
        ("parent_id", "VARCHAR"),
        ("parent_type", "VARCHAR"),
        ("author_id", "VARCHAR"),
    ),
}

# Pieces of text as people (and bots) really wrote them.
FRAGMENTS = (
    "hello",
    "Olá, mundo",
    "naïve café",
    "🎉",
    "👩🏽‍💻",  # a ZWJ sequence with a skin tone
    "🏳️‍🌈",
    "🇧🇷🇯🇵",
    "日本語のテキスト",
    "中文内容，标点。",
    "한국어 문장",
    "مرحبا بالعالم",
    "שלום עולם",
    "\u200fRTL mark\u200e",
    "e\u0301",  # e + combining acute
    "Z\u0351\u0352\u0353a\u0334l\u0335g\u0336o",
    "𝕳𝖊𝖑𝖑𝖔",  # astral plane
    "𓀀𓀁",
    "𠜎𠜱",
    "'",
    '"',
    "''",
    "O'Brien",
    '"quoted"',
    "`code`",
    "C:\\Users\\ana\\notes.md",
    "\\n is not a newline",
    "\\\\server\\share",
    "\n",
    "\r\n",
    "\t",
    "line one\nline two\n\nline four",
    "'; DROP TABLE posts; --",
    "%s %d {} ? $1 :name",
    "# Heading\n\n- item *one*\n- item _two_",
    "<script>alert('x')</script>",
    "\u00a0non-breaking\u00a0",
    "\u2028line separator",
    "zero\u200bwidth",
    "\ufeffBOM",
    "   ",
    "ß ﬁ Ǆ",
    "∑∞≠√",
)

OFFSETS = tuple(
    timezone(timedelta(minutes=m)) for m in (0, 330, -480, 840, -720, 345, -210, 60, 525)
)
EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 6 * 365 * 24 * 3600

POST_STATUSES = ("draft", "published", "archived")
TASK_STATUSES = ("pending", "processing", "completed", "failed", "superseded")
TASK_TYPES = ("generate_banner", "update_profile", "enrich_media")
MEDIA_TYPES = ("image", "video", "audio")
PARENT_TYPES = ("message", "post", "annotation")


Pair = tuple[str, int, str]  # (post_id, position from 1, profile_id)


@dataclass
class MessyV3:
    """What :func:`build_v3` planted. Ids are text; tasks' UUIDs are ``str(uuid)``."""

    path: Path
    rows: dict[str, int] = field(default_factory=dict)  # rows inserted per V3 table
    # v4a: journals whose window_end is before window_start (as instants)
    inverted_journals: list[str] = field(default_factory=list)
    # ... and journals that only *look* inverted (different offsets), valid
    tricky_valid_journals: list[str] = field(default_factory=list)
    # v4b: profiles whose title is ''
    empty_title_profiles: list[str] = field(default_factory=list)
    # v4c: rows with a NULL id (tasks: task_id), per table
    null_ids: dict[str, int] = field(default_factory=dict)
    # v4c: rows with a NULL created_at, per table (their ids)
    null_created_at: dict[str, list[str]] = field(default_factory=dict)
    # v4c: NOT NULL posts.title / posts.status / tasks.task_type / tasks.status
    null_post_titles: list[str] = field(default_factory=list)
    null_post_statuses: list[str] = field(default_factory=list)
    null_task_types: list[str] = field(default_factory=list)
    null_task_statuses: list[str] = field(default_factory=list)
    #: the one post with both a NULL title and a NULL status
    overlap_post: str = ""
    # v4c: ids that occur more than once, per table: id -> number of rows
    duplicate_ids: dict[str, dict[str, int]] = field(default_factory=dict)
    # v4d: repeated phash -> the media ids that carry it
    repeated_phash: dict[str, list[str]] = field(default_factory=dict)
    # v4e, on posts that survive v4c: NULL author elements (post_id, position)
    null_author_pairs: list[tuple[str, int]] = field(default_factory=list)
    # ... the later occurrence of an author repeated in one post's list
    repeated_author_pairs: list[Pair] = field(default_factory=list)
    # ... authors that no profile has ever had
    unknown_author_pairs: list[Pair] = field(default_factory=list)
    # ... authors whose profile exists in V3 but is quarantined by v4b or v4c
    quarantined_author_pairs: list[Pair] = field(default_factory=list)
    # v4f: annotations whose author_id has no profile at all / a quarantined profile
    unknown_annotation_authors: list[str] = field(default_factory=list)
    quarantined_annotation_authors: list[str] = field(default_factory=list)
    # valid look-alikes that must survive: ids that differ only by case, a trailing
    # space or Unicode normalization, and phash values that differ only by case
    lookalike_profile_ids: list[str] = field(default_factory=list)
    lookalike_phashes: list[str] = field(default_factory=list)

    def rejected_ids(self, table: str) -> set[str]:
        """Non-NULL ids whose rows (all of them) must leave ``table`` for its quarantine."""
        ids = set(self.null_created_at.get(table, []))
        ids |= {
            "journals": set(self.inverted_journals),
            "profiles": set(self.empty_title_profiles),
            "posts": set(self.null_post_titles) | set(self.null_post_statuses),
            "tasks": set(self.null_task_types) | set(self.null_task_statuses),
            "annotations": set(self.unknown_annotation_authors)
            | set(self.quarantined_annotation_authors),
        }.get(table, set())
        return ids

    def extra_duplicates(self, table: str) -> int:
        return sum(n - 1 for n in self.duplicate_ids.get(table, {}).values())

    def extra_phashes(self) -> int:
        return sum(len(ids) - 1 for ids in self.repeated_phash.values())


class _Messy:
    """Random messy values from one seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used: set[str] = set()

    def maybe(self, value: Any, p_null: float = 0.3) -> Any:
        return None if self.rng.random() < p_null else value

    def text(self, k: int = 4, p_null: float = 0.25, p_empty: float = 0.05) -> str | None:
        roll = self.rng.random()
        if roll < p_null:
            return None
        if roll < p_null + p_empty:
            return ""
        parts = self.rng.choices(FRAGMENTS, k=self.rng.randint(1, k))
        seps = ("", " ", "\n", " — ")
        return "".join(p + self.rng.choice(seps) for p in parts).rstrip(" ") or "x"

    def words(self, k: int = 3) -> str:
        """Non-empty text (a title that must stay valid)."""
        return (self.text(k, p_null=0, p_empty=0) or "").strip() or "untitled ✨"

    def instant(self) -> datetime:
        seconds = self.rng.randrange(SPAN_SECONDS)
        micro = self.rng.choice((0, 0, self.rng.randrange(1_000_000)))
        utc = EPOCH + timedelta(seconds=seconds, microseconds=micro)
        return utc.astimezone(self.rng.choice(OFFSETS))

    def checksum(self) -> str | None:
        return self.maybe(f"{self.rng.getrandbits(256):064x}", 0.2)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def fresh_id(self, prefix: str) -> str:
        """A new, unique, messy but non-empty id: a UUID or a unicode slug."""
        while True:
            kind = self.rng.random()
            if kind < 0.5:
                candidate = str(self.uuid())
            elif kind < 0.8:
                stem = self.rng.choice(
                    ("josé", "o'neil", "日本", "مريم", "zoë", 'say "hi"', "a\\b", "emoji-🎉")
                )
                candidate = f"{prefix}-{stem}-{self.rng.randrange(10**6)}"
            else:
                candidate = f"{prefix}-{self.rng.randrange(10**9):09d}"
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate

    def text_list(self) -> list[str | None] | None:
        roll = self.rng.random()
        if roll < 0.25:
            return None
        if roll < 0.4:
            return []
        items: list[str | None] = [
            self.rng.choice(("python", "日本", "café", "🎉", "", "a,b", 'q"t', "x\\y"))
            for _ in range(self.rng.randint(1, 4))
        ]
        if self.rng.random() < 0.2:
            items.append(None)  # tags and interests may hold NULLs (no constraint on them)
        return items

    def payload(self) -> str | None:
        if self.rng.random() < 0.2:
            return None
        doc = {
            "target": self.rng.choice((None, "post", "profile", "médiá 🎞")),
            "args": {
                "nested": {"deeper": [1, 2.5, None, True, {"k": self.text(2, p_null=0.1)}]},
                "text": self.text(3, p_null=0.1),
                "empty": {},
                "list": [],
            },
            "attempt": self.rng.randint(0, 5),
        }
        if self.rng.random() < 0.3:
            return json.dumps([doc, "second", 3], ensure_ascii=self.rng.random() < 0.5)
        return json.dumps(doc, ensure_ascii=self.rng.random() < 0.5)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Parameterized multi-row INSERTs, each value cast to its column's type."""
    columns = COLUMNS[table]
    names = ", ".join(f'"{name}"' for name, _ in columns)
    one = "(" + ", ".join(f"CAST(? AS {type_})" for _, type_ in columns) + ")"
    for start in range(0, len(rows), 200):
        chunk = rows[start : start + 200]
        params = [row.get(name) for row in chunk for name, _ in columns]
        con.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))}", params)


def _shuffled(rng: random.Random, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(rows)
    rng.shuffle(out)
    return out


#: the storage format of the files in the field (what DuckDB 1.4 creates)
FIELD_STORAGE_VERSION = "v1.0.0"


def build_v3(path: Path, n: int = 1000, seed: int = 20261128) -> MessyV3:
    """Create a V3 database at ``path`` with about ``n`` posts and proportional tables.

    Other tables: ~0.6 n profiles, 0.3 n media, journals and tasks, 0.5 n annotations.
    The planted violations are a fixed number, independent of ``n`` (n >= 200).
    """
    if n < 200:
        raise ValueError("build_v3 needs n >= 200 to plant its violations among valid rows")
    m = _Messy(seed)
    rng = m.rng
    plan = MessyV3(path=path)

    # -- profiles -------------------------------------------------------------
    def profile(pid: str | None, **over: Any) -> dict[str, Any]:
        row = {
            "id": pid,
            "content": m.text(6),
            "created_at": m.instant(),
            "source_checksum": m.checksum(),
            "subject_uuid": m.maybe(str(m.uuid()), 0.3),
            "title": m.maybe(m.words(), 0.15),  # NULL passes the CHECK
            "alias": m.text(2, p_null=0.5),
            "summary": m.text(5),
            "avatar_url": m.maybe(f"https://example.org/a/{rng.randrange(10**6)}.png?q=ü&x=1"),
            "interests": m.text_list(),
        }
        row.update(over)
        return row

    profiles: list[dict[str, Any]] = []
    valid_profiles: list[str] = []
    for _ in range(int(0.6 * n)):
        pid = m.fresh_id("prof")
        valid_profiles.append(pid)
        profiles.append(profile(pid))
    # look-alike ids: distinct for DuckDB (binary comparison), must all survive
    for pid in ("Ana", "ana", "ana ", "jos\u00e9", "jose\u0301"):
        m.used.add(pid)
        valid_profiles.append(pid)
        plan.lookalike_profile_ids.append(pid)
        profiles.append(profile(pid, title=f"look-alike {pid!r}"))
    for _ in range(7):
        pid = m.fresh_id("prof-empty")
        plan.empty_title_profiles.append(pid)
        profiles.append(profile(pid, title=""))
    plan.null_created_at["profiles"] = []
    for _ in range(2):
        pid = m.fresh_id("prof-nots")
        plan.null_created_at["profiles"].append(pid)
        profiles.append(profile(pid, created_at=None))
    plan.null_ids["profiles"] = 3
    profiles += [profile(None) for _ in range(3)]
    plan.duplicate_ids["profiles"] = {}
    for copies in (2, 2, 3):
        pid = rng.choice(valid_profiles[:100])
        while pid in plan.duplicate_ids["profiles"]:
            pid = rng.choice(valid_profiles[:100])
        plan.duplicate_ids["profiles"][pid] = copies
        profiles += [profile(pid) for _ in range(copies - 1)]
    # references to profiles that V3 has but v4b/v4c quarantine
    gone_profiles = plan.empty_title_profiles + plan.null_created_at["profiles"]

    # -- posts ----------------------------------------------------------------
    def authors_list() -> list[str] | None:
        roll = rng.random()
        if roll < 0.2:
            return None
        if roll < 0.3:
            return []
        return rng.sample(valid_profiles, rng.randint(1, 4))

    def post(pid: str | None, **over: Any) -> dict[str, Any]:
        title = m.words()
        row = {
            "id": pid,
            "content": m.text(8),
            "created_at": m.instant(),
            "source_checksum": m.checksum(),
            "title": title,
            "slug": m.maybe(title.lower().replace(" ", "-")[:40], 0.2),
            "date": m.maybe(
                rng.choice(
                    (date(1970, 1, 1), date(2000, 2, 29), date(2024, 12, 31))
                    + tuple(date(2019, 1, 1) + timedelta(days=rng.randrange(2200)) for _ in "ab")
                ),
                0.3,
            ),
            "summary": m.text(4),
            "authors": authors_list(),
            "tags": m.text_list(),
            "status": rng.choice(POST_STATUSES),
        }
        row.update(over)
        return row

    posts: list[dict[str, Any]] = []
    valid_posts: list[str] = []
    for _ in range(n):
        pid = m.fresh_id("post")
        valid_posts.append(pid)
        posts.append(post(pid))
    by_id = {row["id"]: row for row in posts}
    carriers = iter(rng.sample(valid_posts[100:], 40))  # valid posts that carry bad authors

    def plant_author(bad: str | None) -> tuple[str, int]:
        """Put ``bad`` among valid authors of a fresh carrier post; (post_id, position)."""
        pid = next(carriers)
        good = rng.sample(valid_profiles, rng.randint(0, 3))
        at = rng.randint(0, len(good))
        by_id[pid]["authors"] = [*good[:at], bad, *good[at:]]
        return pid, at + 1

    for _ in range(8):
        ghost = rng.choice(("ghost-", "deleted-👻-", "o'missing-", "")) + str(m.uuid())[:8]
        pid, pos = plant_author(ghost)
        plan.unknown_author_pairs.append((pid, pos, ghost))
    for bad in gone_profiles[:4]:
        pid, pos = plant_author(bad)
        plan.quarantined_author_pairs.append((pid, pos, bad))
    for _ in range(5):
        pid, pos = plant_author(None)
        plan.null_author_pairs.append((pid, pos))
    for _ in range(4):
        pid = next(carriers)
        a, b, c = rng.sample(valid_profiles, 3)
        by_id[pid]["authors"] = [a, b, a, c]
        plan.repeated_author_pairs.append((pid, 3, a))
    # a post whose only problems are... none: every author valid but listed in a
    # messy order, and a post whose authors are look-alike ids
    by_id[next(carriers)]["authors"] = list(plan.lookalike_profile_ids)

    for _ in range(6):
        pid = m.fresh_id("post-notitle")
        plan.null_post_titles.append(pid)
        posts.append(post(pid, title=None))
    for _ in range(4):
        pid = m.fresh_id("post-nostatus")
        plan.null_post_statuses.append(pid)
        posts.append(post(pid, status=None))
    plan.overlap_post = m.fresh_id("post-both")
    plan.null_post_titles.append(plan.overlap_post)
    plan.null_post_statuses.append(plan.overlap_post)
    # its authors go to post_authors_quarantine with it, unknown one included
    posts.append(post(plan.overlap_post, title=None, status=None, authors=["ghost-x", None]))
    plan.null_created_at["posts"] = []
    for _ in range(3):
        pid = m.fresh_id("post-nots")
        plan.null_created_at["posts"].append(pid)
        posts.append(post(pid, created_at=None))
    plan.null_ids["posts"] = 3
    posts += [post(None) for _ in range(3)]
    plan.duplicate_ids["posts"] = {}
    for copies in (2, 2, 2, 2, 3):
        pid = rng.choice(valid_posts[:100])
        while pid in plan.duplicate_ids["posts"]:
            pid = rng.choice(valid_posts[:100])
        plan.duplicate_ids["posts"][pid] = copies
        # random created_at: the original is not always the earliest copy, and the
        # rows are shuffled before they are written, so file order picks nothing
        posts += [post(pid) for _ in range(copies - 1)]

    # -- media ----------------------------------------------------------------
    def medium(mid: str | None, **over: Any) -> dict[str, Any]:
        kind = m.maybe(rng.choice(MEDIA_TYPES), 0.1)
        row = {
            "id": mid,
            "content": m.text(3),
            "created_at": m.instant(),
            "source_checksum": m.checksum(),
            "filename": m.maybe(
                rng.choice(("IMG_0001.JPG", "vidéo 🎬.mp4", "音声.ogg", "a'b.png"))
            ),
            "mime_type": m.maybe(rng.choice(("image/jpeg", "video/mp4", "audio/ogg", "")), 0.2),
            "media_type": kind,
            "phash": m.maybe(f"{rng.getrandbits(64):016x}", 0.15),  # NULL: not hashed yet
        }
        row.update(over)
        return row

    media: list[dict[str, Any]] = []
    for _ in range(int(0.3 * n)):
        media.append(medium(m.fresh_id("media")))
    for phash in ("00ff00ff00ff00ff", "00FF00FF00FF00FF"):  # differ by case only: distinct
        plan.lookalike_phashes.append(phash)
        media.append(medium(m.fresh_id("media-case"), phash=phash))
    for copies in (2, 2, 3, 2):
        phash = f"{rng.getrandbits(64):016x}"
        ids = [m.fresh_id("media-dup") for _ in range(copies)]
        plan.repeated_phash[phash] = ids
        media += [medium(mid, phash=phash) for mid in ids]
    plan.null_created_at["media"] = []
    for _ in range(2):
        mid = m.fresh_id("media-nots")
        plan.null_created_at["media"].append(mid)
        media.append(medium(mid, created_at=None, phash=None))
    plan.null_ids["media"] = 2
    media += [medium(None, phash=None) for _ in range(2)]
    plan.duplicate_ids["media"] = {}
    for copies in (2, 2):
        mid = media[rng.randrange(50)]["id"]
        while mid in plan.duplicate_ids["media"]:
            mid = media[rng.randrange(50)]["id"]
        plan.duplicate_ids["media"][mid] = copies
        media += [medium(mid, phash=None) for _ in range(copies - 1)]

    # -- journals -------------------------------------------------------------
    def journal(jid: str | None, **over: Any) -> dict[str, Any]:
        start = m.instant()
        end = (start + timedelta(minutes=rng.randrange(0, 600))).astimezone(rng.choice(OFFSETS))
        row = {
            "id": jid,
            "content": m.text(10),
            "created_at": m.instant(),
            "source_checksum": m.checksum(),
            "title": m.text(2),
            "window_start": m.maybe(start, 0.1),
            "window_end": m.maybe(end, 0.1),
        }
        row.update(over)
        return row

    journals: list[dict[str, Any]] = []
    for _ in range(int(0.3 * n)):
        journals.append(journal(m.fresh_id("journal")))
    same = m.instant()
    journals.append(journal(m.fresh_id("journal-empty"), window_start=same, window_end=same))
    utc, plus5, minus3 = OFFSETS[0], OFFSETS[1], OFFSETS[6]
    # inverted by an hour or by a microsecond; one looks ordered on the wall clock
    # but is inverted as instants (10:00Z to 11:00+05:30, i.e. 05:30Z)
    inverted = [
        (datetime(2024, 1, 1, 10, tzinfo=utc), datetime(2024, 1, 1, 11, tzinfo=plus5)),
        (datetime(2023, 6, 1, 12, 0, 0, 1, tzinfo=utc), datetime(2023, 6, 1, 12, tzinfo=utc)),
    ]
    for _ in range(7):
        end = m.instant()
        inverted.append((end + timedelta(hours=rng.randint(1, 48)), end))
    for start, end in inverted:
        jid = m.fresh_id("journal-inv")
        plan.inverted_journals.append(jid)
        journals.append(journal(jid, window_start=start, window_end=end))
    # valid, though the wall clock says otherwise: 10:00+05:30 (04:30Z) to 09:00-03:30
    jid = m.fresh_id("journal-tz")
    plan.tricky_valid_journals.append(jid)
    journals.append(
        journal(
            jid,
            window_start=datetime(2024, 1, 1, 10, tzinfo=plus5),
            window_end=datetime(2024, 1, 1, 9, tzinfo=minus3),
        )
    )
    plan.null_created_at["journals"] = []
    jid = m.fresh_id("journal-nots")
    plan.null_created_at["journals"].append(jid)
    journals.append(journal(jid, created_at=None))
    plan.null_ids["journals"] = 2
    journals += [journal(None) for _ in range(2)]
    plan.duplicate_ids["journals"] = {}
    for copies in (2, 3):
        jid = journals[rng.randrange(50)]["id"]
        while jid in plan.duplicate_ids["journals"]:
            jid = journals[rng.randrange(50)]["id"]
        plan.duplicate_ids["journals"][jid] = copies
        journals += [journal(jid) for _ in range(copies - 1)]

    # -- tasks ----------------------------------------------------------------
    def task(tid: uuid.UUID | None, **over: Any) -> dict[str, Any]:
        status = rng.choice(TASK_STATUSES)
        created = m.instant()
        row = {
            "task_id": tid,
            "task_type": rng.choice(TASK_TYPES),
            "status": status,
            "payload": m.payload(),
            "created_at": created,
            "processed_at": (created + timedelta(seconds=rng.randrange(86400))).astimezone(
                rng.choice(OFFSETS)
            )
            if status in ("completed", "failed")
            else None,
            "error": (
                'Traceback (most recent call last):\n  File "x.py", line 1\n'
                + (m.text(3, p_null=0) or "")
                if status == "failed"
                else None
            ),
        }
        row.update(over)
        return row

    tasks: list[dict[str, Any]] = []
    task_ids: list[uuid.UUID] = []
    for _ in range(int(0.3 * n)):
        tid = m.uuid()
        task_ids.append(tid)
        tasks.append(task(tid))
    plan.null_created_at["tasks"] = []
    for _ in range(2):
        tid = m.uuid()
        plan.null_created_at["tasks"].append(str(tid))
        tasks.append(task(tid, created_at=None))
    for _ in range(3):
        tid = m.uuid()
        plan.null_task_types.append(str(tid))
        tasks.append(task(tid, task_type=None))
    for _ in range(2):
        tid = m.uuid()
        plan.null_task_statuses.append(str(tid))
        tasks.append(task(tid, status=None))
    plan.null_ids["tasks"] = 2
    tasks += [task(None) for _ in range(2)]
    plan.duplicate_ids["tasks"] = {}
    for copies in (2, 2, 2):
        tid = rng.choice(task_ids[:50])
        while str(tid) in plan.duplicate_ids["tasks"]:
            tid = rng.choice(task_ids[:50])
        plan.duplicate_ids["tasks"][str(tid)] = copies
        tasks += [task(tid) for _ in range(copies - 1)]

    # -- annotations ----------------------------------------------------------
    annotation_ids: list[str] = []

    def annotation(aid: str | None, **over: Any) -> dict[str, Any]:
        parent_type = m.maybe(rng.choice(PARENT_TYPES), 0.1)
        parent = {
            "post": lambda: rng.choice(valid_posts),
            "annotation": lambda: rng.choice(annotation_ids or ["a-missing"]),
        }.get(parent_type or "", lambda: f"msg-{rng.randrange(10**6)}@wa.example")
        row = {
            "id": aid,
            "content": m.text(5),
            "created_at": m.instant(),
            "source_checksum": m.checksum(),
            "parent_id": m.maybe(parent(), 0.1),  # no FOREIGN KEY: may dangle
            "parent_type": parent_type,
            "author_id": m.maybe(rng.choice(valid_profiles), 0.25),
        }
        row.update(over)
        return row

    annotations: list[dict[str, Any]] = []
    for _ in range(int(0.5 * n)):
        aid = m.fresh_id("ann")
        annotations.append(annotation(aid))
        annotation_ids.append(aid)
    for _ in range(6):
        aid = m.fresh_id("ann-ghost")
        plan.unknown_annotation_authors.append(aid)
        annotations.append(annotation(aid, author_id=f"ghost-{rng.randrange(10**6)}"))
    for bad in gone_profiles[-3:]:
        aid = m.fresh_id("ann-gone")
        plan.quarantined_annotation_authors.append(aid)
        annotations.append(annotation(aid, author_id=bad))
    plan.null_created_at["annotations"] = []
    for _ in range(2):
        aid = m.fresh_id("ann-nots")
        plan.null_created_at["annotations"].append(aid)
        annotations.append(annotation(aid, created_at=None))
    plan.null_ids["annotations"] = 2
    annotations += [annotation(None) for _ in range(2)]
    plan.duplicate_ids["annotations"] = {}
    for copies in (2, 2):
        aid = rng.choice(annotation_ids[:50])
        while aid in plan.duplicate_ids["annotations"]:
            aid = rng.choice(annotation_ids[:50])
        plan.duplicate_ids["annotations"][aid] = copies
        annotations += [annotation(aid) for _ in range(copies - 1)]

    # -- write ----------------------------------------------------------------
    data = {
        "posts": posts,
        "profiles": profiles,
        "media": media,
        "journals": journals,
        "tasks": tasks,
        "annotations": annotations,
    }
    # in the format the application's DuckDB 1.4 creates (its default setting,
    # v0.10.2, writes the v1.0.0 format: measured on 1.4.3), as field files are
    con = duckdb.connect(str(path), config={"storage_compatibility_version": FIELD_STORAGE_VERSION})
    try:
        legacy.create(con)
        for table, table_rows in data.items():
            _insert(con, table, _shuffled(rng, table_rows))
            plan.rows[table] = len(table_rows)
    finally:
        con.close()
    return plan
