"""foreign_key_violations: the rows a FOREIGN KEY the database does not enforce would refuse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import sqlalchemy as sa

from egregora.database import schemas
from egregora.database.integrity import Orphans, foreign_key_violations, unenforced_keys

from .test_foreign_keys import family


def test_orphans_are_named_through_any_kind_of_connection(tmp_path: Path) -> None:
    meta = family(deferrable=True, initially="DEFERRED")
    url = f"duckdb:///{tmp_path / 'f.duckdb'}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    meta.create_all(engine)
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO parents VALUES ('p', 1, NULL, 't'), ('q''s', 2, [], NULL)")
        c.exec_driver_sql(
            "INSERT INTO children VALUES (1, 'p', 1), (2, 'p', 2), (3, 'p', 2), "
            "(4, 'q''s', 2), (5, NULL, 9), (6, 'ghost', NULL), (7, 'zz 🎉', 3)"
        )
    expected = [
        Orphans("fk_c_p", "children", ("pa", "pb"), "parents", ("a", "b"), 3,
                (("p", 2), ("zz 🎉", 3))),
    ]  # fmt: skip
    assert foreign_key_violations(engine, meta) == expected
    with engine.connect() as connection:
        assert foreign_key_violations(connection, meta) == expected
    raw = duckdb.connect(str(tmp_path / "f.duckdb"))
    assert foreign_key_violations(raw, meta) == expected
    assert expected[0].describe() == (
        "children(pa, pb) -> parents(a, b) [fk_c_p]: 3 rows reference no row "
        "(missing: ('p', 2), ('zz 🎉', 3))"
    )
    # a plain key is DuckDB's business: nothing to check
    assert unenforced_keys(family(), "duckdb") == []
    # a table or a column the database lacks (another revision) is skipped
    raw.execute("DROP TABLE children")
    assert foreign_key_violations(raw, meta) == []
    raw.execute("CREATE TABLE children (id INTEGER, pa VARCHAR)")
    raw.execute("INSERT INTO children VALUES (1, 'ghost')")
    assert foreign_key_violations(raw, meta) == []


def test_the_schema_on_duckdb_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    duck = sa.create_engine(f"duckdb:///{tmp_path / 'h.duckdb'}", poolclass=sa.pool.NullPool)
    pg = sa.create_engine(pg_url)
    for engine in (duck, pg):
        schemas.metadata.create_all(engine)
        assert foreign_key_violations(engine) == []
    with duck.begin() as c:
        c.exec_driver_sql(
            "INSERT INTO annotations (id, created_at, author_id) VALUES ('a', now(), 'egregora')"
        )
    (found,) = foreign_key_violations(duck)
    assert (found.constraint, found.rows, found.missing) == (
        "fk_annotations_author_id_profiles",
        1,
        (("egregora",),),
    )
    # PostgreSQL enforces every key itself (a deferred one at COMMIT): nothing to read
    assert unenforced_keys(schemas.metadata, "postgresql") == []
    assert foreign_key_violations(pg) == []
    pg.dispose()
