"""PostgreSQL under live traffic: ``alembic upgrade head`` while the application works.

A V4-head database grown to a million posts (with post_authors, profiles and
journals); four threads do the application's reads, updates and inserts on
posts, post_authors and journals; a revision written by autogenerate from an
edit of schemas.py (a CHECK on posts.title, posts.slug NOT NULL: one
create_copy_swap) runs meanwhile. The application sees no error, its p99
latency stays under the stated bound, and the new rules hold.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import sqlalchemy as sa

from alembic import command
from egregora.database import schemas

from .conftest import ROOT
from .load import EGREGORA_WORKLOAD, GROW_SQL, POSTS, Load
from .test_everyday_loop import Project

#: The bound this project states: the application's p99 during the migration
#: stays under 100 ms and no transaction waits a second (measured: p99 3.3 ms
#: before, 5.6 ms during, max 37 ms; with the scans inside the migration's
#: transaction, as before postgresql/aftercommit.py, the p99 was 260 ms)
P99_BOUND = 0.1
WORST_BOUND = 1.0


def _grow(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        for statement in GROW_SQL:
            connection.execute(sa.text(statement))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def _edited() -> sa.MetaData:
    edited = sa.MetaData(naming_convention=schemas.NAMING_CONVENTION)
    for table in schemas.metadata.sorted_tables:
        table.to_metadata(edited)
    posts = edited.tables["posts"]
    posts.append_constraint(sa.CheckConstraint("length(title) > 0", name="title_not_empty"))
    posts.c.slug.nullable = False
    return edited


def test_upgrade_head_on_a_million_posts_under_load(tmp_path: Path, pg_url: str) -> None:
    folder = tmp_path / "alembic"
    shutil.copytree(ROOT / "alembic", folder, ignore=shutil.ignore_patterns("__pycache__"))
    project = Project(folder, pg_url)
    command.upgrade(project.cfg(schemas.metadata), "head")
    _grow(pg_url)
    edited = _edited()
    text = project.generate(edited, "r_live")
    assert "op.create_copy_swap(" in text

    with Load(pg_url, EGREGORA_WORKLOAD) as load:
        time.sleep(3)
        started = time.perf_counter()
        command.upgrade(project.cfg(edited), "head")
        ended = time.perf_counter()
        time.sleep(1)
    before = load.window(started - 3, started)
    during = load.window(started, ended)
    print(f"\nbefore: {before}\nduring ({ended - started:.1f} s): {during}")

    assert before.count > 100 and during.count > 100
    assert during.errors == []
    assert during.p99 < P99_BOUND, during
    assert during.worst < WORST_BOUND, during
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT count(*) FROM posts").scalar_one()
        validated = connection.exec_driver_sql(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'chk_posts_title_not_empty'"
        ).scalar_one()
        nullable = connection.exec_driver_sql(
            "SELECT is_nullable FROM information_schema.columns "
            "WHERE table_name = 'posts' AND column_name = 'slug'"
        ).scalar_one()
    engine.dispose()
    assert rows >= POSTS  # nothing lost; the application's new posts kept
    assert validated is True
    assert nullable == "NO"
