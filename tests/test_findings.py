"""Findings tied to fields (issue 13 §1): validation runs once per change, and a finding leaves with its field.

Real SQLite database and file store; the documents are what extraction hands over (unvalidated, with findings),
so no OCR runs here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from formsvc.criteria import default_registry
from formsvc.db import session_scope
from formsvc.db.tables import Job, JobFile, StoredFile
from formsvc.records import FieldProvenance, Reason, Record
from formsvc.records.minutes import MinutesData
from formsvc.service.auth import Principal
from formsvc.service.ingest import ingest
from formsvc.service.records import as_record, correct, get_record, history
from formsvc.storage import get_file_store
from formsvc.validation.batch import validate_batch
from tests.factories import full_record
from tests.service_app import migrated_store

UNIT = "Trường MN Tam Hưng A"
REVIEWER = Principal(key_id="reviewer1", role="reviewer", unit=None, name="Người duyệt")
ROSTER = "ma,ho va ten,nam sinh\nnv01,Nguyễn Văn Bình,1980\n"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    with migrated_store(tmp_path):
        yield tmp_path


def _roster_printed(unit: str) -> None:
    """A finished print pack for `unit` from a roster naming nv01, as the service keeps it."""
    sha = get_file_store().put_bytes(ROSTER.encode())
    with session_scope() as s:
        s.add(StoredFile(sha256=sha, size=len(ROSTER.encode()), media_type="text/csv"))
        s.add(Job(id="pack1", kind="print_pack", unit=unit, status="done", params={"form": "cdht-self-assessment"}))
        s.flush()
        s.add(JobFile(job_id="pack1", sha256=sha, filename="danh-sach.csv", position=0))


def _scanned_sheet(name: str) -> tuple[Record, Reason]:
    """A sheet as extraction hands it over: the name read (sure of itself) far from the roster's, and the readers
    of one score box disagreeing (a finding of that field)."""
    cset = default_registry().get("cdht-324-pl4")
    rec = full_record(cset, score=8)
    first = cset.indicators[0].id
    fields = [FieldProvenance(name="subject.full_name", value=name, confidence=0.95, source="handwriting", page=1),
              FieldProvenance(name=f"scores.{first}", value=8.0, confidence=0.95, source="handwriting", page=1)]
    rec = rec.model_copy(update={"subject": rec.subject.model_copy(update={"id": "nv01", "full_name": name,
                                                                            "birth_year": 1980}),
                                 "fields": fields})
    return rec, Reason(code="readers_disagree", field=f"scores.{first}", severity="review",
                       message="Hai cách đọc ô điểm cho hai giá trị khác nhau.")


def test_correcting_the_name_to_the_roster_clears_exactly_its_finding(db: Path) -> None:
    _roster_printed(UNIT)
    sheet, disagreement = _scanned_sheet("Trần Thị Lan")
    with session_scope() as s:
        assert ingest(s, unit=UNIT, job_id=None, documents=[sheet], findings=[[disagreement]], keys=["scan#1"],
                      pages=[{}]) == 1
    with session_scope() as s:
        from sqlalchemy import select

        from formsvc.db.tables import RecordRow

        row_id = s.scalars(select(RecordRow.id)).one()
        row = get_record(s, REVIEWER, row_id)
        codes = [r.code for r in as_record(row).result.reasons]  # type: ignore[union-attr]
        assert row.status == "needs_review"
        assert codes.count("name_differs_from_roster") == 1 and codes.count("readers_disagree") == 1
    # The reviewer writes the roster's name: that finding goes; the score's finding stays (not the name's).
    with session_scope() as s:
        row = correct(s, REVIEWER, row_id, {"subject.full_name": "Nguyễn Văn Bình"})
        codes = [r.code for r in as_record(row).result.reasons]  # type: ignore[union-attr]
        assert "name_differs_from_roster" not in codes and codes.count("readers_disagree") == 1
        assert row.status == "needs_review"
    # Confirming the score (same value) settles its finding too: the record is valid, and nothing else changed.
    first = default_registry().get("cdht-324-pl4").indicators[0].id
    with session_scope() as s:
        row = correct(s, REVIEWER, row_id, {f"scores.{first}": 8.0})
        assert row.status == "valid", as_record(row).result
        assert row.extra_reasons == []
        trail = [(c.action, c.field) for c in history(s, REVIEWER, row_id)]
    assert trail == [("correct", "subject.full_name"), ("clear_finding", "subject.full_name"),
                     ("confirm", f"scores.{first}"), ("clear_finding", f"scores.{first}")]


def test_a_finding_stays_when_another_field_is_corrected(db: Path) -> None:
    sheet, disagreement = _scanned_sheet("Nguyễn Văn Bình")
    with session_scope() as s:
        ingest(s, unit=UNIT, job_id=None, documents=[sheet], findings=[[disagreement]], keys=["k"], pages=[{}])
        from sqlalchemy import select

        from formsvc.db.tables import RecordRow

        row_id = s.scalars(select(RecordRow.id)).one()
    with session_scope() as s:
        row = correct(s, REVIEWER, row_id, {"subject.unit": "Trường MN Tam Hưng B"})
        assert [r["code"] for r in row.extra_reasons] == ["readers_disagree"]
        assert row.status == "needs_review"


def test_minutes_cross_check_runs_once_and_follows_the_sheets(db: Path) -> None:
    """The minutes' findings against the sheets are computed at each validation, never stored: correcting the
    minutes after the sheet changed gives today's answer, each reason once."""
    cset = default_registry().get("cdht-324-pl4")
    sheet = full_record(cset, score=2)  # far below the rule: not recognised
    minutes = Record(form="cdht-minutes", criteria_set=cset.id, year=sheet.year,
                     subject={"full_name": UNIT},
                     extra={"minutes": MinutesData.model_validate({"candidates": [
                         {"full_name": sheet.subject.full_name, "proposed": True, "agreed_total": 99}]}
                     ).model_dump(mode="json")})
    [_, v_minutes] = validate_batch([sheet, minutes], [[], []], default_registry())
    codes = [r.code for r in v_minutes.result.reasons]  # type: ignore[union-attr]
    assert codes.count("proposed_not_meeting_rule") == 1 and codes.count("agreed_total_differs") == 1
    with session_scope() as s:
        ingest(s, unit=UNIT, job_id=None, documents=[sheet, minutes], findings=[[], []], keys=["a", "b"],
               pages=[{}, {}])
        from sqlalchemy import select

        from formsvc.db.tables import RecordRow

        rows = {r.form: r.id for r in s.scalars(select(RecordRow))}
        assert all(r.extra_reasons == [] for r in s.scalars(select(RecordRow)))  # nothing stored to go stale
    with session_scope() as s:
        row = correct(s, REVIEWER, rows["cdht-minutes"], {"extra.minutes": minutes.extra["minutes"]})
        codes = [r.code for r in as_record(row).result.reasons]  # type: ignore[union-attr]
        assert codes.count("proposed_not_meeting_rule") == 1 and codes.count("agreed_total_differs") == 1
    # The sheet is corrected to meet the rule: the minutes, validated again, no longer say it does not.
    with session_scope() as s:
        correct(s, REVIEWER, rows["cdht-self-assessment"], {f"scores.{i.id}": 10 for i in cset.indicators})
    with session_scope() as s:
        from formsvc.service.records import revalidate

        row = revalidate(s, REVIEWER, rows["cdht-minutes"])
        codes = [r.code for r in as_record(row).result.reasons]  # type: ignore[union-attr]
        assert "proposed_not_meeting_rule" not in codes, codes


