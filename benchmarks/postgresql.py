"""What ``op.create_copy_swap`` costs on PostgreSQL, where it alters in place.

A throw-away server (tests/pg_server.py: initdb + pg_ctl) gets a database
with a posts-shaped table (UUID PRIMARY KEY, UNIQUE slug, an index on
created_at, a CHECK on status, a list column) of ``--rows`` rows. Each way
runs on its own copy (``CREATE DATABASE ... TEMPLATE``) and adds the CHECK
``length(title) > 0``, which every row satisfies:

- ``create_copy_swap``: the preflight count, then ``ADD CONSTRAINT ... NOT
  VALID`` and ``VALIDATE CONSTRAINT``, through SQLAlchemy and Alembic;
- ``plain ALTER``: Alembic's ``op.create_check_constraint`` (one validating
  scan, no report of violating rows, ACCESS EXCLUSIVE throughout);
- ``copy and swap``: what the DuckDB plan does, by hand on PostgreSQL (new
  table, copy, drop, rename, keys and index).

The time is the migration's, from its transaction's start to its commit (and,
for create_copy_swap, to the end of what it finishes after the commit, as
``alembic upgrade`` runs it: environment.py, postgresql/aftercommit.py); the server does
the work, so the client's memory is not measured. Meanwhile four threads do
an application's reads, updates and inserts on posts (tests/load.py), and
the application's p99 latency during each way is printed beside the one
measured just before it. Goals: create_copy_swap at most 2.5x the plain
ALTER (it scans once more, to count and sample violating rows first) and at
most 0.3x the copy and swap; the application's p99 during create_copy_swap
within 2x its p99 before.

Run: .venv/bin/python benchmarks/postgresql.py --rows 1000000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.migration.environment import MIGRATION_LOCK_KEY
from egregora.database.migration.postgresql import aftercommit as afterwards
from egregora.database.migration.postgresql.locks import LockPolicy
from egregora.database.migration.runstate import RUN_OPTION, RunState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import pg_server  # noqa: E402
from tests.load import Load, Window  # noqa: E402

NEW_CHECK = "length(title) > 0"
TABLE_SQL = """
CREATE TABLE posts (
    id UUID NOT NULL,
    slug VARCHAR,
    title VARCHAR,
    content VARCHAR,
    status VARCHAR,
    created_at TIMESTAMP WITH TIME ZONE,
    tags VARCHAR[],
    CONSTRAINT pk_posts PRIMARY KEY (id),
    CONSTRAINT uq_posts_slug UNIQUE (slug),
    CONSTRAINT chk_posts_status CHECK (status IN ('draft', 'published', 'archived'))
)"""
FILL_SQL = """
INSERT INTO posts
SELECT
    md5(i::text)::uuid,
    'slug-' || i,
    'Post number ' || i,
    repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', 1 + i %% 4) || i,
    (ARRAY['draft', 'published', 'archived'])[1 + i %% 3],
    TIMESTAMPTZ '2020-01-01 00:00:00+00' + i * INTERVAL '1 minute',
    ARRAY['tag-' || (i %% 7), 'tag-' || (i %% 11)]
FROM generate_series(1, %(rows)s) AS r(i)
"""
INDEX_SQL = "CREATE INDEX ix_posts_created_at ON posts (created_at)"


def posts(*extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        "posts",
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String()),
        sa.Column("title", sa.String()),
        sa.Column("content", sa.String()),
        sa.Column("status", sa.String()),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("tags", sa.ARRAY(sa.String())),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.UniqueConstraint("slug", name="uq_posts_slug"),
        sa.CheckConstraint("status IN ('draft', 'published', 'archived')", name="chk_posts_status"),
        sa.Index("ix_posts_created_at", "created_at"),
        *extra,
    )


def op_way(connection: sa.Connection) -> None:
    """As ``alembic upgrade`` runs it: the run's transaction, then what it finishes after."""
    queue: list[afterwards.AfterCommit] = []
    state = RunState(lock_policy=LockPolicy(), after_commit=queue)
    with connection.begin():
        LockPolicy().apply(connection)  # as environment.py sets it
        context = MigrationContext.configure(connection, opts={RUN_OPTION: state})
        Operations(context).create_copy_swap(
            posts(sa.CheckConstraint(NEW_CHECK, name="chk_posts_title"))
        )
        afterwards.record(connection, queue)
    afterwards.finish(connection, LockPolicy(), MIGRATION_LOCK_KEY)


def plain_way(connection: sa.Connection) -> None:
    with connection.begin():
        Operations(MigrationContext.configure(connection)).create_check_constraint(
            "chk_posts_title", "posts", NEW_CHECK
        )


