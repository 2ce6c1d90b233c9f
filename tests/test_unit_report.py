"""Unit report numbers from a small mixed set of records, checked against hand-computed counts,
and rendered into the Biểu mẫu 2 form."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import docx
import pytest

from formsvc.criteria import default_registry
from formsvc.exports import ExportRow
from formsvc.records import FieldProvenance, Record
from formsvc.render import render_document
from formsvc.reports import UnitReport, report_context, unit_report
from formsvc.reports.unit_report import CdhtCounts
from formsvc.validation import validate_with_registry
from tests.factories import dvht_record, full_record, spread_scores

REG = default_registry()
PL1 = REG.get("cdht-324-pl1")
PL4 = REG.get("cdht-324-pl4")
FARMERS = REG.get("cdht-324-g1-farmers")
TT22 = REG.get("dvht-tt22-2020")
TT24 = REG.get("dvht-tt24-2023")
UNIT = "Trường MN Tam Hưng A"
# Every TT 24/2023 indicator met (96 % on the measured ones; the learners' one does not apply).
TT24_ALL_MET = {i.id: (96 if i.measure else 1) for i in TT24.indicators if i.only_for is None}


def checked(record: Record) -> Record:
    return validate_with_registry(record, REG, review_confidence=0.8)


def person(name: str, sid: str | None = None, group: str | None = "official", unit: str = UNIT) -> dict[str, Any]:
    return {"id": sid, "full_name": name, "birth_year": 1985, "unit": unit, "group": group}


def unit_subject(name: str, parent: str) -> dict[str, Any]:
    return {"full_name": name, "unit": parent}


def mixed_records() -> list[Record]:
    low_conf = [FieldProvenance(name="scores.ct1", value=9, confidence=0.5, source="ocr")]
    return [
        # CDHT of the unit, 2024.
        checked(full_record(PL4, 8.5, subject=person("A"))),                          # 85 recognised
        checked(full_record(PL4, 6, subject=person("B", "gv02"))),                    # superseded below
        checked(full_record(PL4, 9, subject=person("B", "gv02"))),                    # 90 recognised
        checked(full_record(PL4, 7, subject=person("C"))),                            # 70 not recognised
        checked(full_record(FARMERS, 8, subject=person("D", group="farmer"))),        # 80 recognised
        checked(full_record(PL4, 9, subject=person("E"), fields=low_conf)),           # 90 needs review
        checked(full_record(PL4, 8, subject=person("F"),
                            scores={**{i.id: 8 for i in PL4.indicators}, "ct1": "abc"})),  # rejected
        full_record(PL4, 8, subject=person("G")),                                     # never validated
        checked(full_record(PL1, 6, subject=person("H", group=None))),                # 60, no group
        # Not counted: another unit, another year, not a self-assessment.
        checked(full_record(PL4, 9, subject=person("X", unit="Trường TH Đa Phúc"))),
        checked(full_record(PL4, 9, year=2023, subject=person("Y"))),
        checked(full_record(PL4, 9, form="cdht-minutes", subject=person("Z"))),
        # ĐVHT, listed worst-first to check the band order.
        checked(dvht_record(TT22, 75, subject=unit_subject("Tổ chuyên môn 1", UNIT))),     # 75 Khá
        checked(dvht_record(TT22, 90, subject=unit_subject(UNIT, "Phòng GD&ĐT Dương Kinh"))),  # 90 Tốt, own
        checked(dvht_record(TT22, 80, subject=unit_subject("Tổ chuyên môn 2", UNIT))),       # 80 Khá
        checked(full_record(TT24, subject=unit_subject("Tổ văn phòng", UNIT),
                            scores=TT24_ALL_MET)),                                        # mức độ 1
        checked(full_record(TT22, subject=unit_subject("Tổ chuyên môn 3", UNIT),
                            scores={k: v for k, v in spread_scores(TT22, 90).items() if k != "ct1"})),  # review
        checked(dvht_record(TT22, 90, subject=unit_subject("Trường khác", "Phòng GD&ĐT Dương Kinh"))),
    ]


@pytest.fixture(scope="module")
def report() -> UnitReport:
    return unit_report(mixed_records(), unit=UNIT, year=2024)


def test_cdht_counts(report: UnitReport) -> None:
    c = report.cdht
    assert (c.assessed, c.recognised, c.not_recognised) == (8, 3, 2)
    assert (c.needs_review, c.pending_recognised, c.rejected, c.unvalidated) == (1, 1, 1, 1)
    assert c.recognised + c.not_recognised + c.needs_review + c.rejected + c.unvalidated == c.assessed
    # Mean of valid and needs-review totals: (85 + 90 + 70 + 80 + 90 + 60) / 6.
    assert c.average_total == 79.17
    assert c.recognised_rate == 37.5
    assert report.duplicate_subject_ids == ["gv02"]


def test_cdht_groups(report: UnitReport) -> None:
    got = [(g.code, g.label, g.assessed, g.recognised, g.recognised_rate) for g in report.cdht.groups]
    assert got == [
        ("farmer", "Nông dân, lao động nông thôn", 1, 1, 100.0),
        ("official", "Cán bộ, công chức, viên chức, người lao động", 6, 2, 33.3),
        (None, "Chưa rõ đối tượng", 1, 0, 0.0),
    ]


def test_dvht_counts(report: UnitReport) -> None:
    d = report.dvht
    assert (d.assessed, d.recognised, d.not_recognised, d.needs_review, d.rejected, d.unvalidated) == (5, 1, 0, 1, 0, 0)
    assert [(b.code, b.label, b.count) for b in d.bands] == [("tot", "Tốt", 1), ("kha", "Khá", 2),
                                                             ("muc_do_1", "Đạt mức độ 1", 1)]


def test_unit_match_ignores_case_and_duplicates_keep_last() -> None:
    records = mixed_records()
    upper = unit_report(records, unit=UNIT.upper(), year=2024)
    assert upper.cdht == unit_report(records, unit=UNIT, year=2024).cdht
    # Swapping the two gv02 records makes the 60-point one the latest: one fewer recognised.
    records[1], records[2] = records[2], records[1]
    swapped = unit_report(records, unit=UNIT, year=2024)
    assert (swapped.cdht.assessed, swapped.cdht.recognised, swapped.cdht.not_recognised) == (8, 2, 3)


def test_store_rows_use_store_unit_and_newest_update() -> None:
    t0 = dt.datetime(2024, 11, 1, tzinfo=dt.UTC)

    def stored(rec: Record, unit: str, days: int) -> ExportRow:
        return ExportRow(record=rec, id=f"r{days}", unit=unit, approved=False, updated_at=t0 + dt.timedelta(days=days))

    # The form says "Tổ Nuôi dưỡng" (free text): the store account decides which unit the row is filed under.
    subject = person("B", "gv02", unit="Tổ Nuôi dưỡng")
    rows = [  # newest first, as the store lists them
        stored(checked(full_record(PL4, 9, subject=subject)), "tamhung-a", 3),
        stored(checked(full_record(PL4, 6, subject=subject)), "tamhung-a", 1),
        stored(checked(full_record(PL4, 9, subject=person("C", unit=UNIT))), "daphuc", 2),
    ]
    got = unit_report(rows, unit="tamhung-a", year=2024)
    assert (got.cdht.assessed, got.cdht.recognised, got.cdht.not_recognised) == (1, 1, 0)
    assert got.duplicate_subject_ids == ["gv02"]
    assert unit_report(rows, unit=UNIT, year=2024).cdht.assessed == 0


def test_empty_report() -> None:
    empty = unit_report([], unit=UNIT, year=2024)
    assert empty.cdht == CdhtCounts()
    assert empty.cdht.recognised_rate is None and empty.cdht.average_total is None
    assert empty.dvht.bands == []
    # A blank unit name must not collect the records that have no unit.
    no_unit = checked(full_record(PL4, 9, subject=person("A", unit="")))
    assert no_unit.subject.unit is None or no_unit.subject.unit == ""
    assert unit_report([no_unit], unit="", year=2024).cdht.assessed == 0


def test_labels_are_vietnamese() -> None:
    assert CdhtCounts.labels()["recognised"] == "Số được công nhận"
    assert CdhtCounts.labels()["needs_review"] == "Số cần kiểm tra"


def test_report_context_keys(report: UnitReport) -> None:
    data = report_context(report, staff=40, registered=38, addressee="Phòng GD&ĐT Dương Kinh",
                          head_name="Phạm Thị Lan", date="2024-12-05", place="Dương Kinh")
    assert data["counts"] == {"staff": 40, "registered": 38, "self_assessed": 8, "recognised": 3}
    assert data["year"] == 2024 and data["issuer"] == UNIT
    assert data["date"] == "2024-12-05" and "doc_number" not in data
    assert "Trong 8 bản tự đánh giá: 3 được công nhận (37,5%)" in data["notes"]
    assert report_context(report, notes="")["notes"] == ""


def docx_text(data: bytes) -> str:
    doc = docx.Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        parts += [cell.text for r in table.rows for cell in r.cells]
    return "\n".join(parts)


def count_cells(data: bytes) -> list[str]:
    doc = docx.Document(io.BytesIO(data))
    table = next(t for t in doc.tables if t.rows[0].cells[0].text == "Tổng số CB, GV, NV")
    return [c.text for c in table.rows[1].cells]


def test_render_unit_report(report: UnitReport) -> None:
    data = report_context(report, staff=40, registered=38, addressee="Phòng GD&ĐT Dương Kinh",
                          head_name="Phạm Thị Lan", date="2024-12-05", place="Dương Kinh")
    out = render_document("cdht-unit-report", data, "docx")
    # Staff, registered, 38/40, self-assessed, recognised, 3/40: the form's rates are against staff.
    assert count_cells(out) == ["40", "38", "95%", "8", "3", "7,5%"]
    text = docx_text(out)
    assert "Kết quả đánh giá, công nhận danh hiệu “Công dân học tập” năm 2024" in text
    assert "Dương Kinh, ngày 05 tháng 12 năm 2024" in text
    assert "Kính gửi: Phòng GD&ĐT Dương Kinh" in text
    assert "Phạm Thị Lan" in text
    assert "Điểm trung bình: 79,17." in text
    assert "Nông dân, lao động nông thôn: 1/1 được công nhận" in text
    assert "xếp loại: Tốt 1, Khá 2" in text


def test_render_without_staff_leaves_rates_blank(report: UnitReport) -> None:
    out = render_document("cdht-unit-report", report_context(report), "docx")
    assert count_cells(out) == ["", "", "", "8", "3", ""]


def test_same_context_fits_registration_progress(report: UnitReport) -> None:
    out = render_document("cdht-registration-progress", report_context(report, staff=40, registered=38), "docx")
    assert count_cells(out) == ["40", "38", "95%", "8", "20%"]
