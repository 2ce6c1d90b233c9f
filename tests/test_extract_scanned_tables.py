"""Ruled tables on scanned pages: a unit's own self-assessment table and formsvc's own minutes, printed, scanned,
degraded and read back cell by cell. Scores must be right for the large majority of rows; every wrong or missing
value must be flagged (low confidence or a review reason), never silently wrong."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.foreign import typed_minutes, unit_self_assessment
from fixtures.scans import degrade, random_record, rasterise, save_scan
from formsvc.extract.pipeline import extract_files
from formsvc.records import Record
from formsvc.render.api import render_document
from formsvc.render.converter import get_converter
from formsvc.settings import get_settings

# ~2 min: every table read cell by cell on seven kinds of scan; LibreOffice stopped after the module's last test.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]

KINDS = ["clean", "rotate", "noise", "jpeg", "fax", "upside_down", "phone"]
UNIT = "Trường MN Tam Hưng A"
PEOPLE = ["Nguyễn Thị Hương Ngọc", "Trần Văn Bình", "Lê Thị Hồng", "Phạm Quốc Việt", "Đỗ Minh Khang"]


def _flagged(doc: Record, field: str) -> bool:
    threshold = get_settings().review_confidence
    low = any(f.name == field and f.confidence < threshold for f in doc.fields)
    reasons = doc.result.reasons if doc.result else []
    return low or any(r.field == field and r.severity in ("review", "error") for r in reasons)


def _silent(truth: dict[str, Any], doc: Record, prefix: str, values: dict[str, Any]) -> list[str]:
    return [k for k, v in truth.items() if values.get(k) != v and not _flagged(doc, f"{prefix}{k}")]


@pytest.fixture(scope="module")
def own_table_pages() -> list[tuple[dict[str, Any], list[Any]]]:
    out = []
    for seed in (506, 507):
        data = random_record(seed)
        out.append((data, rasterise(get_converter().docx_to_pdf(unit_self_assessment(data)), 200)))
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_scanned_unit_table_is_read_cell_by_cell(kind: str, own_table_pages: list[tuple[dict[str, Any], list[Any]]],
                                                  tmp_path: Path) -> None:
    right = total = 0
    for n, (data, pages) in enumerate(own_table_pages):
        path = save_scan(degrade(pages, kind, 40 + n), tmp_path / f"scan{n}.tif")
        started = time.perf_counter()
        result = extract_files([path])
        elapsed = time.perf_counter() - started
        [doc] = result.documents
        assert doc.criteria_set == data["criteria_set"] and doc.extra["layout"] == "foreign"
        assert _silent(data["scores"], doc, "scores.", doc.scores) == []
        assert doc.total_declared == data["total_declared"] or _flagged(doc, "total_declared")
        assert doc.subject.full_name == data["subject"]["full_name"] or _flagged(doc, "subject.full_name")
        right += sum(doc.scores.get(k) == v for k, v in data["scores"].items())
        total += len(data["scores"])
        print(f"{kind}: {right}/{total} scores right, {elapsed / len(pages):.2f} s per page")
    assert right >= 0.8 * total


def _minutes_data(count: int) -> dict[str, Any]:
    candidates = [{"full_name": PEOPLE[i], "birth_year": 1975 + 3 * i, "self_total": 80.0 + i,
                   "agreed_total": 79.5 + i, "proposed": i % 2 == 0} for i in range(count)]
    return {"year": 2024, "issuer": UNIT, "subject": {"full_name": UNIT}, "minutes": {
        "meeting_start": "2024-11-20T14:00:00", "meeting_end": "2024-11-20T16:00:00", "place": "Phòng họp số 2",
        "chair": "Nhữ Thị Thủy", "secretary": "Lê Văn Sơn", "members_present": 7, "members_total": 9,
        "votes_for": 7, "votes_total": 7, "candidates": candidates}}


def _check_minutes(doc: Record, data: dict[str, Any]) -> int:
    """Candidate values read right; asserts every other one is flagged."""
    truth = data["minutes"]["candidates"]
    read = doc.extra["minutes"]["candidates"]
    assert len(read) == len(truth)
    right = 0
    for i, (want, got) in enumerate(zip(truth, read, strict=True)):
        assert _silent(want, doc, f"minutes.candidates.{i}.", got) == []
        right += sum(got[k] == v for k, v in want.items())
    return right


def test_own_minutes_digital_are_read_not_taken_for_a_self_assessment(tmp_path: Path) -> None:
    """formsvc's own minutes carry a QR; they used to come back as an empty self-assessment of the minutes form."""
    data = _minutes_data(3)
    path = tmp_path / "minutes.pdf"
    path.write_bytes(render_document("cdht-minutes", data))
    [doc] = extract_files([path]).documents
    m = doc.extra["minutes"]
    assert doc.form == "cdht-minutes" and doc.extra["layout"] == "formsvc" and doc.year == 2024
    assert m["meeting_start"] == "2024-11-20T14:00:00" and m["chair"] == "Nhữ Thị Thủy"
    assert [c["full_name"] for c in m["candidates"]] == PEOPLE[:3]
    assert [c["agreed_total"] for c in m["candidates"]] == [79.5, 80.5, 81.5]