def copy_way(connection: sa.Connection) -> None:
    with connection.begin():
        for statement in (
            "CREATE TABLE posts_new (LIKE posts INCLUDING DEFAULTS)",
            "ALTER TABLE posts_new ADD CONSTRAINT chk_posts_status_new "
            "CHECK (status IN ('draft', 'published', 'archived'))",
            f"ALTER TABLE posts_new ADD CONSTRAINT chk_posts_title CHECK ({NEW_CHECK})",
            "INSERT INTO posts_new SELECT * FROM posts",
            "DROP TABLE posts",
            "ALTER TABLE posts_new RENAME TO posts",
            "ALTER TABLE posts ADD CONSTRAINT pk_posts PRIMARY KEY (id)",
            "ALTER TABLE posts ADD CONSTRAINT uq_posts_slug UNIQUE (slug)",
            INDEX_SQL,
        ):
            connection.exec_driver_sql(statement)


def read_post(connection: sa.Connection, rng: random.Random) -> None:
    slug = f"slug-{rng.randint(1, ROWS[0])}"
    connection.execute(sa.text("SELECT id, title FROM posts WHERE slug = :s"), {"s": slug}).all()


def update_post(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text("UPDATE posts SET status = 'archived' WHERE slug = :s"),
        {"s": f"slug-{rng.randint(1, ROWS[0])}"},
    )


def insert_post(connection: sa.Connection, rng: random.Random) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO posts (id, slug, title, content, status, created_at) VALUES "
            "(gen_random_uuid(), :s, 'Live', 'written during the migration', 'draft', now())"
        ),
        {"s": f"live-{rng.getrandbits(64):x}"},
    )


WORKLOAD = (read_post, read_post, update_post, insert_post)
ROWS = [0]  # the table's size, for the workload's keys


WAYS: dict[str, Callable[[sa.Connection], None]] = {
    "create_copy_swap": op_way,
    "plain ALTER": plain_way,
    "copy and swap": copy_way,
}


def timed(url: str, way: Callable[[sa.Connection], None]) -> tuple[float, Window, Window]:
    """The way's seconds, and the application's experience before and during it."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with Load(url, WORKLOAD) as load, engine.connect() as connection:
            time.sleep(2)
            started = time.perf_counter()
            way(connection)
            seconds = time.perf_counter() - started
            load.stop()
            before = load.window(started - 2, started)
            during = load.window(started, started + seconds)
            checks = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_constraint WHERE conname = 'chk_posts_title' "
                "AND convalidated"
            ).scalar()
            assert checks == 1, "the new CHECK is missing or not validated"
            return seconds, before, during
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    ROWS[0] = args.rows
    server = pg_server.start()
    try:
        template = server.create_database("bench_template")
        engine = sa.create_engine(template, poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            connection.exec_driver_sql(TABLE_SQL)
            connection.exec_driver_sql(FILL_SQL, {"rows": args.rows})
            connection.exec_driver_sql(INDEX_SQL)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE posts")
        engine.dispose()
        results: dict[str, list[tuple[float, Window, Window]]] = {name: [] for name in WAYS}
        admin = sa.create_engine(server.url, isolation_level="AUTOCOMMIT")
        for turn in range(args.repeat):
            for name, way in WAYS.items():
                copy = f"bench_{turn}_{len(results[name])}_{abs(hash(name)) % 10_000}"
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'CREATE DATABASE "{copy}" TEMPLATE bench_template')
                results[name].append(timed(server.database_url(copy), way))
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE "{copy}"')
        admin.dispose()
    finally:
        server.stop()
    median = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    p99 = {name: statistics.median(r[2].p99 for r in runs) for name, runs in results.items()}
    before = {name: statistics.median(r[1].p99 for r in runs) for name, runs in results.items()}
    worst = {name: max(r[2].worst for r in runs) for name, runs in results.items()}
    errors = {name: sum(len(r[2].errors) for r in runs) for name, runs in results.items()}
    print(f"PostgreSQL, {args.rows:,} rows, adding CHECK ({NEW_CHECK}), medians of {args.repeat}")
    print(f"  {'way':<18} {'time':>8}   application: p99 before   p99 during   max during  errors")
    for name, seconds in median.items():
        print(
            f"  {name:<18} {seconds:6.2f} s   {before[name] * 1000:20.1f} ms "
            f"{p99[name] * 1000:9.1f} ms {worst[name] * 1000:9.1f} ms {errors[name]:7d}"
        )
    op = median["create_copy_swap"]
    print(f"  create_copy_swap / plain ALTER   {op / median['plain ALTER']:.2f}  (goal <= 2.5)")
    print(f"  create_copy_swap / copy and swap {op / median['copy and swap']:.2f}  (goal <= 0.3)")
    ratio = p99["create_copy_swap"] / before["create_copy_swap"]
    print(f"  application p99 during / before, create_copy_swap {ratio:.2f}  (goal <= 2)")
    for name in ("plain ALTER", "copy and swap"):
        print(
            f"  application p99 during {name} / during create_copy_swap "
            f"{p99[name] / p99['create_copy_swap']:.1f}"
        )


if __name__ == "__main__":
    main()