def test_the_roster_fills_what_it_printed_and_checks_the_name_it_printed() -> None:
    """Name, birth year and audience group were printed from the roster: a name OCR read close to it (a streak's
    stray colon) becomes the roster's, the group line unread under streaks comes from the roster, both as known
    values; a name far from it is a finding, never overwritten."""
    from formsvc.roster import Person
    from formsvc.service.known_values import apply_roster

    person = Person(row=2, full_name="Nguyễn Văn Bình", birth_year=1980, unit=None, group="official", id="nv01",
                    criteria_set=None)
    sheet, _ = _scanned_sheet("Nguyễn Văn Binh :")
    sheet = sheet.model_copy(update={"subject": sheet.subject.model_copy(update={"group": None})})
    known, found = apply_roster(sheet, [], {"nv01": person})
    assert (known.subject.full_name, known.subject.group, known.subject.birth_year) == ("Nguyễn Văn Bình",
                                                                                        "official", 1980)
    sources = {f.name: f.source for f in known.fields}
    assert sources["subject.full_name"] == sources["subject.group"] == "known_value" and found == []
    other, found = apply_roster(_scanned_sheet("Trần Thị Lan")[0], [], {"nv01": person})
    assert other.subject.full_name == "Trần Thị Lan" and [r.code for r in found] == ["name_differs_from_roster"]


