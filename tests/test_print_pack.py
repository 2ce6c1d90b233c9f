"""Print packs from rosters: one pre-filled form per good row, duplex-safe, bad rows listed."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from formsvc.criteria import resolve_group
from formsvc.errors import InputError
from formsvc.payload import PagePayload, is_second, name_check, year_check
from formsvc.render.converter import get_converter
from formsvc.render.pack import print_pack
from formsvc.render.roster import read_roster
from tests.render_helpers import page_texts, qr_texts, raster_pages

pytestmark = pytest.mark.slow  # packs printed through LibreOffice

SAMPLE = Path(__file__).parents[1] / "fixtures" / "rosters" / "sample.csv"


@pytest.fixture(scope="module", autouse=True)
def _close_converter():  # type: ignore[no-untyped-def]
    yield
    get_converter().close()


def test_roster_reads_vietnamese_headers_and_lists_bad_rows() -> None:
    roster = read_roster(SAMPLE)
    assert [p.full_name for p in roster.people] == ["Nguyễn Thị Hương", "Trần Văn Bình", "Phạm Văn Đức"]
    assert [p.group for p in roster.people] == ["official", "official", "farmer"]
    assert [(e.row, e.message) for e in roster.errors] == [
        (4, "Dòng 4: thiếu họ và tên."),
        (5, "Dòng 5: năm sinh «19x0» không hợp lệ."),
        (7, "Dòng 7: đối tượng «Hưu trí» không thuộc nhóm nào."),  # "Học sinh" is group 4 now
    ]


def test_pack_prints_good_rows_each_starting_on_an_odd_page(tmp_path: Path) -> None:
    out = tmp_path / "pack.pdf"
    seen: list[tuple[int, int]] = []
    report = print_pack("cdht-self-assessment", SAMPLE, out, 2024, lambda d, t: seen.append((d, t)))
    assert report.forms == 3 and [e.row for e in report.errors] == [4, 5, 7]
    assert seen[-1] == (3, 3)
    pdf = out.read_bytes()
    texts = page_texts(pdf)
    images = raster_pages(pdf, 120)
    payloads = [PagePayload.decode(qr_texts(img)[0]) if qr_texts(img) else None for img in images]
    starts = [i for i, p in enumerate(payloads) if p is not None and p.page == 1]
    assert len(starts) == 3 and all(i % 2 == 0 for i in starts)  # 0-based even = odd page number
    assert [payloads[i].subject_id for i in starts] == ["nv-001", "nv-002", "nv-005"]  # type: ignore[union-attr]
    assert "Họ và tên: Nguyễn Thị Hương" in texts[starts[0]]
    assert "Họ và tên: Phạm Văn Đức" in texts[starts[2]]
    # The farmer gets the farmers' criteria set, printed and in the QR.
    assert payloads[starts[2]].criteria_set == "cdht-324-g1-farmers"  # type: ignore[union-attr]
    assert "Nông dân, lao động nông thôn" in texts[starts[2]]
    assert len({payloads[i].doc for i in starts}) == 3  # type: ignore[union-attr]
    # The first code carries the checks of the printed name, birth year and group (the second code does not): read back
    # without the roster, they are confirmed by them.
    for i, person in zip(starts, read_roster(SAMPLE).people, strict=True):
        codes = {is_second(t): PagePayload.decode(t) for t in qr_texts(images[i])}
        assert person.birth_year is not None
        group = resolve_group(person.group)
        assert group is not None
        assert (codes[False].name_check, codes[False].year_check, codes[False].group_check) == (
            name_check(person.full_name), year_check(person.birth_year), group.number)
        assert (codes[True].name_check, codes[True].year_check, codes[True].group_check) == (None, None, None)


def test_pack_pads_odd_length_forms_for_duplex(tmp_path: Path) -> None:
    out = tmp_path / "ev.pdf"
    report = print_pack("cdht-evidence-checklist", SAMPLE, out, 2024)
    reader = PdfReader(io.BytesIO(out.read_bytes()))
    assert report.forms == 3 and len(reader.pages) % 2 == 0
    texts = page_texts(out.read_bytes())
    per_form = len(reader.pages) // 3
    assert per_form % 2 == 0
    for n, name in enumerate(["Nguyễn Thị Hương", "Trần Văn Bình", "Phạm Văn Đức"]):
        assert name in texts[n * per_form]


def test_xlsx_roster_with_english_headers(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["full_name", "birth_year", "unit", "group", "id"])
    ws.append(["Hoàng Thị Yến", 1990, "Trường TH A", "official", "a-1"])
    ws.append(["Vũ Văn Khánh", "1983", "Trường TH A", "3", "a-2"])
    ws.append([None, None, None, None, None])
    wb.save(path)
    out = tmp_path / "x.pdf"
    report = print_pack("cdht-self-assessment", path, out, 2025)
    assert report.forms == 2 and report.errors == []
    assert "Vũ Văn Khánh" in "\n".join(page_texts(out.read_bytes()))


@pytest.mark.parametrize(("content", "code"), [
    ("Tên đầy đủ;Năm\nA;1990\n", "roster_no_name"),
    ("Họ và tên,Năm sinh\n,1990\n,abc\n", "roster_no_valid_rows"),
])
def test_unusable_rosters_are_clear_errors(tmp_path: Path, content: str, code: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        print_pack("cdht-self-assessment", path, tmp_path / "o.pdf", 2024)
    assert exc.value.code == code
    assert not (tmp_path / "o.pdf").exists()


def test_renamed_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_text("<html>not a workbook</html>", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_roster(path)
    assert exc.value.code == "roster_unreadable"


def test_cli_print_pack_reports_bad_rows(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("formsvc")
    out = tmp_path / "cli.pdf"
    run = subprocess.run([str(exe), "print-pack", "cdht-self-assessment", "--roster", str(SAMPLE), "--year", "2024",
                          "--out", str(out)], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert "Đã in 3 phiếu" in run.stdout and "Dòng 5: năm sinh" in run.stderr
    assert out.read_bytes().startswith(b"%PDF")
