"""Every form renders blank and filled, as DOCX and as print-ready PDF with the return-trip marks."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import pytest

from formsvc import layout
from formsvc.criteria import load_registry, resolve_group
from formsvc.payload import PagePayload, is_second, name_check, year_check
from formsvc.render import list_forms, render_document
from formsvc.render.context import build_context
from formsvc.render.docx import declared_variables
from formsvc.render.zones import form_zones, zones_from_pdf
from tests.render_helpers import (
    fonts_embedded,
    marker_centres,
    page_sizes_mm,
    page_texts,
    qr_texts,
    raster_pages,
)

# Every form through LibreOffice, blank and filled.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]

FORMS = [f.id for f in list_forms()]
RETURN_TRIP = [f.id for f in list_forms() if f.return_trip]
NAME = "Nguyễn Thị Hương Ngọc"
UNIT = "Trường MN Tam Hưng A"

FILLED: dict[str, dict[str, Any]] = {
    "cdht-self-assessment": {"criteria_set": "cdht-324-pl4", "year": 2024,
                             "subject": {"id": "nv-001", "full_name": NAME, "birth_year": 1985, "unit": UNIT,
                                         "group": "official"},
                             "scores": {"ct1": 8.5, "ct2": 9}, "evidence": {"ct1": "Kế hoạch học tập"}},
    "cdht-registration-list": {"year": 2024, "issuer": UNIT, "people": [
        {"full_name": NAME, "birth_year": 1985, "unit": "Giáo viên", "group": "official"},
        {"full_name": "Trần Văn Bình", "birth_year": 1979, "unit": "Nhân viên", "group": "Cán bộ"}]},
    "cdht-evidence-checklist": {"year": 2024, "subject": {"full_name": NAME, "unit": UNIT}},
    "cdht-minutes": {"year": 2024, "issuer": UNIT, "subject": {"full_name": UNIT}, "minutes": {
        "meeting_start": "2024-11-20T14:00:00", "meeting_end": "2024-11-20T16:00:00", "place": "Phòng họp số 2",
        "chair": "Nhữ Thị Thủy", "secretary": "Lê Văn Sơn", "members_present": 7, "members_total": 9,
        "votes_for": 7, "votes_total": 7,
        "candidates": [{"full_name": NAME, "birth_year": 1985, "self_total": 86, "agreed_total": 85.5,
                        "proposed": True}]}},
    "cdht-decision": {"year": 2024, "issuer": UNIT, "doc_number": "15/QĐ-MNTHA", "head_title": "Hiệu trưởng",
                      "head_name": "Nhữ Thị Thủy",
                      "people": [{"full_name": NAME, "birth_year": 1985, "unit": UNIT, "total": 85.5}]},
    "cdht-unit-report": {"year": 2024, "issuer": UNIT, "addressee": "Phòng Giáo dục và Đào tạo",
                         "counts": {"staff": 40, "registered": 38, "self_assessed": 36, "recognised": 30}},
    "cdht-registration-progress": {"year": 2024, "issuer": UNIT, "addressee": "Phòng Giáo dục và Đào tạo",
                                   "counts": {"staff": 40, "registered": 38, "self_assessed": 20}},
    "dvht-self-assessment": {"year": 2024, "criteria_set": "dvht-tt22-2020",
                             "subject": {"id": "dv-07", "full_name": "Trường TH Nguyễn Bỉnh Khiêm",
                                         "unit": "Phòng GD&ĐT Buôn Hồ"}, "scores": {"ct1": 9}},
    "dvht-registration": {"year": 2024, "subject": {"full_name": "Trường TH Nguyễn Bỉnh Khiêm"},
                          "address": "Phường Thống Nhất, thị xã Buôn Hồ", "members": 45},
    "dvht-inspection-minutes": {"year": 2024, "subject": {"full_name": "Trường TH Nguyễn Bỉnh Khiêm"},
                                "minutes": {"chair": "Bùi Tuấn Long", "secretary": "Kim Ngân"}},
}
# Values each filled form must show in its PDF text layer.
EXPECT = {
    "cdht-self-assessment": [NAME, UNIT, "1985", "8,5"],
    "cdht-registration-list": [NAME, "Trần Văn Bình", "1979"],
    "cdht-evidence-checklist": [NAME, "Kế hoạch học tập cá nhân có xác nhận"],
    "cdht-minutes": [NAME, "Nhữ Thị Thủy", "Phòng họp số 2", "85,5", "7 / 9"],
    "cdht-decision": [NAME, "15/QĐ-MNTHA", "HIỆU TRƯỞNG", "Nơi nhận:"],
    "cdht-unit-report": ["40", "38", "95%", "75%"],
    "cdht-registration-progress": ["95%", "50%"],
    "dvht-self-assessment": ["Trường TH Nguyễn Bỉnh Khiêm", "Phòng GD&ĐT Buôn Hồ"],
    "dvht-registration": ["2025", "Phường Thống Nhất, thị xã Buôn Hồ", "45"],
    "dvht-inspection-minutes": ["Bùi Tuấn Long", "Kim Ngân"],
}


@pytest.fixture(scope="module")
def pdfs() -> dict[tuple[str, bool], bytes]:
    out = {}
    for form in FORMS:
        out[(form, False)] = render_document(form, None, "pdf")
        out[(form, True)] = render_document(form, FILLED[form], "pdf")
    return out


def test_registry_lists_every_form_with_a_template() -> None:
    assert len(FORMS) == 10
    for f in list_forms():
        assert f.template_path.exists(), f.id


@pytest.mark.parametrize("form", FORMS)
def test_template_lint_declared_variables_match_context(form: str) -> None:
    info = next(f for f in list_forms() if f.id == form)
    used = declared_variables(info)
    provided = set(build_context(info, None, load_registry()))
    assert used <= provided, f"template uses undeclared variables {used - provided}"


@pytest.mark.parametrize("form", FORMS)
def test_no_jinja_tag_split_across_word_runs(form: str) -> None:
    info = next(f for f in list_forms() if f.id == form)
    xml = zipfile.ZipFile(info.template_path).read("word/document.xml").decode()
    texts = re.findall(r"<w:t(?: [^>]*)?>([^<]*)</w:t>", xml)
    for text in texts:
        assert text.count("{{") == text.count("}}"), text
        assert text.count("{%") == text.count("%}"), text
    assert sum(t.count("{{") for t in texts) > 0


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("filled", [False, True])
def test_pdf_is_a4_with_embedded_fonts(pdfs: dict[tuple[str, bool], bytes], form: str, filled: bool) -> None:
    pdf = pdfs[(form, filled)]
    assert all(size == (210.0, 297.0) for size in page_sizes_mm(pdf))
    fonts = fonts_embedded(pdf)
    assert fonts and all(fonts.values()), fonts


@pytest.mark.parametrize("form", FORMS)
def test_filled_pdf_text_contains_the_data(pdfs: dict[tuple[str, bool], bytes], form: str) -> None:
    text = "\n".join(page_texts(pdfs[(form, True)]))
    for value in EXPECT[form]:
        assert value in text, f"{value!r} missing from {form}"
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text and "Độc lập - Tự do - Hạnh phúc" in text


@pytest.mark.parametrize("form", FORMS)
def test_blank_pdf_prints_dotted_lines(pdfs: dict[tuple[str, bool], bytes], form: str) -> None:
    text = "\n".join(page_texts(pdfs[(form, False)]))
    assert "……" in text
    assert NAME not in text


def test_indicator_texts_come_from_the_criteria_set(pdfs: dict[tuple[str, bool], bytes]) -> None:
    text = " ".join(" ".join(page_texts(pdfs[("cdht-self-assessment", True)])).split())
    for ind in load_registry().get("cdht-324-pl4").indicators:
        assert " ".join(ind.title.split()) in text or ind.title[:30] in text, ind.title


@pytest.mark.parametrize("form", RETURN_TRIP)
@pytest.mark.parametrize("filled", [False, True])
def test_every_page_has_qr_payload_and_four_markers(pdfs: dict[tuple[str, bool], bytes], form: str,
                                                     filled: bool) -> None:
    pages = raster_pages(pdfs[(form, filled)], dpi=150)
    lines = page_texts(pdfs[(form, filled)])
    docs = set()
    for n, image in enumerate(pages, start=1):
        texts = qr_texts(image)
        # The identity three times: the primary code, the second code (same identity, "|2"), the printed id line.
        # The primary code of a filled form adds the checks of the name and birth year printed.
        assert len(texts) == 2 and sum(map(is_second, texts)) == 1, f"page {n}: {texts}"
        first, second = sorted(texts, key=is_second)
        payload = PagePayload.decode(first)
        assert second == payload.identity() + "|2" and payload.id_line() in lines[n - 1]
        subject = FILLED[form].get("subject", {}) if filled else {}
        group = resolve_group(subject.get("group"))
        assert (payload.name_check, payload.year_check, payload.group_check) == (
            name_check(subject["full_name"]) if "full_name" in subject else None,
            year_check(subject["birth_year"]) if "birth_year" in subject else None,
            group.number if group else None), f"page {n}: {first}"
        assert first == payload.encode()
        assert (payload.form, payload.page, payload.pages) == (form, n, len(pages))
        docs.add(payload.doc)
        if filled:
            assert payload.year == 2024
            assert payload.subject_id == FILLED[form].get("subject", {}).get("id")
        centres = marker_centres(image)
        assert set(centres) == {0, 1, 2, 3}, f"page {n}: markers {sorted(centres)}"
        px = 150 / 25.4
        for marker_id, box in layout.marker_boxes().items():
            cx, cy = centres[marker_id]
            assert abs(cx - (box.left + box.width / 2) * px) < 3 and abs(cy - (box.top + box.height / 2) * px) < 3
    assert len(docs) == 1


def test_vietnamese_text_extracts_exactly_nfc() -> None:
    name = "Đặng Thị Hường Nguyễn Quốc Việt"
    pdf = render_document("cdht-self-assessment", {"subject": {"full_name": name, "unit": "Ủy ban nhân dân xã Ỷ Lan"}})
    text = page_texts(pdf)[0]
    assert f"Họ và tên: {name}" in text
    assert "Ủy ban nhân dân xã Ỷ Lan" in text


@pytest.mark.parametrize("value", ["{{ 7*7 }}", "{% for x in y %}", "<w:p> & &amp;", "{{ ''.__class__ }}"])
def test_values_print_literally(value: str) -> None:
    docx = render_document("cdht-self-assessment", {"subject": {"full_name": value, "unit": UNIT}}, "docx")
    xml = zipfile.ZipFile(io.BytesIO(docx)).read("word/document.xml").decode()
    assert "49" not in xml.split("Họ và tên")[1][:400] if value == "{{ 7*7 }}" else True
    pdf = render_document("cdht-self-assessment", {"subject": {"full_name": value, "unit": UNIT}})
    assert f"Họ và tên: {value}" in page_texts(pdf)[0]


def test_zones_cover_every_indicator_and_keep_geometry_when_filled(pdfs: dict[tuple[str, bool], bytes]) -> None:
    blank = form_zones("cdht-self-assessment", "cdht-324-pl4")
    names = {z.name for z in blank.zones}
    ids = [i.id for i in load_registry().get("cdht-324-pl4").indicators]
    assert {f"scores.{i}" for i in ids} <= names
    assert {"total_declared", "subject.full_name", "signature.self"} <= names
    filled = zones_from_pdf(pdfs[("cdht-self-assessment", True)], "cdht-self-assessment", "cdht-324-pl4")
    fb = {(z.name, z.page): z.box for z in filled.zones}
    for z in blank.zones:
        other = fb[(z.name, z.page)]
        assert abs(other.left - z.box.left) < 0.5 and abs(other.top - z.box.top) < 0.5, z.name
    for z in blank.zones:
        if z.kind == "score":
            assert 12 <= z.box.width <= 30 and 8 <= z.box.height <= 16, (z.name, z.box)
            assert z.box.top + z.box.height < layout.PAGE_H_MM - layout.MARGIN_BOTTOM_MM + 1


def test_unknown_form_and_bad_format_are_clear_errors() -> None:
    from formsvc.errors import InputError, NotFoundError

    with pytest.raises(NotFoundError):
        render_document("no-such-form", None)
    with pytest.raises(InputError):
        render_document("cdht-self-assessment", None, "odt")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        render_document("cdht-self-assessment", {"subject": {"id": "có dấu", "full_name": "A"}})


# --- ĐVHT forms follow Thông tư 22/2020, Điều 5 ------------------------------------------------------------

def _indicator_table(pdf: bytes) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(number, title, max points) of each indicator row, and the lines printed under indicators, in order."""
    import pdfplumber

    rows: list[tuple[int, str, str]] = []
    lines: list[str] = []
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for page in doc.pages:
            for table in page.extract_tables():
                for cells in table:
                    first = (cells[0] or "").strip()
                    if first.isdigit():
                        rows.append((int(first), " ".join((cells[1] or "").split()), (cells[2] or "").strip()))
                    elif not first and (cells[1] or "").startswith("–"):
                        lines.append(" ".join((cells[1] or "").removeprefix("–").split()))
    return rows, lines