def test_a_sheet_whose_name_is_not_the_rosters_has_its_birth_year_and_group_held_against_it_too() -> None:
    """Harsh captures (held out, forms printed before the checks): a name too stained to be the roster's, the birth
    year unread or misread beside it, and the year passed unflagged. Each such field is now a finding of its own."""
    from formsvc.roster import Person
    from formsvc.service.known_values import apply_roster

    person = Person(row=2, full_name="Nguyễn Văn Bình", birth_year=1980, unit=None, group="official", id="nv01",
                    criteria_set=None)
    sheet, _ = _scanned_sheet("Trần Thị Lan")
    _, found = apply_roster(sheet, [], {"nv01": person})  # year and group as printed: the name's finding alone
    assert [r.code for r in found] == ["name_differs_from_roster"]
    for year, group in ((None, "official"), (1986, "official"), (1980, None), (1980, "farmer")):
        read = sheet.model_copy(update={"subject": sheet.subject.model_copy(update={"birth_year": year,
                                                                                    "group": group})})
        kept, found = apply_roster(read, [], {"nv01": person})
        assert (kept.subject.birth_year, kept.subject.group) == (year, group)  # nothing overwritten
        want = ["name_differs_from_roster", *(["birth_year_differs_from_roster"] if year != 1980 else []),
                *(["group_differs_from_roster"] if group != "official" else [])]
        assert [r.code for r in found] == want, (year, group)
        assert [r.field for r in found][1:] == [("subject.group" if "group" in c else "subject.birth_year")
                                                 for c in want[1:]]
        assert all(r.severity == "review" for r in found)
    assert "«farmer»" in found[1].message and "«Cán bộ, công chức" in found[1].message  # the last: group only


def test_a_name_read_with_slips_is_the_persons_when_no_one_else_in_the_roster_is_as_near() -> None:
    """Grey paper turns the printed "Lê Thu Dũng" into "Lâ đấu Dũng", too far for a slip on its own; nearer to it
    than to anyone else's name in the roster, it is hers. With "Lã Đức Dũng" in the roster (nearer still), or
    with the name read far from everyone's, the sheet keeps its finding."""
    from formsvc.roster import Person
    from formsvc.service.known_values import apply_roster

    def person(pid: str, name: str) -> Person:
        return Person(row=2, full_name=name, birth_year=1980, unit=None, group="official", id=pid, criteria_set=None)

    people = {"nv01": person("nv01", "Lê Thu Dũng"), "nv02": person("nv02", "Nguyễn Văn Bình"),
              "nv04": person("nv04", "Lê Thu Dung")}  # the same name as hers once accents go: no other person's
    known, found = apply_roster(_scanned_sheet("Lâ đấu Dũng")[0], [], people)
    assert known.subject.full_name == "Lê Thu Dũng" and found == []
    near = people | {"nv03": person("nv03", "Lã Đức Dũng")}
    kept, found = apply_roster(_scanned_sheet("Lâ đấu Dũng")[0], [], near)
    assert kept.subject.full_name == "Lâ đấu Dũng" and [r.code for r in found] == ["name_differs_from_roster"]
    _, found = apply_roster(_scanned_sheet("Trần Thị Lan")[0], [], people)
    assert [r.code for r in found] == ["name_differs_from_roster"]