@pytest.mark.parametrize("kind", KINDS)
def test_scanned_own_minutes_candidate_table_is_read(kind: str, tmp_path: Path) -> None:
    data = _minutes_data(5)
    pages = rasterise(render_document("cdht-minutes", data), 200)
    path = save_scan(degrade(pages, kind, 60), tmp_path / "minutes.png")
    [doc] = extract_files([path]).documents
    assert doc.form == "cdht-minutes" and doc.year == 2024 and doc.extra["layout"] == "formsvc"
    right = _check_minutes(doc, data)
    print(f"{kind}: {right}/{5 * 5} candidate values right")
    assert right >= 0.8 * 5 * 5
    assert doc.extra["minutes"]["meeting_start"] == "2024-11-20T14:00:00"


def test_scanned_own_minutes_are_cross_checked(tmp_path: Path) -> None:
    """The scanned minutes meet the typed self-assessments of the same upload: the existing cross-checks run."""
    sheet = random_record(504)
    sheet["scores"] = {k: 6.0 for k in sheet["scores"]}
    sheet["total_declared"] = 60.0
    sheet_path = tmp_path / "sheet.pdf"
    sheet_path.write_bytes(get_converter().docx_to_pdf(unit_self_assessment(sheet)))
    data = _minutes_data(1)
    data["minutes"]["candidates"][0].update(full_name=sheet["subject"]["full_name"],
                                            birth_year=sheet["subject"]["birth_year"], self_total=60.0,
                                            agreed_total=60.0, proposed=True)
    data["minutes"]["candidates"].append({"full_name": "Hoàng Thị Yến", "birth_year": 1990, "self_total": 88,
                                          "agreed_total": 88, "proposed": True})
    pages = rasterise(render_document("cdht-minutes", data), 200)
    minutes_path = save_scan(degrade(pages, "rotate", 61), tmp_path / "minutes.png")
    result = extract_files([sheet_path, minutes_path])
    minutes = next(d for d in result.documents if d.form == "cdht-minutes")
    codes = [r.code for r in minutes.result.reasons]  # type: ignore[union-attr]
    assert "proposed_not_meeting_rule" in codes and "proposed_without_self_assessment" in codes
    assert minutes.status == "needs_review"


def test_scanned_freely_typed_minutes_are_read(tmp_path: Path) -> None:
    """A committee's own typed minutes (no formsvc QR), printed, signed and scanned turned: the meeting's facts
    from the full-page text, the candidates from the ruled table."""
    people = [random_record(s) for s in (502, 503, 504)]
    candidates = [{"full_name": p["subject"]["full_name"], "birth_year": p["subject"]["birth_year"],
                   "self_total": p["total_declared"], "agreed_total": p["total_declared"], "proposed": True}
                  for p in people]
    pages = rasterise(get_converter().docx_to_pdf(typed_minutes(UNIT, candidates)), 200)
    result = extract_files([save_scan(degrade(pages, "rotate", 3), tmp_path / "bien-ban.tif")])
    [doc] = result.documents
    m = doc.extra["minutes"]
    assert doc.form == "cdht-minutes" and doc.extra["layout"] == "foreign"
    assert m["meeting_start"] == "2024-11-20T14:00:00" and m["chair"] == "Nhữ Thị Thủy"
    assert (m["members_present"], m["members_total"], m["votes_for"]) == (7, 9, 7)
    assert len(m["candidates"]) == 3
    for n, (got, want) in enumerate(zip(m["candidates"], candidates, strict=True)):
        for key in ("full_name", "self_total", "agreed_total"):
            assert got[key] == want[key] or _flagged(doc, f"minutes.candidates.{n}.{key}"), (n, key)
