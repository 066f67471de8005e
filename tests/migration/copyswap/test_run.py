"""op.create_copy_swap on real DuckDB files: every constraint kind, dependents, preservation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from egregora.database.migration.copyswap.model import RowPolicy
from egregora.database.migration.copyswap.op import CreateCopySwapOp
from egregora.database.migration.errors import ConstraintViolations, InvalidOperation
from egregora.database.migration.runstate import RUN_OPTION, RunState

from ...conftest import database_digest
from ...copy_swap_helpers import apply, invoke, rows, sql, table_names

TZ = sa.TIMESTAMP(timezone=True)


def _items(*extra: sa.SchemaItem, **types: sa.types.TypeEngine[object]) -> sa.Table:
    return sa.Table(
        "items",
        sa.MetaData(),
        sa.Column("id", types.get("id", sa.String()), primary_key="pk" in types),
        sa.Column("n", types.get("n", sa.String())),
        sa.Column("label", sa.String(), nullable="label_not_null" not in types),
        sa.Column("created_at", TZ),
        *extra,
    )


@pytest.fixture
def items(db_path: Path) -> Path:
    sql(
        db_path,
        "CREATE TABLE items (id VARCHAR, n VARCHAR, label VARCHAR, created_at TIMESTAMPTZ)",
        """INSERT INTO items VALUES
            ('a', '1', 'ok', TIMESTAMPTZ '2024-01-01 00:00:00+00'),
            ('b', '2', '', TIMESTAMPTZ '2024-01-02 00:00:00+00'),
            ('c', 'x', NULL, TIMESTAMPTZ '2024-01-03 00:00:00+00'),
            ('a', '4', 'dup', TIMESTAMPTZ '2023-12-31 00:00:00+00'),
            (NULL, '5', 'no id', NULL)""",
        "CREATE TABLE parents (id VARCHAR PRIMARY KEY)",
        "INSERT INTO parents VALUES ('1'), ('2'), ('4'), ('5')",
    )
    return db_path


# (target, rule kind, rows rejected, their ids) for each constraint kind
CASES = {
    "check": (
        _items(sa.CheckConstraint("length(label) > 0", name="ck_label")),
        "CHECK ck_label",
        1,
        ["b"],
    ),
    "not null": (_items(label_not_null=sa.String()), "NOT NULL items.label", 1, ["c"]),
    "primary key": (
        _items(pk=sa.String()),
        # one NULL id, and the later of the two 'a' rows (the earlier created_at is kept)
        "PRIMARY KEY",
        2,
        [None, "a"],
    ),
    "unique": (_items(sa.UniqueConstraint("id", name="uq_id")), "UNIQUE uq_id", 1, ["a"]),
    "foreign key": (
        _items(sa.ForeignKeyConstraint(["n"], ["parents.id"], name="fk_n")),
        "FOREIGN KEY fk_n",
        1,
        ["c"],
    ),
    "conversion": (_items(n=sa.Integer()), "conversion n", 1, ["c"]),
}


@pytest.mark.parametrize("case", CASES)
def test_fail_mode_reports_and_changes_nothing(items: Path, case: str) -> None:
    target, rule, count, _ids = CASES[case]
    before = database_digest(items)
    with pytest.raises(ConstraintViolations) as err:
        apply(items, target)
    message = str(err.value)
    assert rule.split()[0] in message
    if case == "primary key":  # reported as two rules: the NULL id, and the duplicate
        assert "NOT NULL items.id" in message and message.count("1 row") == 2
    else:
        assert f"{count} row" in message
    assert "nothing was changed" in message and "on_violation=quarantine" in message
    assert database_digest(items) == before


@pytest.mark.parametrize("case", CASES)
def test_quarantine_mode_keeps_every_row(items: Path, case: str) -> None:
    target, rule, count, ids = CASES[case]
    before = rows(items, "SELECT id, n, label, created_at FROM items ORDER BY ALL")
    apply(items, target, on_violation="quarantine")
    kept = rows(items, "SELECT id, n, label, created_at FROM items")
    moved = rows(
        items,
        "SELECT id, n, label, created_at, _quarantine_reason, _quarantined_at "
        "FROM items_quarantine ORDER BY id NULLS FIRST",
    )
    assert len(moved) == count
    assert sorted(r[0] or "" for r in moved) == sorted(i or "" for i in ids)
    starts = ("NOT NULL", "PRIMARY KEY") if case == "primary key" else (rule,)
    assert all(r[4].startswith(starts) and r[5] is not None for r in moved)
    # every row is in the table or the quarantine, unchanged (after the type mapping)

    def normalize(r: tuple[object, ...]) -> tuple[object, ...]:
        return (r[0], str(r[1]), r[2], r[3])

    assert sorted(map(normalize, kept + [m[:4] for m in moved]), key=repr) == sorted(
        map(normalize, before), key=repr
    )
    assert "__ccs_rejected" not in table_names(items)
    if case == "primary key":  # the earliest 'a' is the one kept
        assert ("a", "4", "dup") in [r[:3] for r in kept]


def test_quarantine_appends_across_runs(items: Path) -> None:
    apply(items, CASES["check"][0], on_violation="quarantine")
    sql(items, "INSERT INTO items VALUES ('z', '9', 'fine', NULL)")
    target = _items(
        sa.CheckConstraint("length(label) > 0", name="ck_label"),
        sa.CheckConstraint("n <> '9'", name="ck_n"),
    )
    apply(items, target, on_violation="quarantine")
    assert rows(items, "SELECT id FROM items_quarantine ORDER BY id") == [("b",), ("z",)]


def test_a_row_violating_two_rules_is_quarantined_once_with_both_reasons(items: Path) -> None:
    target = _items(
        sa.CheckConstraint("length(label) > 0", name="ck_label"),
        sa.CheckConstraint("n <> '2'", name="ck_n"),
    )
    apply(items, target, on_violation="quarantine")
    [(reason,)] = rows(items, "SELECT _quarantine_reason FROM items_quarantine")
    assert "ck_label" in reason and "ck_n" in reason


def test_check_null_semantics(items: Path) -> None:
    # label IS NULL for 'c': a NULL CHECK result passes, as in SQL
    apply(items, _items(sa.CheckConstraint("label <> ''", name="ck")), on_violation="quarantine")
    assert rows(items, "SELECT id FROM items_quarantine") == [("b",)]
    assert ("c",) in rows(items, "SELECT id FROM items")


def test_unique_lets_nulls_through(db_path: Path) -> None:
    sql(db_path, "CREATE TABLE t (k VARCHAR)", "INSERT INTO t VALUES (NULL), (NULL), ('x')")
    apply(
        db_path, sa.Table("t", sa.MetaData(), sa.Column("k", sa.String()), sa.UniqueConstraint("k"))
    )
    assert rows(db_path, "SELECT count(*) FROM t") == [(3,)]


KEY_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "VARCHAR": sa.String(),
    "VARCHAR COLLATE NOCASE": sa.String(collation="NOCASE"),
    "TIMESTAMPTZ": TZ,
    "DOUBLE": sa.Double(),
}


@pytest.mark.parametrize(
    ("kind", "keys", "duplicates"),
    [
        ("VARCHAR", "('x', 1), ('y', 1), ('z', NULL), ('z', NULL)", 0),  # NULLs: no key
        ("VARCHAR", "('x', 1), ('x', 1), ('x', 2), ('y', 1), ('x', 1)", 2),
        ("VARCHAR COLLATE NOCASE", "('Ana', 1), ('ana', 1), ('ANA', 1), ('Bo', 1)", 2),
        ("TIMESTAMPTZ", "('2024-01-01 00:00:00+00', 1), ('2024-01-01 01:00:00+01', 1)", 1),
        ("DOUBLE", "(0.0, 1), (-0.0, 1), ('nan', 1), ('nan', 1)", 2),
    ],
)
def test_duplicates_are_counted_as_the_key_compares_values(
    db_path: Path, kind: str, keys: str, duplicates: int
) -> None:
    """Equal under the key's own comparison (a collation, a time zone, -0.0, NaN) is a
    duplicate, whether or not the count is screened first by hashing the keys."""
    sql(db_path, f"CREATE TABLE t (k {kind}, n INTEGER)", f"INSERT INTO t VALUES {keys}")

    def t(*extra: sa.SchemaItem) -> sa.Table:
        columns = [sa.Column("k", KEY_TYPES[kind]), sa.Column("n", sa.Integer())]
        return sa.Table("t", sa.MetaData(), *columns, *extra)

    target = t(sa.UniqueConstraint("k", "n", name="uq_t"))
    before = rows(db_path, "SELECT CAST(k AS VARCHAR), n FROM t ORDER BY ALL")
    if duplicates:
        said = f"{duplicates} rows?" if duplicates > 1 else "1 row"
        with pytest.raises(ConstraintViolations, match=f"UNIQUE uq_t on t .*: {said}"):
            apply(db_path, target, previous=t())
        assert rows(db_path, "SELECT CAST(k AS VARCHAR), n FROM t ORDER BY ALL") == before
    else:
        apply(db_path, target, previous=t())
        assert len(rows(db_path, "SELECT * FROM t")) == len(before)
    apply(db_path, target, previous=t(), on_violation="quarantine")
    kept = rows(db_path, "SELECT count(*) FROM t")[0][0]
    moved = rows(db_path, "SELECT count(*) FROM t_quarantine")[0][0] if duplicates else 0
    assert (kept, moved) == (len(before) - duplicates, duplicates)


def _family(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE profiles (id VARCHAR PRIMARY KEY, title VARCHAR)",
        "INSERT INTO profiles VALUES ('p1', 'Ana'), ('p2', ''), ('p3', 'Bo')",
        "CREATE TABLE posts (id VARCHAR PRIMARY KEY, author VARCHAR REFERENCES profiles (id), "
        "body VARCHAR)",
        "CREATE INDEX ix_posts_body ON posts (body)",
        "INSERT INTO posts VALUES ('a', 'p1', 'x'), ('b', 'p2', 'y'), ('c', NULL, 'z')",
        "CREATE TABLE replies (id VARCHAR, post VARCHAR REFERENCES posts (id))",
        "INSERT INTO replies VALUES ('r1', 'a'), ('r2', 'b')",
    )


PROFILES_WITH_CHECK = sa.Table(
    "profiles",
    sa.MetaData(),
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("title", sa.String()),
    sa.CheckConstraint("length(title) > 0", name="ck_title"),
)


def test_parent_rebuilt_while_children_reference_it(db_path: Path) -> None:
    _family(db_path)
    sql(db_path, "UPDATE profiles SET title = 'Cy' WHERE id = 'p2'")
    before = {t: database_digest(db_path)["tables"][t][1] for t in ("posts", "replies")}  # type: ignore[index]
    apply(db_path, PROFILES_WITH_CHECK)
    after = database_digest(db_path)["tables"]
    assert {t: after[t][1] for t in ("posts", "replies")} == before  # type: ignore[index]
    constraints = rows(db_path, "SELECT table_name, constraint_type FROM duckdb_constraints()")
    assert ("posts", "FOREIGN KEY") in constraints and ("replies", "FOREIGN KEY") in constraints
    assert ("profiles", "CHECK") in constraints
    assert rows(db_path, "SELECT index_name FROM duckdb_indexes()") == [("ix_posts_body",)]


def test_quarantined_parents_take_their_orphans_along(db_path: Path) -> None:
    _family(db_path)
    apply(db_path, PROFILES_WITH_CHECK, on_violation="quarantine")
    assert rows(db_path, "SELECT id FROM profiles_quarantine") == [("p2",)]
    assert rows(db_path, "SELECT id FROM posts_quarantine") == [("b",)]
    assert rows(db_path, "SELECT id FROM replies_quarantine") == [("r2",)]
    assert rows(db_path, "SELECT id FROM posts ORDER BY id") == [("a",), ("c",)]
    assert rows(db_path, "SELECT id FROM replies") == [("r1",)]


def test_fail_mode_on_a_parent_leaves_children_untouched(db_path: Path) -> None:
    _family(db_path)
    before = database_digest(db_path)
    with pytest.raises(ConstraintViolations, match="ck_title"):
        apply(db_path, PROFILES_WITH_CHECK)
    assert database_digest(db_path) == before


def test_retyping_a_referenced_key_is_refused_before_any_change(db_path: Path) -> None:
    _family(db_path)
    before = database_digest(db_path)
    retyped = sa.Table(
        "profiles",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String()),
    )
    with pytest.raises(InvalidOperation, match=r"posts.author \(VARCHAR\) references profiles.id"):
        apply(db_path, retyped)
    assert database_digest(db_path) == before


def test_the_same_type_spelled_otherwise_is_no_retyping(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE scores (v DOUBLE PRIMARY KEY, label VARCHAR)",
        "CREATE TABLE uses (v DOUBLE REFERENCES scores (v))",
        "INSERT INTO scores VALUES (1.5, 'a')",
        "INSERT INTO uses VALUES (1.5)",
    )
    apply(  # sa.Double compiles to DOUBLE PRECISION, which DuckDB calls DOUBLE
        db_path,
        sa.Table(
            "scores",
            sa.MetaData(),
            sa.Column("v", sa.Double(), primary_key=True),
            sa.Column("label", sa.String()),
            sa.CheckConstraint("length(label) > 0"),
        ),
    )
    assert rows(db_path, "SELECT count(*) FROM uses") == [(1,)]


def test_child_rebuilt_to_gain_a_foreign_key(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE profiles (id VARCHAR PRIMARY KEY)",
        "INSERT INTO profiles VALUES ('p1')",
        "CREATE TABLE notes (id VARCHAR, author VARCHAR)",
        "INSERT INTO notes VALUES ('n1', 'p1'), ('n2', 'ghost'), ('n3', NULL)",
    )
    meta = sa.MetaData()
    sa.Table("profiles", meta, sa.Column("id", sa.String(), primary_key=True))
    notes = sa.Table(
        "notes",
        meta,
        sa.Column("id", sa.String()),
        sa.Column("author", sa.String(), sa.ForeignKey("profiles.id")),
    )
    with pytest.raises(ConstraintViolations, match=r"1 row \(for example 'n2'\)"):
        apply(db_path, notes)
    apply(db_path, notes, on_violation="quarantine")
    assert rows(db_path, "SELECT id FROM notes ORDER BY id") == [("n1",), ("n3",)]
    with pytest.raises(Exception, match="foreign key"):
        sql(db_path, "INSERT INTO notes VALUES ('n4', 'nobody')")


def test_indexes_comments_defaults_sequences_and_views_survive(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE SEQUENCE item_ids START 100",
        "CREATE TABLE items (id INTEGER DEFAULT nextval('item_ids'), label VARCHAR DEFAULT 'none',"
        " created_at TIMESTAMPTZ DEFAULT current_timestamp)",
        "INSERT INTO items (label) VALUES ('a'), ('b')",
        "CREATE VIEW item_labels AS SELECT id, label FROM items",
    )
    target = sa.Table(
        "items",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), server_default=sa.text("nextval('item_ids')")),
        sa.Column("label", sa.String(), server_default="none", comment="what it is"),
        sa.Column("created_at", TZ, server_default=sa.text("current_timestamp")),
        sa.CheckConstraint("length(label) > 0"),
        sa.Index("ix_items_label", "label"),
        comment="things",
    )
    apply(db_path, target)
    sql(db_path, "INSERT INTO items (label) VALUES ('c')")  # defaults and the sequence still work
    assert rows(db_path, "SELECT id, label FROM items ORDER BY id") == [
        (100, "a"),
        (101, "b"),
        (102, "c"),
    ]
    assert rows(db_path, "SELECT * FROM item_labels ORDER BY id")[-1] == (102, "c")
    assert rows(db_path, "SELECT comment FROM duckdb_tables() WHERE table_name = 'items'") == [
        ("things",)
    ]
    assert rows(
        db_path,
        "SELECT comment FROM duckdb_columns() WHERE table_name = 'items' AND column_name = 'label'",
    ) == [("what it is",)]
    assert rows(db_path, "SELECT index_name FROM duckdb_indexes()") == [("ix_items_label",)]


def test_a_view_that_would_break_is_refused_before_any_change(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE items (id VARCHAR, label VARCHAR)",
        "INSERT INTO items VALUES ('a', 'b')",
        "CREATE VIEW v AS SELECT label FROM items",
    )
    before = database_digest(db_path)
    with pytest.raises(InvalidOperation, match="view v reads label"):
        apply(db_path, sa.Table("items", sa.MetaData(), sa.Column("id", sa.String())))
    assert database_digest(db_path) == before


def test_column_map_renames_and_casts(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE tasks (id VARCHAR, name VARCHAR, n VARCHAR)",
        "INSERT INTO tasks VALUES ('3f1e0c1a-0000-4000-8000-000000000001', 'x', '7'),"
        " ('3f1e0c1a-0000-4000-8000-000000000002', NULL, NULL)",
    )
    previous = sa.Table(
        "tasks",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("name", sa.String()),
        sa.Column("n", sa.String()),
    )
    target = sa.Table(
        "tasks",
        sa.MetaData(),
        sa.Column("task_id", sa.Uuid()),
        sa.Column("title", sa.String()),
        sa.Column("n", sa.Integer()),
    )
    op = CreateCopySwapOp(
        target,
        previous=previous,
        column_map={"task_id": "CAST(id AS UUID)", "title": "name"},
        reverse_column_map={"id": "CAST(task_id AS VARCHAR)", "name": "title"},
    )
    invoke(db_path, op)
    assert rows(db_path, "SELECT typeof(task_id), title, n FROM tasks ORDER BY task_id") == [
        ("UUID", "x", 7),
        ("UUID", None, None),
    ]
    invoke(db_path, op.reverse())
    assert rows(db_path, "SELECT id, name, n FROM tasks ORDER BY id") == [
        ("3f1e0c1a-0000-4000-8000-000000000001", "x", "7"),
        ("3f1e0c1a-0000-4000-8000-000000000002", None, None),
    ]


def test_failed_casts_are_reported_with_their_keys(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE t (id VARCHAR, n VARCHAR)",
        "INSERT INTO t VALUES ('a', '1'), ('b', 'two')",
    )
    target = sa.Table(
        "t", sa.MetaData(), sa.Column("id", sa.String()), sa.Column("n", sa.Integer())
    )
    with pytest.raises(
        ConstraintViolations, match=r"conversion n on t .*1 row \(for example 'b'\)"
    ):
        apply(db_path, target)


UNICODE = [
    "emoji 🎉👩‍👩‍👧",
    "中文 日本語 한국어",
    "quote ' \" `",
    "back\\slash",
    "line\nbreak\ttab",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 plane 1",
    "\u200b zero width",
    "",
]


def test_unicode_and_null_heavy_data_round_trips(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE docs (id VARCHAR, body VARCHAR, tags VARCHAR[], meta JSON, ts TIMESTAMPTZ)",
    )
    import duckdb

    con = duckdb.connect(str(db_path))
    for i, text in enumerate(UNICODE):
        con.execute(
            "INSERT INTO docs VALUES (?, ?, ?, ?, ?)",
            [f"d{i}", text, [text, None] if i % 2 else [], '{"a": {"b": [1, null, "ü"]}}', None],
        )
    con.execute("INSERT INTO docs VALUES (NULL, NULL, NULL, NULL, NULL)")
    con.close()
    previous = sa.Table(
        "docs",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("body", sa.String()),
        sa.Column("tags", sa.ARRAY(sa.String())),
        sa.Column("meta", sa.JSON()),
        sa.Column("ts", TZ),
    )
    target = sa.Table(
        "docs",
        sa.MetaData(),
        *(c._copy() for c in previous.columns),
        sa.CheckConstraint("length(body) < 1000"),
    )
    before = database_digest(db_path)["tables"]["docs"]  # type: ignore[index]
    op = CreateCopySwapOp(target, previous=previous)
    invoke(db_path, op)
    invoke(db_path, op.reverse())
    assert database_digest(db_path)["tables"]["docs"] == before  # type: ignore[index]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: sa.Table("nope", sa.MetaData(), sa.Column("a", sa.String())), "does not exist"),
        (
            lambda: sa.Table(
                "items",
                sa.MetaData(),
                sa.Column("id", sa.String()),
                sa.Column("req", sa.String(), nullable=False),
            ),
            "req is NOT NULL but has no server default",
        ),
    ],
)
def test_bad_input_is_refused_before_any_change(items: Path, make, says: str) -> None:
    before = database_digest(items)
    with pytest.raises(CommandError, match=says):
        apply(items, make())
    assert database_digest(items) == before


def test_hostile_names_stay_inside_their_quotes(db_path: Path) -> None:
    name = 'we"ird; DROP TABLE keep; --'
    col = "select"
    import duckdb

    con = duckdb.connect(str(db_path))
    con.execute("CREATE TABLE keep (x INTEGER)")
    con.execute(
        f'CREATE TABLE "{name.replace(chr(34), chr(34) * 2)}" ("select" VARCHAR, "a b" VARCHAR)'
    )
    con.execute(
        f"INSERT INTO \"{name.replace(chr(34), chr(34) * 2)}\" VALUES ('x', '1'), ('', '2')"
    )
    con.close()
    target = sa.Table(
        name,
        sa.MetaData(),
        sa.Column(col, sa.String()),
        sa.Column("a b", sa.String()),
        sa.CheckConstraint(sa.func.length(sa.column(col)) > 0, name='ck "odd"; name'),
        sa.Index('ix "odd"', "a b"),
    )
    apply(db_path, target, on_violation="quarantine")
    assert {"keep", name, name + "_quarantine"} <= table_names(db_path)
    quoted = '"' + name.replace('"', '""') + '"'
    assert rows(db_path, f"SELECT * FROM {quoted}") == [("x", "1")]


def test_extreme_values_survive_a_round_trip(db_path: Path) -> None:
    sql(
        db_path,
        "CREATE TABLE odd (id VARCHAR, body VARCHAR, tags VARCHAR[], meta JSON, ts TIMESTAMPTZ,"
        " d DATE)",
        # the edges of the ranges, infinities, a 2 MB text, deep JSON, NULL everywhere
        "INSERT INTO odd VALUES"
        " ('min', '', [], '{}', TIMESTAMPTZ '-infinity', DATE '-infinity'),"
        " ('max', repeat('𝔘', 500000), [''], '[[[[[[[[[[[[1]]]]]]]]]]]]', TIMESTAMPTZ 'infinity',"
        "  DATE 'infinity'),"
        " ('early', '\\\\ \" '' \n\t', [NULL, ''], '{\"a\": {\"b\": {\"c\": [null, true]}}}',"
        "  TIMESTAMPTZ '0001-01-01 00:00:00+00', DATE '0001-01-01'),"
        " ('late', 'ok', NULL, 'null', TIMESTAMPTZ '9999-12-31 23:59:59.999999+00',"
        "  DATE '9999-12-31'),"
        " (NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    columns = [
        sa.Column("id", sa.String()),
        sa.Column("body", sa.String()),
        sa.Column("tags", sa.ARRAY(sa.String())),
        sa.Column("meta", sa.JSON()),
        sa.Column("ts", TZ),
        sa.Column("d", sa.Date()),
    ]
    previous = sa.Table("odd", sa.MetaData(), *(c._copy() for c in columns))
    target = sa.Table(
        "odd",
        sa.MetaData(),
        *(c._copy() for c in columns),
        sa.CheckConstraint("length(body) >= 0"),
        sa.UniqueConstraint("id"),
    )
    before = database_digest(db_path)
    op = CreateCopySwapOp(target, previous=previous)
    invoke(db_path, op)
    assert rows(db_path, "SELECT length(body) FROM odd WHERE id = 'max'") == [(500000,)]
    invoke(db_path, op.reverse())
    after = database_digest(db_path)
    assert after["tables"]["odd"][1] == before["tables"]["odd"][1]  # type: ignore[index]


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        (None, "first seen"),  # Egregora's: the earliest created_at
        (RowPolicy(keep_first_by=("score",)), "best score"),
        (RowPolicy(), "stored first"),  # no preference: the order rows were stored in
        # the newest: a table whose rows are rewritten as new versions
        (
            RowPolicy(keep_first_by=("created_at",), keep_last_in=frozenset({"votes"})),
            "stored first",
        ),
        (RowPolicy(keep_first_by=("created_at",), keep_last_in=frozenset({"other"})), "first seen"),
    ],
    ids=["egregora", "by-score", "storage-order", "newest", "newest-elsewhere"],
)
def test_the_duplicate_kept_is_the_callers_choice(
    tmp_path: Path, policy: RowPolicy | None, kept: str
) -> None:
    path = tmp_path / "dupes.duckdb"
    sql(
        path,
        "CREATE TABLE votes (slug VARCHAR, note VARCHAR, score INTEGER, created_at TIMESTAMPTZ)",
        "INSERT INTO votes VALUES "
        "('a', 'stored first', 9, '2026-03-01'), "
        "('a', 'first seen', 5, '2026-01-01'), "
        "('a', 'best score', 1, '2026-02-01')",
    )
    target = sa.Table(
        "votes",
        sa.MetaData(),
        sa.Column("slug", sa.String, unique=True),
        sa.Column("note", sa.String),
        sa.Column("score", sa.Integer),
        sa.Column("created_at", TZ),
    )
    opts = {} if policy is None else {RUN_OPTION: RunState(policy=policy)}
    apply(path, target, on_violation="quarantine", context_opts=opts)
    assert rows(path, "SELECT note FROM votes") == [(kept,)]
    assert rows(path, "SELECT count(*) FROM votes_quarantine") == [(2,)]


def _titled(*columns: sa.Column[object]) -> sa.Table:
    return sa.Table("titled", sa.MetaData(), sa.Column("id", sa.String()), *columns)


def test_a_rename_into_a_not_null_column_judges_the_renamed_values(db_path: Path) -> None:
    """Found trying the op as a user: the NOT NULL rule re-read the old column's name."""
    sql(db_path, "CREATE TABLE titled (id VARCHAR, title VARCHAR)")
    sql(db_path, "INSERT INTO titled VALUES ('a', 'x'), ('b', NULL)")
    target = _titled(sa.Column("headline", sa.String(), nullable=False))
    renamed = {"headline": sa.column("title")}
    with pytest.raises(ConstraintViolations) as err:
        apply(db_path, target, column_map=renamed)
    assert "NOT NULL titled.headline" in str(err.value) and "1 row (for example 'b')" in str(
        err.value
    )
    apply(db_path, target, column_map=renamed, on_violation="quarantine")
    assert rows(db_path, "SELECT id, headline FROM titled") == [("a", "x")]
    assert rows(db_path, "SELECT id, title FROM titled_quarantine") == [("b", None)]


