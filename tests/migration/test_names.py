"""Which constraint a name means on DuckDB (names.py): pure, from the table as DuckDB holds it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from egregora.database import schemas
from egregora.database.migration.catalog import ConstraintShape
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.names import (
    CONVENTION,
    HeldConstraint,
    RecordedName,
    convention_name,
    named_constraints,
    needs_record,
    resolve,
)

# profiles as a V4 file holds it (duckdb_constraints(), DuckDB 2.0.1)
TITLE = ConstraintShape("CHECK", ("title",), expression="length(title) > 0")
PROFILES = [
    HeldConstraint(ConstraintShape("PRIMARY KEY", ("id",)), "profiles_id_pkey"),
    HeldConstraint(TITLE, "profiles_title_check"),
]
# annotations: its FOREIGN KEY onto profiles, and a CHECK
AUTHOR = ConstraintShape(
    "FOREIGN KEY", ("author_id",), referenced_table="profiles", referenced_columns=("id",)
)
PARENT = ConstraintShape(
    "CHECK", ("parent_type",), expression="parent_type in ('message', 'post', 'annotation')"
)
ANNOTATIONS = [
    HeldConstraint(ConstraintShape("PRIMARY KEY", ("id",)), "annotations_id_pkey"),
    HeldConstraint(AUTHOR, "annotations_author_id_id_fkey"),
    HeldConstraint(PARENT, "annotations_parent_type_check"),
]


@pytest.mark.parametrize(
    ("name", "type_", "expected"),
    [
        ("chk_profiles_title_not_empty", "check", TITLE),  # the history's (v4b)
        ("title_not_empty", "check", TITLE),  # the short name, as the convention completes it
        ("chk_profiles_title", None, TITLE),  # the convention's, for a CHECK on one column
        ("profiles_title_check", "check", TITLE),  # DuckDB's own
        ("pk_profiles", "primary", PROFILES[0].shape),
        ("profiles_id_pkey", None, PROFILES[0].shape),
    ],
)
def test_a_name_this_schema_gives_means_its_constraint(
    name: str, type_: str | None, expected: ConstraintShape
) -> None:
    assert resolve("profiles", PROFILES, name, type_).shape == expected


def test_foreign_keys_and_checks_of_another_table() -> None:
    assert resolve("annotations", ANNOTATIONS, "fk_annotations_author_id_profiles").shape == AUTHOR
    found = resolve("annotations", ANNOTATIONS, "chk_annotations_parent_type", "check")
    assert found.shape == PARENT


def test_reflection_gives_back_the_most_authoritative_name() -> None:
    names = [c.name for c in named_constraints("profiles", PROFILES)]
    assert names == ["pk_profiles", "chk_profiles_title_not_empty"]
    assert named_constraints("profiles", PROFILES)[1].names == (
        "chk_profiles_title_not_empty",
        "chk_profiles_title",
        "profiles_title_check",
    )


def test_a_recorded_name_wins_and_answers() -> None:
    recorded = [RecordedName("annotations", "fk2", AUTHOR)]
    named = named_constraints("annotations", ANNOTATIONS, recorded)
    assert [c.name for c in named] == ["pk_annotations", "fk2", "chk_annotations_parent_type"]
    assert resolve("annotations", ANNOTATIONS, "fk2", "foreignkey", recorded).shape == AUTHOR
    # the convention's name still answers, one tier below
    found = resolve("annotations", ANNOTATIONS, "fk_annotations_author_id_profiles", None, recorded)
    assert found.shape == AUTHOR


def test_a_record_that_matches_nothing_the_table_holds_is_ignored() -> None:
    # made outside Alembic: the table was rebuilt and its FOREIGN KEY now points elsewhere
    elsewhere = ConstraintShape(
        "FOREIGN KEY", ("author_id",), referenced_table="people", referenced_columns=("id",)
    )
    stale = [
        RecordedName("annotations", "fk2", elsewhere),
        RecordedName("profiles", "fk2", AUTHOR),  # another table's
    ]
    assert [c.name for c in named_constraints("annotations", ANNOTATIONS, stale)][1] == (
        "fk_annotations_author_id_profiles"
    )
    with pytest.raises(InvalidOperation, match="No constraint of table annotations is named fk2"):
        resolve("annotations", ANNOTATIONS, "fk2", None, stale)


def test_a_recorded_name_beats_the_same_name_derived_for_another_constraint() -> None:
    # a user named the CHECK over parent_type after author_id's column, by hand
    parent_as_author = [RecordedName("annotations", "chk_annotations_author_id", PARENT)]
    other = ConstraintShape("CHECK", ("author_id",), expression="length(author_id) > 3")
    held = [*ANNOTATIONS, HeldConstraint(other, "annotations_author_id_check")]
    found = resolve("annotations", held, "chk_annotations_author_id", None, parent_as_author)
    assert found.shape == PARENT


def test_an_unknown_name_is_refused_listing_every_constraint_and_its_names() -> None:
    with pytest.raises(InvalidOperation) as refused:
        resolve("profiles", PROFILES, "chk_profiles_titel", "check")
    message = str(refused.value)
    assert message.startswith("No CHECK constraint of table profiles is named chk_profiles_titel.")
    assert (
        "CHECK (length(title) > 0) as chk_profiles_title_not_empty "
        "(or chk_profiles_title, profiles_title_check)" in message
    )
    assert "PRIMARY KEY (id) as pk_profiles (or profiles_id_pkey)" in message
    assert "Nothing was changed." in message
    assert "\n" not in message


def test_the_wrong_type_is_refused_saying_what_the_name_is() -> None:
    with pytest.raises(InvalidOperation, match="pk_profiles is a PRIMARY KEY, not a UNIQUE"):
        resolve("profiles", PROFILES, "pk_profiles", "unique")
    with pytest.raises(InvalidOperation, match="Unknown constraint type_='chekc'"):
        resolve("profiles", PROFILES, "pk_profiles", "chekc")


def test_a_table_without_constraints_says_so() -> None:
    with pytest.raises(InvalidOperation, match="Table drafts has no constraints"):
        resolve("drafts", [], "pk_drafts", "primary")


def test_two_checks_on_one_column_are_numbered_in_duckdbs_order() -> None:
    low = ConstraintShape("CHECK", ("y",), expression="y > 0")
    high = ConstraintShape("CHECK", ("y",), expression="y < 100")
    held = [HeldConstraint(low, "t_y_check"), HeldConstraint(high, "t_y_check")]
    assert [c.name for c in named_constraints("t", held)] == ["chk_t_y", "chk_t_y_2"]
    assert resolve("t", held, "chk_t_y_2").shape == high
    assert resolve("t", held, "t_y_check").shape == low
    assert resolve("t", held, "t_y_check_2").shape == high


def test_a_name_recorded_for_two_equal_constraints_is_ambiguous() -> None:
    twice = ConstraintShape("CHECK", ("y",), expression="y > 0")
    held = [HeldConstraint(twice, "t_y_check"), HeldConstraint(twice, "t_y_check")]
    with pytest.raises(InvalidOperation, match="The name positive means 2 constraints of table t"):
        resolve("t", held, "positive", "check", [RecordedName("t", "positive", twice)])


def test_only_names_nothing_else_gives_back_are_recorded() -> None:
    assert not needs_record("profiles", TITLE, "chk_profiles_title_not_empty")
    assert not needs_record("annotations", AUTHOR, "fk_annotations_author_id_profiles")
    assert needs_record("annotations", AUTHOR, "fk2")
    assert needs_record("profiles", TITLE, "title_check")
    assert not needs_record("profiles", TITLE, None)
    several = ConstraintShape("CHECK", ("a", "b"), expression="a < b")
    assert convention_name("t", several) is None
    assert needs_record("t", several, "chk_t_order")


def test_the_frozen_convention_is_the_schemas_one() -> None:
    """names.py freezes the convention the history names by; today it is schemas.py's."""
    table = sa.Table(
        "t",
        sa.MetaData(naming_convention=schemas.NAMING_CONVENTION),
        sa.Column("a", sa.Integer(), sa.CheckConstraint("a > 0")),
        sa.Column("b", sa.Integer()),
        sa.Column("r", sa.Integer()),
        sa.PrimaryKeyConstraint("a"),
        sa.UniqueConstraint("a", "b"),
        sa.ForeignKeyConstraint(["r"], ["ref.id"]),
    )
    given = {type(c).__name__: str(c.name) for c in table.constraints}
    given["CheckConstraint"] = str(next(iter(table.c.a.constraints)).name)
    derived = {
        "PrimaryKeyConstraint": convention_name("t", ConstraintShape("PRIMARY KEY", ("a",))),
        "UniqueConstraint": convention_name("t", ConstraintShape("UNIQUE", ("a", "b"))),
        "ForeignKeyConstraint": convention_name(
            "t", ConstraintShape("FOREIGN KEY", ("r",), None, "ref", ("id",))
        ),
        "CheckConstraint": convention_name("t", ConstraintShape("CHECK", ("a",), "a > 0")),
    }
    assert given == derived
    assert set(CONVENTION) == {"PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "CHECK"}
