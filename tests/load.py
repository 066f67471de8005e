"""An application's traffic, for measuring what a migration does to it.

:class:`Load` runs a few threads, each with its own connection, each doing
one small transaction after another (a read, an update, an insert), and
records when each one started, how long it took and whether it failed.
Windows of that record (before the migration, during it) give the
application's p99 latency and its errors. Used by the live-traffic tests
and by ``benchmarks/postgresql.py``.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

#: One application transaction: given a connection (in a transaction) and a
#: random source, it runs its statements.
Work = Callable[[sa.Connection, random.Random], None]


@dataclass(frozen=True)
class Sample:
    started: float
    seconds: float
    work: str
    error: str | None = None


@dataclass(frozen=True)
class Window:
    """The application's experience over a stretch of time."""

    count: int
    errors: list[str]
    p50: float
    p99: float
    worst: float

    def __str__(self) -> str:
        return (
            f"{self.count} transactions, {len(self.errors)} errors, "
            f"p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms, "
            f"max {self.worst * 1000:.1f} ms"
        )


class Load:
    """``threads`` workers doing ``workload`` against ``url`` until :meth:`stop`."""

    def __init__(self, url: str, workload: Sequence[Work], threads: int = 4, seed: int = 7) -> None:
        self.url = url
        self.workload = list(workload)
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(seed + n,), daemon=True)
            for n in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _work(self, seed: int) -> None:
        rng = random.Random(seed)
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                while not self._stopping.is_set():
                    work = rng.choice(self.workload)
                    started = time.perf_counter()
                    error = None
                    try:
                        with connection.begin():
                            work(connection, rng)
                    except Exception as exc:  # the application would see this one
                        error = f"{work.__name__}: {str(exc).splitlines()[0]}"
                    sample = Sample(started, time.perf_counter() - started, work.__name__, error)
                    with self._lock:
                        self.samples.append(sample)
                    time.sleep(0.002)  # the application is not a tight loop
        finally:
            engine.dispose()

    def window(self, start: float, end: float) -> Window:
        """What the application saw from ``start`` to ``end`` (perf_counter times)."""
        with self._lock:
            inside = [s for s in self.samples if start <= s.started < end]
        seconds = sorted(s.seconds for s in inside) or [0.0]
        p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
        return Window(
            count=len(inside),
            errors=[s.error for s in inside if s.error],
            p50=statistics.median(seconds),
            p99=p99,
            worst=seconds[-1],
        )


# -- the Egregora application on PostgreSQL (schema at V4 head) ----------------


def read_post(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text("SELECT id, title, status, summary FROM posts WHERE id = :id"),
        {"id": f"post-{rng.randint(1, POSTS)}"},
    ).all()


def read_authors(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text(
            "SELECT p.title, a.position, a.profile_id FROM posts AS p "
            "JOIN post_authors AS a ON a.post_id = p.id WHERE p.id = :id ORDER BY a.position"
        ),
        {"id": f"post-{rng.randint(1, AUTHORED)}"},
    ).all()


def publish_post(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text("UPDATE posts SET status = :status WHERE id = :id"),
        {
            "status": rng.choice(["draft", "published", "archived"]),
            "id": f"post-{rng.randint(1, POSTS)}",
        },
    )


def write_post(connection: sa.Connection, rng: random.Random) -> None:
    key = f"new-{rng.getrandbits(64):x}"
    connection.execute(
        sa.text(
            "INSERT INTO posts (id, content, created_at, title, slug, status) "
            "VALUES (:id, 'Written during the migration.', now(), :title, :id, 'draft')"
        ),
        {"id": key, "title": f"Live {key}"},
    )
    connection.execute(
        sa.text("INSERT INTO post_authors (post_id, position, profile_id) VALUES (:id, 0, :p)"),
        {"id": key, "p": f"profile-{rng.randint(1, PROFILES)}"},
    )


def write_journal(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO journals (id, created_at, title, window_start, window_end) "
            "VALUES (:id, now(), 'window', now() - INTERVAL '1 hour', now())"
        ),
        {"id": f"journal-new-{rng.getrandbits(64):x}"},
    )


def read_journal(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text("SELECT id, title, window_start, window_end FROM journals WHERE id = :id"),
        {"id": f"journal-{rng.randint(1, JOURNALS)}"},
    ).all()


EGREGORA_WORKLOAD: tuple[Work, ...] = (
    read_post,
    read_post,
    read_authors,
    read_journal,
    publish_post,
    write_post,
    write_journal,
)

POSTS = 1_000_000
AUTHORED = 300_000
PROFILES = 1_000
JOURNALS = 10_000

#: Grows a V4-head PostgreSQL database to the sizes above (rows the workload reads).
GROW_SQL = (
    f"INSERT INTO profiles (id, created_at, title) SELECT 'profile-' || i, now(), "
    f"'Profile ' || i FROM generate_series(1, {PROFILES}) AS g(i)",
    "INSERT INTO posts (id, content, created_at, title, slug, status) "
    "SELECT 'post-' || i, repeat('Lorem ipsum dolor sit amet. ', 1 + i % 4), "
    "TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * INTERVAL '1 minute', 'Post ' || i, "
    "'slug-' || i, (ARRAY['draft', 'published', 'archived'])[1 + i % 3] "
    f"FROM generate_series(1, {POSTS}) AS g(i)",
    "INSERT INTO post_authors (post_id, position, profile_id) "
    f"SELECT 'post-' || i, 0, 'profile-' || (1 + i % {PROFILES}) "
    f"FROM generate_series(1, {AUTHORED}) AS g(i)",
    "INSERT INTO journals (id, created_at, title, window_start, window_end) "
    "SELECT 'journal-' || i, now(), 'Journal ' || i, "
    "TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * INTERVAL '1 hour', "
    "TIMESTAMPTZ '2020-01-01 01:00:00+00' + i * INTERVAL '1 hour' "
    f"FROM generate_series(1, {JOURNALS}) AS g(i)",
)