@pytest.mark.parametrize("form", ["dvht-self-assessment", "dvht-inspection-minutes"])
def test_dvht_forms_print_the_tt22_structure(pdfs: dict[tuple[str, bool], bytes], form: str) -> None:
    tt22 = load_registry().get("dvht-tt22-2020")
    assert next(f for f in list_forms() if f.id == form).template_version == 2
    for filled in (False, True):
        pdf = pdfs[(form, filled)]
        rows, lines = _indicator_table(pdf)
        expected = [(i.number, f"{i.label}) {' '.join(i.title.split())}", str(int(i.max_points)))
                    for i in tt22.indicators]
        assert rows == expected
        # The 8 qualities of 3a, printed as lines under it, in order.
        assert lines == [s.text for s in tt22.indicator("ct8").sub_items]  # type: ignore[union-attr]
        text = " ".join(" ".join(page_texts(pdf)).split())
        for crit, maximum in zip(tt22.criteria, (30, 30, 40), strict=True):
            assert f"Tiêu chí {crit.number}. {crit.title}" in text or crit.title[:25] in text
            assert crit.max_points == maximum
        assert "TỔNG ĐIỂM 100" in text and "vi phạm pháp luật" not in text
        assert "Thông tư 22/2020/TT-BGDĐT, Điều 5" in text and "dvht-tt22-2020 v2" in text