def test_a_value_that_does_not_convert_is_one_violation_not_two(db_path: Path) -> None:
    sql(db_path, "CREATE TABLE titled (id VARCHAR, score INTEGER NOT NULL)")
    sql(db_path, "INSERT INTO titled VALUES ('a', 1), ('b', 70000)")
    target = _titled(sa.Column("score", sa.SmallInteger(), nullable=False))
    with pytest.raises(ConstraintViolations) as err:
        apply(db_path, target)
    message = str(err.value)
    assert "conversion score" in message and "NOT NULL" not in message
    assert "violate 1 constraint " in message


@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
@pytest.mark.parametrize("key", ["primary key", "unique"])
def test_keeping_the_newest_passes_over_null_times_and_takes_the_last_stored_of_a_tie(
    engine: str, key: str, request: pytest.FixtureRequest
) -> None:
    """The order of keep_first_by, reversed (NULLs still last), then the last stored."""
    path = request.getfixturevalue("db_path" if engine == "duckdb" else "pg_url")
    url = path if isinstance(path, str) else f"duckdb:///{path}"
    engine_ = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine_.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE notes (id VARCHAR, body VARCHAR, created_at TIMESTAMP WITH TIME ZONE)"
            )
            for row in (
                "('n', 'old', '2026-01-01 00:00:00+00')",
                "('n', 'undated', NULL)",
                "('n', 'tie, stored first', '2026-02-01 00:00:00+00')",
                "('n', 'tie, stored last', '2026-02-01 00:00:00+00')",
                "('m', 'alone', NULL)",
            ):  # one statement each: PostgreSQL stores them in this order
                connection.exec_driver_sql(f"INSERT INTO notes VALUES {row}")
    finally:
        engine_.dispose()
    target = sa.Table(
        "notes",
        sa.MetaData(),
        sa.Column("id", sa.String(), primary_key=key == "primary key", unique=key == "unique"),
        sa.Column("body", sa.String()),
        sa.Column("created_at", TZ),
    )
    policy = RowPolicy(keep_first_by=("created_at",), keep_last_in=frozenset({"notes"}))
    apply(
        path, target, on_violation="quarantine", context_opts={RUN_OPTION: RunState(policy=policy)}
    )
    engine_ = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine_.connect() as connection:
            kept = connection.exec_driver_sql("SELECT id, body FROM notes ORDER BY id").all()
            reasons = connection.exec_driver_sql(
                "SELECT DISTINCT _quarantine_reason FROM notes_quarantine"
            ).all()
    finally:
        engine_.dispose()
    assert [tuple(r) for r in kept] == [("m", "alone"), ("n", "tie, stored last")]
    assert len(reasons) == 1 and reasons[0][0].endswith(": duplicate of a newer row")
