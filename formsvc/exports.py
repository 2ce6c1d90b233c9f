"""Export stored records as a spreadsheet (CSV or XLSX) for units that keep their books in Excel.

Both formats carry the same table: one row per record, one column per indicator seen in any row.
Every text cell is neutralised against formula injection: names, unit names and even indicator
keys come from scanned or typed forms, and a cell such as '=HYPERLINK(...)' must stay text when
the file is opened in Excel or LibreOffice, or when a user re-saves the XLSX as CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from formsvc.criteria import resolve_group
from formsvc.records import STATUS_LABELS, Record

__all__ = ["STATUS_LABELS", "ExportRow", "export_table", "records_to_csv", "records_to_xlsx"]

Cell = str | int | float | None

# OWASP's list of characters that make a spreadsheet treat a cell as a formula (tab and CR included:
# Excel strips them and then evaluates what follows).
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


# Vietnam has had no daylight saving since 1975, so a fixed offset is exact and needs no tz database.
VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

_HEAD = ["Mã bản ghi", "Đơn vị", "Năm", "Biểu mẫu", "Bộ tiêu chí", "Họ và tên", "Năm sinh", "Nhóm"]
_TAIL = ["Tổng tự chấm", "Tổng tính lại", "Công nhận", "Xếp loại", "Trạng thái", "Đã duyệt", "Cập nhật lúc"]
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class ExportRow:
    """A stored record with the store's own metadata (the record alone does not know them)."""

    record: Record
    id: str
    unit: str
    approved: bool
    updated_at: dt.datetime


def neutralise(text: str) -> str:
    """Prefix a quote so a spreadsheet shows the text instead of evaluating it."""
    return "'" + text if text.startswith(_FORMULA_TRIGGERS) else text


def _natural_key(key: str) -> list[str | int]:
    # re.split with a capture group alternates text and digits, starting with text, so two keys
    # always compare str with str and int with int: ct2 < ct10.
    return [int(part) if n % 2 else part for n, part in enumerate(_DIGITS.split(key))]


def _number(value: float | str | None) -> Cell:
    """Scores as numbers (7.0 -> 7); a score the form had as text stays text, neutralised."""
    if value is None:
        return None
    if isinstance(value, str):
        return neutralise(value)
    if not math.isfinite(value):
        return str(value)
    return int(value) if value.is_integer() else value


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Có" if value else "Không")


def _group_label(group: str | None) -> str | None:
    resolved = resolve_group(group)
    return resolved.short_label if resolved else group


def local_time(value: dt.datetime) -> dt.datetime:
    """Naive Vietnam time: spreadsheets cannot hold an offset; naive input is taken as already local."""
    if value.tzinfo is None:
        return value.replace(microsecond=0)
    return value.astimezone(VIETNAM_TZ).replace(tzinfo=None, microsecond=0)


def _row_cells(row: ExportRow, score_keys: Sequence[str]) -> list[Cell | dt.datetime]:
    rec = row.record
    result = rec.result
    cells: list[Cell | dt.datetime] = [
        row.id, row.unit, rec.year, rec.form, rec.criteria_set, rec.subject.full_name, rec.subject.birth_year,
        _group_label(rec.subject.group),
    ]
    cells += [_number(rec.scores.get(key)) for key in score_keys]
    cells += [
        _number(rec.total_declared),
        _number(result.total) if result else None,
        _yes_no(result.recognised) if result else "",
        result.band_label if result else None,
        STATUS_LABELS[rec.status] if rec.status else "",
        _yes_no(row.approved),
        local_time(row.updated_at),
    ]
    return [neutralise(c) if isinstance(c, str) else c for c in cells]


def export_table(rows: Iterable[ExportRow]) -> tuple[list[str], list[list[Cell | dt.datetime]]]:
    """Headers and rows shared by both formats; `updated_at` stays a datetime for XLSX to format."""
    materialised = list(rows)
    keys = sorted({key for row in materialised for key in row.record.scores}, key=_natural_key)
    headers = [neutralise(h) for h in [*_HEAD, *keys, *_TAIL]]
    return headers, [_row_cells(row, keys) for row in materialised]


def records_to_csv(records: Iterable[ExportRow]) -> bytes:
    """UTF-8 with BOM (so Excel picks the encoding), comma separated, CRLF line ends.

    Times are Vietnam local time as 'YYYY-MM-DD HH:MM:SS', which Excel reads as a date.
    """
    headers, rows = export_table(records)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(headers)
    for cells in rows:
        writer.writerow([
            c.isoformat(sep=" ") if isinstance(c, dt.datetime) else ("" if c is None else c) for c in cells
        ])
    return buf.getvalue().encode("utf-8-sig")


def records_to_xlsx(records: Iterable[ExportRow]) -> bytes:
    """One sheet, bold frozen header with a filter; text cells are forced to string type."""
    headers, rows = export_table(records)
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new Workbook always has one sheet
    ws.title = "Bản ghi"
    widths = [len(h) for h in headers]
    table: list[Sequence[Cell | dt.datetime]] = [headers, *rows]
    for r, cells in enumerate(table, start=1):
        for c, value in enumerate(cells, start=1):
            cell = ws.cell(row=r, column=c)
            if isinstance(value, str):
                # openpyxl raises on control characters Excel cannot store; a stray one from OCR
                # must not abort the whole export. Removing one can uncover a leading '=', hence
                # neutralising again.
                text = neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
                cell.value = text
                # Neutralising already keeps '=' out of first place; the explicit type is the second
                # lock, so no later change to neutralise() can let openpyxl write a formula.
                cell.data_type = "s"
                widths[c - 1] = max(widths[c - 1], len(text))
            else:
                cell.value = value
                if isinstance(value, dt.datetime):
                    cell.number_format = "dd/mm/yyyy hh:mm:ss"
                    widths[c - 1] = max(widths[c - 1], 19)
            if r == 1:
                cell.font = Font(bold=True)
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = min(max(width + 2, 6), 50)
    ws.freeze_panes = "A2"
    if rows:
        ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