def test_dvht_zones_cover_every_indicator_and_keep_geometry_when_filled(
        pdfs: dict[tuple[str, bool], bytes]) -> None:
    blank = form_zones("dvht-self-assessment", "dvht-tt22-2020")
    ids = [i.id for i in load_registry().get("dvht-tt22-2020").indicators]
    scores = {z.name: z for z in blank.zones if z.kind == "score" and not z.name.startswith("committee")}
    assert {f"scores.{i}" for i in ids} | {"total_declared"} == set(scores)
    assert {f"committee.{i}" for i in ids} <= {z.name for z in blank.zones}
    filled = {(z.name, z.page): z.box
              for z in zones_from_pdf(pdfs[("dvht-self-assessment", True)], "dvht-self-assessment",
                                      "dvht-tt22-2020").zones}
    for z in blank.zones:
        other = filled[(z.name, z.page)]
        assert abs(other.left - z.box.left) < 0.5 and abs(other.top - z.box.top) < 0.5, z.name
    # A long title gets a taller row (exact heights 15, 21, 27 mm); the box to read stays one line tall, centred.
    def centre(name: str) -> float:
        return scores[name].box.top + scores[name].box.height / 2

    assert all(8 <= z.box.height <= 14 for z in scores.values())
    assert abs(centre("scores.ct2") - centre("scores.ct1") - 15) < 0.6  # 15 mm rows
    assert abs(centre("scores.ct3") - centre("scores.ct2") - (15 + 27) / 2) < 0.6  # ct3's row is 27 mm


