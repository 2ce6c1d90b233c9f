"""The year-end dossier from stored records: Vietnamese name order, who goes where (approved → minutes and
decision, not approved → cover sheet, a person stored twice → a typed error naming both), the `formsvc dossier`
command writing DOCX + PDF of every document, and the minutes draft printed, scanned, degraded and read back
cross-checking clean against the same records."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pdfplumber
import pytest
from docx import Document

from fixtures.dossier_unit import UnitYear, record_of, store_unit_year, unit_year
from fixtures.scans import degrade, rasterise, save_scan
from formsvc.collation import name_sort_key, vietnamese_key
from formsvc.db import session_scope
from formsvc.exports import ExportRow
from formsvc.render.converter import get_converter
from formsvc.reports.dossier import DuplicateRecordError, cdht_recognised_share, plan_dossier
from formsvc.service.records import stored_sheets
from formsvc.validation.crosscheck import check_minutes
from tests.service_app import migrated_store

pytestmark = pytest.mark.slow  # the year-end dossier's documents through LibreOffice, some printed and read back by OCR

UNIT = "Trường THCS Hòa Bình"
YEAR = 2024
ROOT = Path(__file__).resolve().parents[1]


# -- Vietnamese order ----------------------------------------------------------------------------------------

def test_vietnamese_letters_sort_in_alphabet_order_not_code_point_order() -> None:
    words = ["Yến", "Đức", "Ánh", "Ân", "Ăn", "An", "Dũng", "Ơn", "Ông", "Uyên", "Ưng", "Ế", "Em", "Hà", "Hạnh"]
    assert sorted(words, key=vietnamese_key) == ["An", "Ánh", "Ăn", "Ân", "Dũng", "Đức", "Em", "Ế", "Hà", "Hạnh",
                                                 "Ông", "Ơn", "Uyên", "Ưng", "Yến"]
    # Python's own order puts every accented capital after 'Z': the reason this function exists.
    assert sorted(["Đức", "Yến"]) == ["Yến", "Đức"]


def test_tones_only_break_ties_in_dictionary_order() -> None:
    # ngang, huyền, hỏi, ngã, sắc, nặng
    assert sorted(["ma", "mạ", "má", "mã", "mả", "mà"], key=vietnamese_key) == ["ma", "mà", "mả", "mã", "má", "mạ"]
    # A letter difference later in the word outranks a tone earlier: tones are compared after all letters.
    assert sorted(["Hàm", "Han"], key=vietnamese_key) == ["Hàm", "Han"]
    assert sorted(["An", "An Bình", "Anh"], key=vietnamese_key) == ["An", "An Bình", "Anh"]
    # Decomposed (NFD) input sorts like its composed form.
    assert vietnamese_key("Nguyễn")[:2] == vietnamese_key(unicodedata.normalize("NFD", "Nguyễn"))[:2]


def test_people_sort_by_given_name_then_family_and_middle_names() -> None:
    names = ["Trần Văn Bình", "Nguyễn Thị An", "Lê Văn Bình", "Đỗ Thị Ánh", "Bùi Minh Đức", "Phạm Thu Dung",
             "Vũ Yến"]
    assert sorted(names, key=name_sort_key) == ["Nguyễn Thị An", "Đỗ Thị Ánh", "Lê Văn Bình", "Trần Văn Bình",
                                                "Phạm Thu Dung", "Bùi Minh Đức", "Vũ Yến"]


def test_dates_follow_decree_30_leading_zeros() -> None:
    import datetime as dt

    from formsvc.render.context import place_date

    assert place_date("Dương Kinh", dt.date(2024, 2, 5), 2024) == "Dương Kinh, ngày 05 tháng 02 năm 2024"
    assert place_date("Dương Kinh", dt.date(2024, 3, 9), 2024) == "Dương Kinh, ngày 09 tháng 3 năm 2024"
    assert place_date("Dương Kinh", dt.date(2024, 12, 20), 2024) == "Dương Kinh, ngày 20 tháng 12 năm 2024"
    assert place_date(None, None, 2024) == "……………, ngày …… tháng …… năm 2024"


# -- planning (pure) -----------------------------------------------------------------------------------------

def _rows(data: UnitYear) -> list[ExportRow]:
    import datetime as dt

    out = []
    for n, spec in enumerate(data.specs):
        rec = record_of(spec, data.unit, data.year)
        out.append(ExportRow(record=rec, id=f"r{n:04d}", unit=data.unit, approved=spec.approved,
                             updated_at=dt.datetime(2024, 12, 1, tzinfo=dt.UTC)))
    return out


def test_a_person_stored_twice_is_an_error_naming_both_records() -> None:
    data = unit_year(UNIT, YEAR)
    rows = _rows(data)
    dup_ids = [r.id for r in rows if r.record.subject.id == data.duplicate_id]
    with pytest.raises(DuplicateRecordError) as exc:
        plan_dossier(rows, unit=UNIT, year=YEAR)
    err = exc.value
    assert err.code == "dossier_duplicate_person" and err.http_status == 409
    dup_name = data.by_kind()["duplicate"][0].full_name
    assert dup_name in err.message and all(i in err.message for i in dup_ids)
    assert "đã duyệt" in err.message and "chưa duyệt" in err.message
    assert {r["record_id"] for r in err.detail["duplicates"][0]} == set(dup_ids)


def test_many_duplicates_keep_the_message_bounded_and_list_all_in_detail() -> None:
    data = unit_year(UNIT, YEAR, n=30)
    rows = [r for r in _rows(data) if r.record.subject.id != data.duplicate_id]
    copies = [ExportRow(record=r.record, id=f"{r.id}b", unit=UNIT, approved=False, updated_at=r.updated_at)
              for r in rows[:15]]
    with pytest.raises(DuplicateRecordError) as exc:
        plan_dossier([*rows, *copies], unit=UNIT, year=YEAR)
    assert "Và 5 người khác" in exc.value.message and len(exc.value.message) < 3000
    assert len(exc.value.detail["duplicates"]) == 15


def test_same_person_without_an_id_is_matched_by_name_and_birth_year_but_namesakes_are_not() -> None:
    data = unit_year(UNIT, YEAR, n=6)
    rows = [r for r in _rows(data) if r.record.subject.id != data.duplicate_id]
    first = rows[0]
    twin = ExportRow(record=first.record.model_copy(update={"subject": first.record.subject.model_copy(
        update={"id": None, "full_name": first.record.subject.full_name.upper()})}), id="rnoid", unit=UNIT,
        approved=False, updated_at=first.updated_at)
    with pytest.raises(DuplicateRecordError, match="rnoid"):
        plan_dossier([*rows, twin], unit=UNIT, year=YEAR)
    namesake = ExportRow(record=first.record.model_copy(update={"subject": first.record.subject.model_copy(
        update={"id": "nv-other"})}), id="rother", unit=UNIT, approved=True, updated_at=first.updated_at)
    plan = plan_dossier([*rows, namesake], unit=UNIT, year=YEAR)
    assert sum(p.full_name == first.record.subject.full_name for p in plan.reviewed) == 2


def test_plan_puts_approved_in_minutes_recognised_in_decision_and_the_rest_on_the_cover() -> None:
    data = unit_year(UNIT, YEAR)
    rows = _rows(data)
    dup_rows = [r for r in rows if r.record.subject.id == data.duplicate_id]
    dropped = next(r for r in dup_rows if not r.approved)
    other_unit = ExportRow(record=record_of(data.specs[0], "Trường khác", YEAR), id="rx", unit="Trường khác",
                           approved=True, updated_at=rows[0].updated_at)
    plan = plan_dossier([*rows, other_unit], unit=UNIT, year=YEAR, exclude=[dropped.id])
    kinds = data.by_kind()
    names = {k: {s.full_name for s in v} for k, v in kinds.items()}
    assert {p.full_name for p in plan.recognised} == names["recognised"] | names["duplicate"]
    assert {p.full_name for p in plan.reviewed} == names["recognised"] | names["not_recognised"] | names["duplicate"]
    assert {p.full_name for p in plan.pending} == names["pending"]
    assert [p.record_id for p in plan.excluded] == [dropped.id]
    assert len(plan.reviewed) + len(plan.pending) + len(plan.excluded) == 40
    # Every approved person who is not proposed has a Vietnamese reason from the validation.
    for p in plan.reviewed:
        assert bool(p.reasons) != p.recognised
        assert all("điểm" in r for r in p.reasons)
    assert [p.full_name for p in plan.recognised] == sorted((p.full_name for p in plan.recognised),
                                                            key=name_sort_key)
    # Another criteria set asked for: nobody is used, everybody is on the cover under that heading.
    other = plan_dossier(rows, unit=UNIT, year=YEAR, criteria_set="cdht-324-pl1", exclude=[dropped.id])
    assert other.reviewed == [] and other.pending == [] and len(other.other_set) == 39
    share = cdht_recognised_share(plan)
    assert (share.recognised, share.members) == (len(plan.recognised), 39)
    assert cdht_recognised_share(plan, members=50).text() == f"CDHT: {len(plan.recognised)}/50 " \
                                                             f"({len(plan.recognised) * 2}%)"


# -- stored records, the command and the documents ------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, UnitYear, dict[str, list[str]]]]:
    root = tmp_path_factory.mktemp("dossier-store")
    with migrated_store(root):
        data = unit_year(UNIT, YEAR)
        ids = store_unit_year(data)
        try:
            yield root, data, ids
        finally:
            get_converter().close()


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORMSVC_DATA_DIR": str(root), "PYTHONPATH": str(ROOT)}
    env.pop("FORMSVC_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "formsvc.cli", "dossier", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def _pdf_text(path: Path) -> str:
    with pdfplumber.open(path) as doc:
        return unicodedata.normalize("NFC", "\n".join(p.extract_text() or "" for p in doc.pages))


def _present(name: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


@pytest.fixture(scope="module")
def dossier_dir(store: tuple[Path, UnitYear, dict[str, list[str]]],
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, data, ids = store
    out = tmp_path_factory.mktemp("dossier-out")
    dup_pending = ids[data.duplicate_id][1]  # the second, not approved, record of the person stored twice
    done = _cli(root, "--unit", UNIT, "--year", str(YEAR), "--out", str(out), "--exclude", dup_pending,
                "--staff", "45", "--zip")
    assert done.returncode == 0, done.stderr
    assert "chưa duyệt: 6 người" in done.stdout
    return out


def test_the_command_refuses_a_person_stored_twice_naming_both(store: tuple[Path, UnitYear, dict[str, list[str]]],
                                                              tmp_path: Path) -> None:
    root, data, ids = store
    done = _cli(root, "--unit", UNIT, "--year", str(YEAR), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "dossier_duplicate_person" in done.stderr
    assert all(i in done.stderr for i in ids[data.duplicate_id])
    assert not (tmp_path / "out").exists()
    bad = _cli(root, "--unit", UNIT, "--year", str(YEAR), "--out", str(tmp_path / "out"), "--date", "20/12/2024")
    assert bad.returncode == 2 and "bad_date" in bad.stderr


def test_the_command_dates_and_places_the_documents_when_asked(
        store: tuple[Path, UnitYear, dict[str, list[str]]], tmp_path: Path) -> None:
    root, data, ids = store
    done = _cli(root, "--unit", UNIT, "--year", str(YEAR), "--out", str(tmp_path), "--exclude",
                ids[data.duplicate_id][1], "--date", "2024-12-20", "--place", "Dương Kinh")
    assert done.returncode == 0, done.stderr
    for stem in ("00-bia-ho-so", "02-quyet-dinh-cong-nhan", "03-bao-cao-ket-qua"):
        assert "Dương Kinh, ngày 20 tháng 12 năm 2024" in _pdf_text(tmp_path / f"{stem}.pdf"), stem


def test_dossier_has_every_document_as_docx_and_pdf(dossier_dir: Path) -> None:
    stems = ["00-bia-ho-so", "01-bien-ban-hop-xet", "02-quyet-dinh-cong-nhan", "03-bao-cao-ket-qua",
             "04-bao-cao-tien-do-dang-ky", "05-dvht-tu-danh-gia"]
    for stem in stems:
        assert (dossier_dir / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        Document(str(dossier_dir / f"{stem}.docx"))  # opens: an editable Word file
    with zipfile.ZipFile(dossier_dir / "dossier.zip") as zf:
        assert sorted(zf.namelist()) == sorted([f"{s}.{e}" for s in stems for e in ("docx", "pdf")]
                                               + ["dossier.json"])


def test_decision_lists_exactly_the_recognised_people_numbered_in_vietnamese_order(
        dossier_dir: Path, store: tuple[Path, UnitYear, dict[str, list[str]]]) -> None:
    _, data, _ = store
    kinds = data.by_kind()
    recognised = [s.full_name for s in kinds["recognised"]] + [kinds["duplicate"][0].full_name]
    others = [s.full_name for k in ("not_recognised", "pending") for s in kinds[k]]
    text = _pdf_text(dossier_dir / "02-quyet-dinh-cong-nhan.pdf")
    assert [n for n in recognised if not _present(n, text)] == []
    assert [n for n in others if _present(n, text)] == []
    assert f"Công nhận {len(recognised)} cá nhân" in text and "Nơi nhận:" in text
    assert "ngày …… tháng …… năm 2024" in text
    listed = re.findall(r"^(\d+) (.+?) (\d{4}) ", text.split("DANH SÁCH CÁ NHÂN")[1], re.M)
    assert [int(n) for n, _, _ in listed] == list(range(1, len(recognised) + 1))
    assert [name for _, name, _ in listed] == sorted(recognised, key=name_sort_key)
    # Totals with a decimal comma, as on the approved records.
    assert re.search(r"\d+,5\b", text)


def test_minutes_review_every_approved_person_with_totals_and_reasons(
        dossier_dir: Path, store: tuple[Path, UnitYear, dict[str, list[str]]]) -> None:
    _, data, _ = store
    kinds = data.by_kind()
    text = _pdf_text(dossier_dir / "01-bien-ban-hop-xet.pdf")
    for spec in kinds["recognised"] + kinds["not_recognised"]:
        assert _present(spec.full_name, text), spec.full_name
    for spec in kinds["pending"]:
        assert not _present(spec.full_name, text), spec.full_name
    # Why not proposed, in Vietnamese, for each approved person not recognised.
    reasons = text.split("Những người không được đề nghị")[1]
    for spec in kinds["not_recognised"]:
        assert _present(spec.full_name, reasons)
    assert "chưa đạt mức 80 điểm" in reasons and "dưới mức tối thiểu 5 điểm" in reasons
    # Blank lines for the meeting's facts, to be written in by hand.
    assert "Thời gian: ……" in text and "có mặt ………… / …………" in text and "Kết quả biểu quyết: …………" in text


def test_cover_sheet_lists_exactly_the_records_left_out(dossier_dir: Path,
                                                       store: tuple[Path, UnitYear, dict[str, list[str]]]) -> None:
    _, data, ids = store
    kinds = data.by_kind()
    text = _pdf_text(dossier_dir / "00-bia-ho-so.pdf")
    assert "Chưa duyệt: 6 người" in text
    for spec in kinds["pending"]:
        assert _present(spec.full_name, text)
        assert ids[spec.subject_id][0] in text.replace("\n", "")
    for spec in kinds["recognised"] + kinds["not_recognised"]:
        assert not _present(spec.full_name, text), spec.full_name
    assert "Loại khỏi hồ sơ theo yêu cầu: 1 bản ghi" in text and ids[data.duplicate_id][1] in text
    manifest = json.loads((dossier_dir / "dossier.json").read_text(encoding="utf-8"))
    assert len(manifest["pending"]) == 6 and len(manifest["reviewed"]) == 33


def test_reports_and_dvht_self_assessment_carry_numbers_from_the_records(dossier_dir: Path) -> None:
    report = _pdf_text(dossier_dir / "03-bao-cao-ket-qua.pdf")
    # staff 45, 39 self-assessed (33 approved + 6 not), 27 recognised = 60 % of staff
    assert re.search(r"45\s+…+\s+39\s+27\s+60%", report), report
    assert "6 bản tự đánh giá chưa duyệt" in " ".join(report.split())
    progress = _pdf_text(dossier_dir / "04-bao-cao-tien-do-dang-ky.pdf")
    assert "86,7%" in progress  # 39 / 45
    dvht = Document(str(dossier_dir / "05-dvht-tu-danh-gia.docx"))
    cells = [c.text for t in dvht.tables for row in t.rows for c in row.cells]
    assert "CDHT: 27/45 (60%)" in cells


@pytest.mark.parametrize("kind", ["noise", "phone"])
def test_minutes_draft_printed_scanned_and_read_back_cross_checks_clean(
        kind: str, dossier_dir: Path, store: tuple[Path, UnitYear, dict[str, list[str]]], tmp_path: Path) -> None:
    """`store` keeps the database the cross-check reads (the same records the dossier came from)."""
    from formsvc.extract.pipeline import extract_files

    pages = rasterise((dossier_dir / "01-bien-ban-hop-xet.pdf").read_bytes(), 200)
    scan = save_scan(degrade(pages, kind, 14), tmp_path / "bien-ban.tif")
    result = extract_files([scan])
    [minutes] = [d for d in result.documents if d.form == "cdht-minutes"]
    assert minutes.extra["layout"] == "formsvc" and minutes.year == YEAR
    read = minutes.extra["minutes"]["candidates"]
    manifest = json.loads((dossier_dir / "dossier.json").read_text(encoding="utf-8"))
    assert len(read) == len(manifest["reviewed"])
    with session_scope() as s:
        sheets = stored_sheets(s, UNIT, {YEAR})
    reasons = [r for r in check_minutes(minutes, sheets) if r.severity != "info"]
    assert reasons == [], [r.message for r in reasons]
    right = sum(c["full_name"] == p["full_name"] and c["agreed_total"] == p["agreed_total"]
                for c, p in zip(read, manifest["reviewed"], strict=True))
    print(f"{kind}: {right}/{len(read)} candidates read exactly")
    assert right >= 0.9 * len(read)

