"""CSV / XLSX export of stored records: layout, values, and that no cell can run as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import openpyxl
import pytest

from formsvc.criteria import default_registry
from formsvc.exports import ExportRow, export_table, records_to_csv, records_to_xlsx
from formsvc.records import FieldProvenance, Record
from formsvc.validation import validate_with_registry
from tests.factories import dvht_record, full_record

REG = default_registry()
PL4 = REG.get("cdht-324-pl4")
TT22 = REG.get("dvht-tt22-2020")
UPDATED = dt.datetime(2024, 11, 20, 8, 30, 5, 123456, tzinfo=dt.UTC)
UPDATED_LOCAL = "2024-11-20 15:30:05"  # UTC+7, no microseconds
HYPERLINK = '=HYPERLINK("http://x")'
SCORE_COLS = [f"ct{n}" for n in range(1, 11)]
HEADERS = ["Mã bản ghi", "Đơn vị", "Năm", "Biểu mẫu", "Bộ tiêu chí", "Họ và tên", "Năm sinh", "Nhóm", *SCORE_COLS,
           "Tổng tự chấm", "Tổng tính lại", "Công nhận", "Xếp loại", "Trạng thái", "Đã duyệt", "Cập nhật lúc"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def checked(record: Record) -> Record:
    return validate_with_registry(record, REG, review_confidence=0.8)


def row(record: Record, rid: str, *, unit: str = "Trường MN Tam Hưng A", approved: bool = False) -> ExportRow:
    return ExportRow(record=record, id=rid, unit=unit, approved=approved, updated_at=UPDATED)


def sample_rows() -> list[ExportRow]:
    recognised = checked(full_record(PL4, 8.5, total_declared=85))
    # 7 on every indicator: 70 points, valid but not recognised; a hostile name from a scanned form.
    low = checked(full_record(PL4, 7, subject={"full_name": HYPERLINK, "birth_year": 1990,
                                               "unit": "Trường MN Tam Hưng A", "group": "official"}))
    review = checked(full_record(PL4, 9, fields=[FieldProvenance(name="scores.ct1", value=9, confidence=0.5,
                                                                 source="ocr")]))
    rejected = checked(full_record(PL4, 8, scores={**{i.id: 8 for i in PL4.indicators}, "ct3": "abc", "ct4": -1}))
    ranked = checked(dvht_record(TT22, 75, subject={"full_name": "Trường MN Tam Hưng A",
                                                     "unit": "Phòng GD&ĐT Dương Kinh"}))
    return [row(recognised, "r1", approved=True), row(low, "r2"), row(review, "r3"), row(rejected, "r4"),
            row(ranked, "r5", unit="+Phòng GD&ĐT")]


def parse_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def by_header(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_csv_layout_bom_crlf_and_headers() -> None:
    data = records_to_csv(sample_rows())
    rows = parse_csv(data)
    assert rows[0] == HEADERS
    assert len(rows) == 6
    # Every line ends CRLF and no bare LF exists (no cell here contains a newline).
    assert data.count(b"\r\n") == 6
    assert data.replace(b"\r\n", b"").count(b"\n") == 0


def test_csv_values() -> None:
    out = by_header(parse_csv(records_to_csv(sample_rows())))
    r1, r2, r3, r4, r5 = out
    assert r1["Mã bản ghi"] == "r1"
    assert r1["Đơn vị"] == "Trường MN Tam Hưng A"
    assert r1["Năm"] == "2024"
    assert r1["Biểu mẫu"] == "cdht-self-assessment"
    assert r1["Bộ tiêu chí"] == "cdht-324-pl4"
    assert r1["Họ và tên"] == "Nguyễn Thị Hương"
    assert r1["Năm sinh"] == "1985"
    assert r1["Nhóm"] == "Cán bộ, công chức, viên chức, người lao động"
    assert [r1[c] for c in SCORE_COLS] == ["8.5"] * 10
    assert (r1["Tổng tự chấm"], r1["Tổng tính lại"], r1["Công nhận"]) == ("85", "85", "Có")
    assert (r1["Trạng thái"], r1["Đã duyệt"], r1["Cập nhật lúc"]) == ("Hợp lệ", "Có", UPDATED_LOCAL)
    # 7.0 is written as 7; no declared total -> empty cell.
    assert [r2[c] for c in SCORE_COLS] == ["7"] * 10
    assert (r2["Tổng tự chấm"], r2["Tổng tính lại"], r2["Công nhận"]) == ("", "70", "Không")
    assert (r2["Trạng thái"], r2["Đã duyệt"]) == ("Hợp lệ", "Không")
    assert r3["Trạng thái"] == "Cần kiểm tra"
    # A score written as text stays text; a negative number is a number, not neutralised.
    assert (r4["ct3"], r4["ct4"], r4["Trạng thái"]) == ("abc", "-1", "Không hợp lệ")
    # ĐVHT: no recognition, a band label, no audience group.
    assert (r5["Công nhận"], r5["Xếp loại"], r5["Tổng tính lại"], r5["Nhóm"]) == ("", "Khá", "75", "")


def test_csv_neutralises_formula_text() -> None:
    rows = parse_csv(records_to_csv(sample_rows()))
    out = by_header(rows)
    assert out[1]["Họ và tên"] == "'" + HYPERLINK
    assert out[4]["Đơn vị"] == "'+Phòng GD&ĐT"
    numeric_ok = {"-1"}
    for r in rows:
        for cell in r:
            assert cell in numeric_ok or not cell.startswith(TRIGGERS), cell


@pytest.mark.parametrize("name", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1"])
def test_every_trigger_is_neutralised(name: str) -> None:
    # model_copy skips validation: Record would collapse the leading tab/CR this case needs.
    rec = full_record(PL4, 8)
    rec = rec.model_copy(update={"subject": rec.subject.model_copy(update={"full_name": name})})
    headers, table = export_table([row(rec, "x")])
    assert table[0][headers.index("Họ và tên")] == "'" + name
    out = by_header(parse_csv(records_to_csv([row(rec, "x")])))
    assert out[0]["Họ và tên"] == "'" + name


def test_score_columns_union_in_natural_order_and_hostile_keys() -> None:
    a = Record.model_validate({"form": "cdht-self-assessment", "criteria_set": "cdht-324-pl4", "year": 2024,
                               "subject": {"full_name": "A"}, "scores": {"ct10": 5, "ct2": 6}})
    b = Record.model_validate({"form": "cdht-self-assessment", "criteria_set": "cdht-324-pl4", "year": 2024,
                               "subject": {"full_name": "B"}, "scores": {"ct1": 7, "=cmd": 1}})
    rows = parse_csv(records_to_csv([row(a, "a"), row(b, "b")]))
    assert rows[0][8:12] == ["'=cmd", "ct1", "ct2", "ct10"]
    out = by_header(rows)
    assert [out[0][k] for k in ("ct1", "ct2", "ct10")] == ["", "6", "5"]
    assert [out[1][k] for k in ("ct1", "ct2", "ct10")] == ["7", "", ""]
    # Never validated: no result, no status.
    assert (out[0]["Tổng tính lại"], out[0]["Công nhận"], out[0]["Trạng thái"]) == ("", "", "")


def test_empty_export_is_header_only() -> None:
    rows = parse_csv(records_to_csv([]))
    assert rows == [[h for h in HEADERS if h not in SCORE_COLS]]
    ws = openpyxl.load_workbook(io.BytesIO(records_to_xlsx([]))).active
    assert ws is not None
    assert ws.max_row == 1


def test_naive_time_is_kept_as_local() -> None:
    rec = full_record(PL4, 8)
    naive = ExportRow(record=rec, id="n", unit="U", approved=False, updated_at=dt.datetime(2024, 1, 2, 3, 4, 5))
    assert by_header(parse_csv(records_to_csv([naive])))[0]["Cập nhật lúc"] == "2024-01-02 03:04:05"


def xlsx_rows(data: bytes) -> list[list[Any]]:
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws is not None
    for line in ws.iter_rows():
        for cell in line:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    return [[c.value for c in line] for line in ws.iter_rows()]


def test_xlsx_no_formulas_and_values_match_csv() -> None:
    rows = sample_rows()
    x = xlsx_rows(records_to_xlsx(rows))
    c = parse_csv(records_to_csv(rows))
    assert x[0] == HEADERS
    assert len(x) == len(c) == 6
    for xr, cr in zip(x[1:], c[1:], strict=True):
        as_text = ["" if v is None else (v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, dt.datetime) else str(v))
                   for v in xr]
        assert as_text == cr
    name = HEADERS.index("Họ và tên")
    assert x[2][name] == "'" + HYPERLINK


def test_xlsx_types() -> None:
    ws = openpyxl.load_workbook(io.BytesIO(records_to_xlsx(sample_rows()))).active
    assert ws is not None
    cols = {h: n + 1 for n, h in enumerate(HEADERS)}
    assert ws.cell(2, cols["ct1"]).value == 8.5
    assert ws.cell(3, cols["ct1"]).value == 7
    assert ws.cell(3, cols["ct1"]).data_type == "n"
    assert ws.cell(5, cols["ct4"]).value == -1
    assert ws.cell(5, cols["ct4"]).data_type == "n"
    assert ws.cell(2, cols["Năm"]).value == 2024
    assert ws.cell(2, cols["Cập nhật lúc"]).value == dt.datetime(2024, 11, 20, 15, 30, 5)
    assert ws.cell(3, cols["Họ và tên"]).data_type == "s"
    assert ws.cell(2, cols["Tổng tự chấm"]).value == 85
    assert ws.cell(3, cols["Tổng tự chấm"]).value is None
    assert ws.freeze_panes == "A2"


def test_xlsx_survives_control_characters() -> None:
    # A control character openpyxl refuses is dropped; what it hid ('=') is then neutralised.
    rec = full_record(PL4, 8)
    rec = rec.model_copy(update={"subject": rec.subject.model_copy(update={"full_name": "\x01=1+1"})})
    x = xlsx_rows(records_to_xlsx([row(rec, "c")]))
    assert x[1][HEADERS.index("Họ và tên")] == "'=1+1"