def test_unknown_audience_group_is_refused_listing_the_groups() -> None:
    from formsvc.errors import InputError

    for form, data in (("cdht-self-assessment", {"subject": {"full_name": "A", "group": "officials"}}),
                       ("cdht-registration-list", {"people": [{"full_name": "A", "group": "officials"}]})):
        with pytest.raises(InputError) as exc:
            render_document(form, data, "docx")
        assert exc.value.code == "group_unknown"
        assert exc.value.message.startswith("Đối tượng «officials» không thuộc nhóm đối tượng nào. Các nhóm hợp lệ: ")
        for code in ("farmer", "worker", "official", "learner"):
            assert code in exc.value.message
        assert exc.value.detail["allowed"] == ["farmer", "worker", "official", "learner"]
    # Every accepted spelling still prints the group's label.
    ctx = build_context(next(f for f in list_forms() if f.id == "cdht-self-assessment"),
                        {"subject": {"full_name": "A", "group": "Học sinh"}}, load_registry())
    assert ctx["group_label"] == "Học sinh, sinh viên"


def test_cli_render_unknown_group_fails_with_the_allowed_groups(tmp_path: Any) -> None:
    import json
    import subprocess
    import sys

    data = tmp_path / "d.json"
    data.write_text(json.dumps({"subject": {"full_name": "A", "group": "officials"}}), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "formsvc.cli", "render", "cdht-self-assessment", "--out",
                          str(tmp_path / "x.pdf"), "--data", str(data)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Lỗi [group_unknown]: Đối tượng «officials» không thuộc nhóm đối tượng nào" in out.stderr
    assert "learner hoặc 4 (Học sinh, sinh viên)" in out.stderr
    assert not (tmp_path / "x.pdf").exists()


@pytest.mark.parametrize(("form", "set_id"), [("dvht-self-assessment", "dvht-tt24-2023"),
                                              ("dvht-inspection-minutes", "cdht-324-pl4"),
                                              ("cdht-self-assessment", "dvht-tt22-2020")])
def test_a_set_the_form_cannot_print_is_refused(form: str, set_id: str) -> None:
    from formsvc.errors import InputError

    with pytest.raises(InputError) as exc:
        render_document(form, {"criteria_set": set_id}, "docx")
    assert exc.value.code == "criteria_set_not_printable" and set_id in exc.value.message
