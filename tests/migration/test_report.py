"""The run report's text: counts read as English (1 row, 2 rows; 1 index, 2 indexes)."""

from __future__ import annotations

from egregora.database.migration.report import (
    RevisionReport,
    RunReport,
    TableReport,
    ViolationReport,
    plural,
)


def _report(rows: int, indexes: int, in_place: bool = False) -> str:
    violation = ViolationReport("CHECK", "chk_journals_title", "length(title) > 0", rows, [["j3"]])
    table = TableReport(
        revision="t1 upgrade",
        table="journals",
        rows_before=rows * 2,
        rows_copied=rows,
        rows_quarantined=rows,
        indexes_built=indexes,
        seconds=0.5,
        violations=[violation],
        in_place=in_place,
    )
    report = RunReport(dry_run=True, on_violation="quarantine", tables=[table])
    report.revisions.append(RevisionReport("t1", "upgrade", 0.5))
    return report.to_text()


def test_one_row_and_one_index_are_singular() -> None:
    text = _report(rows=1, indexes=1)
    assert "journals: 1 row copied, 1 quarantined, 1 index built, 0.50 s" in text
    assert "(length(title) > 0): 1 row, for example 'j3'" in text
    assert "total: 1 row copied, 1 quarantined, 1 index built" in text
    assert "1 rows" not in text and "1 indexes" not in text


def test_other_counts_are_plural() -> None:
    text = _report(rows=2, indexes=0)
    assert "journals: 2 rows copied, 2 quarantined, 0 indexes built" in text
    assert "): 2 rows, for example" in text
    assert "total: 2 rows copied, 2 quarantined, 0 indexes built" in text
    assert "journals: 1 row kept in place" in _report(rows=1, indexes=2, in_place=True)
    assert "total: 1 row kept in place, 1 quarantined, 2 indexes built" in _report(
        rows=1, indexes=2, in_place=True
    )


def test_plural() -> None:
    assert [plural(n, "row") for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert plural(1, "index", "indexes") == "1 index"
    assert plural(3, "index", "indexes") == "3 indexes"
