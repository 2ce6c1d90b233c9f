"""Documents formsvc did not print: a unit's own Word self-assessment, typed minutes, and their cross-check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fixtures.foreign import typed_minutes, unit_self_assessment
from fixtures.scans import random_record, rasterise, save_scan
from formsvc.extract.pipeline import extract_files
from formsvc.render.converter import get_converter
from formsvc.settings import get_settings

# Units' own tables rendered and read back, some by OCR; LibreOffice stopped after the module's last test.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]

UNIT = "Trường MN Tam Hưng A"


def _pdf(tmp_path: Path, name: str, docx: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(get_converter().docx_to_pdf(docx))
    return path


def _candidate(data: dict[str, Any], *, name: str | None = None, agreed: float | None = None) -> dict[str, Any]:
    return {"full_name": name or data["subject"]["full_name"], "birth_year": data["subject"]["birth_year"],
            "self_total": data["total_declared"],
            "agreed_total": data["total_declared"] if agreed is None else agreed, "proposed": True}


@pytest.mark.parametrize("set_id", ["cdht-324-pl4", "cdht-324-g1-farmers"])
def test_units_own_word_table_is_read_and_matched_to_the_right_criteria(set_id: str, tmp_path: Path) -> None:
    data = random_record(501, set_id)
    result = extract_files([_pdf(tmp_path, "own.pdf", unit_self_assessment(data))])
    assert result.errors == []
    [doc] = result.documents
    assert doc.criteria_set == set_id and doc.form == "cdht-self-assessment"
    assert doc.scores == data["scores"] and doc.total_declared == data["total_declared"]
    assert doc.subject.full_name == data["subject"]["full_name"]
    assert doc.subject.birth_year == data["subject"]["birth_year"]
    assert doc.year == 2024 and doc.extra["layout"] == "foreign"
    assert doc.status == "valid"


def test_typed_minutes_are_read(tmp_path: Path) -> None:
    data = random_record(502)
    path = _pdf(tmp_path, "minutes.pdf", typed_minutes(UNIT, [_candidate(data)]))
    [doc] = extract_files([path]).documents
    m = doc.extra["minutes"]
    assert doc.form == "cdht-minutes" and doc.year == 2024
    assert m["meeting_start"] == "2024-11-20T14:00:00" and m["meeting_end"] == "2024-11-20T16:00:00"
    assert (m["place"], m["chair"], m["secretary"]) == ("Phòng họp số 2", "Nhữ Thị Thủy", "Lê Văn Sơn")
    assert (m["members_present"], m["members_total"], m["votes_for"], m["votes_total"]) == (7, 9, 7, 7)
    assert m["chair_signed"] is True and m["secretary_signed"] is True
    [cand] = m["candidates"]
    assert cand["full_name"] == data["subject"]["full_name"] and cand["birth_year"] == data["subject"]["birth_year"]
    assert cand["self_total"] == data["total_declared"] and cand["proposed"] is True


def test_unsigned_minutes_say_so(tmp_path: Path) -> None:
    path = _pdf(tmp_path, "m.pdf", typed_minutes(UNIT, [_candidate(random_record(503))], signed=False))
    [doc] = extract_files([path]).documents
    assert doc.extra["minutes"]["chair_signed"] is False


def test_minutes_are_cross_checked_with_the_self_assessments_beside_them(tmp_path: Path) -> None:
    ok = random_record(504)
    ok["scores"] = {k: 9.0 for k in ok["scores"]}
    ok["total_declared"] = 90.0
    low = random_record(505)
    low["scores"] = {k: 6.0 for k in low["scores"]}
    low["total_declared"] = 60.0
    folded = "Nguyen Van An" if ok["subject"]["full_name"] != "Nguyễn Văn An" else "Tran Van Binh"
    ok["subject"]["full_name"] = {"Nguyen Van An": "Nguyễn Văn An", "Tran Van Binh": "Trần Văn Bình"}[folded]
    files = [
        _pdf(tmp_path, "ok.pdf", unit_self_assessment(ok)),
        _pdf(tmp_path, "low.pdf", unit_self_assessment(low)),
        _pdf(tmp_path, "min.pdf", typed_minutes(UNIT, [
            _candidate(ok, name=folded, agreed=89.0),  # written without diacritics, agreed total differs
            _candidate(low),  # proposed although the sheet does not meet the rule
            {"full_name": "Hoàng Thị Yến", "birth_year": 1990, "self_total": 88, "agreed_total": 88,
             "proposed": True},  # no self-assessment at all
        ])),
    ]
    result = extract_files(files)
    minutes = next(d for d in result.documents if d.form == "cdht-minutes")
    codes = [r.code for r in minutes.result.reasons]  # type: ignore[union-attr]
    assert "name_matched_without_diacritics" in codes
    assert "agreed_total_differs" in codes
    assert "proposed_not_meeting_rule" in codes
    assert "proposed_without_self_assessment" in codes
    assert minutes.status == "needs_review"
    messages = " ".join(r.message for r in minutes.result.reasons)  # type: ignore[union-attr]
    assert "Hoàng Thị Yến" in messages and low["subject"]["full_name"] in messages


def test_scanned_foreign_table_is_never_silently_wrong(tmp_path: Path) -> None:
    """The scanned table is read cell by cell (tests/test_extract_scanned_tables.py measures how well); whatever
    it reads wrong or misses is flagged, never silently wrong."""
    data = random_record(506)
    pdf = get_converter().docx_to_pdf(unit_self_assessment(data))
    path = save_scan(rasterise(pdf, 200), tmp_path / "scan.tif")
    result = extract_files([path])
    [doc] = result.documents
    threshold = get_settings().review_confidence
    low = {f.name for f in doc.fields if f.confidence < threshold}
    silent = [k for k, v in data["scores"].items() if doc.scores.get(k) != v and f"scores.{k}" not in low]
    assert silent == []
    assert sum(doc.scores.get(k) == v for k, v in data["scores"].items()) >= 8


def test_scan_without_a_ruled_table_is_a_clear_error(tmp_path: Path) -> None:
    """A scanned self-assessment whose table has no ruling lines cannot be read cell by cell: a clear error."""
    from docx import Document

    doc = Document()
    doc.add_paragraph("PHIẾU TỰ ĐÁNH GIÁ CÔNG DÂN HỌC TẬP NĂM 2024")
    doc.add_paragraph("Họ và tên: Nguyễn Văn An")
    doc.add_paragraph("STT   Nội dung chỉ tiêu   Điểm tự chấm")
    doc.add_paragraph("1   Xây dựng và thực hiện kế hoạch học tập cá nhân trong năm   8")
    import io

    buf = io.BytesIO()
    doc.save(buf)
    path = save_scan(rasterise(get_converter().docx_to_pdf(buf.getvalue()), 200), tmp_path / "scan.png")
    result = extract_files([path])
    assert result.documents == [] and [e.code for e in result.errors] == ["foreign_unreadable"]


def test_unrelated_document_is_a_clear_page_error(tmp_path: Path) -> None:
    from docx import Document

    doc = Document()
    doc.add_paragraph("THỰC ĐƠN BỮA TRƯA")
    doc.add_paragraph("Cơm, canh chua, cá kho tộ, rau muống xào tỏi, chuối tráng miệng.")
    import io

    buf = io.BytesIO()
    doc.save(buf)
    result = extract_files([_pdf(tmp_path, "menu.pdf", buf.getvalue())])
    assert result.documents == [] and [e.code for e in result.errors] == ["page_unidentified"]


@pytest.mark.parametrize("scanned", [False, True])
def test_scores_equal_to_every_maximum_are_never_taken_on_trust(scanned: bool, tmp_path: Path) -> None:
    """A column of values equal to the maxima may be the printed "Điểm chuẩn" column read as scores: it goes to a
    person, never through as confident (the table's real maximum column is never the score column either)."""
    from formsvc.criteria import default_registry

    data = random_record(502)
    cset = default_registry().get(data["criteria_set"])
    data["scores"] = {i.id: float(i.max_points) for i in cset.indicators}
    data["total_declared"] = float(sum(i.max_points for i in cset.indicators))
    path = _pdf(tmp_path, "own.pdf", unit_self_assessment(data))
    if scanned:
        pdf = path.read_bytes()
        path = save_scan(rasterise(pdf, 200), tmp_path / "own.tif")
    [doc] = extract_files([path]).documents
    threshold = get_settings().review_confidence
    scores = [f for f in doc.fields if f.name.startswith("scores.")]
    assert len(scores) == len(cset.indicators)
    assert all(f.confidence < threshold for f in scores)
    assert doc.status == "needs_review"


def test_scanned_table_whose_scores_miss_its_total_trusts_none_of_them(tmp_path: Path) -> None:
    """A scanned sheet whose scores do not add up to its written total holds a misread somewhere, and nothing says
    where (the total itself may be it): every score and the total go to a person, however sure each reading was.
    Read as typed, every cell here is sure and right; only the total was written 5 points off."""
    data = random_record(507)
    data["total_declared"] = float(data["total_declared"]) + 5.0
    pdf = get_converter().docx_to_pdf(unit_self_assessment(data))
    [doc] = extract_files([save_scan(rasterise(pdf, 200), tmp_path / "scan.tif")]).documents
    threshold = get_settings().review_confidence
    assert doc.total_declared == data["total_declared"]
    fields = [f for f in doc.fields if f.name.startswith("scores.") or f.name == "total_declared"]
    assert len(fields) == len(data["scores"]) + 1
    assert all(f.confidence < threshold for f in fields), [(f.name, f.confidence) for f in fields]
    # The same sheet with its total right: its sure readings stay sure.
    data["total_declared"] -= 5.0
    pdf = get_converter().docx_to_pdf(unit_self_assessment(data))
    [doc] = extract_files([save_scan(rasterise(pdf, 200), tmp_path / "right.tif")]).documents
    assert sum(f.confidence >= threshold for f in doc.fields if f.name.startswith("scores.")) >= 8


def test_scanned_scores_with_no_total_read_are_all_for_a_person() -> None:
    """No total read (its page lost, or no "Tổng" row): nothing checks the cells, so none passes on Tesseract's
    say-so alone; with a total they add up to, they keep their confidences (a blank cell counts 0)."""
    from formsvc.extract.foreign import _doubt_unadded
    from formsvc.records import FieldProvenance

    scores: dict[str, float | str | None] = {"ct1": 9.5, "ct2": 8.0, "ct3": None}
    fields = [FieldProvenance(name=f"scores.{k}", value=v, confidence=0.95, source="ocr") for k, v in scores.items()]
    fields.append(FieldProvenance(name="subject.full_name", value="Hà", confidence=0.95, source="ocr"))
    threshold = get_settings().review_confidence
    for total in (None, 18.0):
        out = _doubt_unadded(scores, total, fields)
        assert all(f.confidence < threshold for f in out if f.name.startswith("scores."))
        assert out[-1].confidence == 0.95  # the name is not a score
    assert _doubt_unadded(scores, 17.5, fields) == fields
    assert all(f.confidence < threshold for f in _doubt_unadded({**scores, "ct3": "x"}, 17.5, fields)[:3])
