"""Read a roster (CSV or XLSX) with English or Vietnamese headers into people; bad rows are listed, not fatal."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
from defusedxml import DefusedXmlException
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from formsvc.criteria import resolve_group
from formsvc.errors import ConfigError, FormsvcError, InputError, LimitError
from formsvc.settings import get_settings
from formsvc.text import fold, nfc

# Accent-folded header spellings -> field.
HEADERS: dict[str, str] = {}
for _field, _names in {
    "full_name": ["ho va ten", "ho ten", "full name", "full_name", "name", "ten"],
    "birth_year": ["nam sinh", "birth year", "birth_year", "year of birth", "ngay sinh", "ngay thang nam sinh"],
    "unit": ["don vi", "unit", "chuc vu, don vi", "to chuyen mon", "co quan", "noi cong tac"],
    "group": ["doi tuong", "group", "nhom doi tuong", "nhom"],
    "id": ["ma", "ma so", "id", "ma nhan vien", "subject id", "subject_id", "ma dinh danh"],
    "criteria_set": ["bo tieu chi", "criteria set", "criteria_set"],
}.items():
    for _n in _names:
        HEADERS[_n] = _field
_ID = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class Person:
    row: int
    full_name: str
    birth_year: int | None
    unit: str | None
    group: str | None
    id: str | None
    criteria_set: str | None


@dataclass
class RowError:
    row: int
    message: str


@dataclass
class Roster:
    people: list[Person] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _too_many_rows(name: str, limit: int) -> InputError:
    shown = f"{limit:,}".replace(",", ".")
    return InputError(f"Danh sách {name} có hơn {shown} dòng, vượt giới hạn {shown} dòng mỗi danh sách.",
                      code="roster_too_many_rows", hint="Chia danh sách thành nhiều tệp nhỏ hơn rồi gửi từng tệp.")


def _blank(row: Sequence[Any]) -> bool:
    return all(v is None or str(v).strip() == "" for v in row)


def _bounded(rows: Iterator[Sequence[Any]], name: str, max_rows: int, max_cols: int) -> list[list[Any]]:
    """The header and at most `max_rows` data rows, each cut to `max_cols` cells, read lazily: a file's claims
    about its own size (an XLSX dimension, a row numbered a billion) never size anything here. Blank rows are
    kept (row numbers in messages stay right) but only written ones count toward the limit, as long as blank
    ones do not outnumber them (a sheet whose next row is numbered 1,048,576 is not read up to there)."""
    out: list[list[Any]] = []
    written = 0
    for position, row in enumerate(rows, start=1):
        if position > 2 * max_rows + 1:
            raise _too_many_rows(name, max_rows)
        if _blank(row):
            out.append([])
            continue
        written += 1
        if written > max_rows + 1:  # + the header
            raise _too_many_rows(name, max_rows)
        out.append(list(row[:max_cols]))
    while out and not out[-1]:
        out.pop()
    return out


def _xlsx_rows(path: Path, max_rows: int, max_cols: int, max_unpacked: int) -> list[list[Any]]:
    if not openpyxl.DEFUSEDXML:
        # Without defusedxml openpyxl parses sheets with the stdlib's expat, which expands entities (a nested
        # chain of them overflows its stack and kills the process).
        raise ConfigError("Thiếu thư viện defusedxml: không đọc bảng tính Excel khi chưa có nó.",
                          code="defusedxml_missing")
    with zipfile.ZipFile(path) as zf:
        # Declared sizes are an upper bound: zipfile stops (and fails the CRC) at a member's declared size.
        if sum(info.file_size for info in zf.infolist()) > max_unpacked:
            raise LimitError(f"Bảng tính {path.name} khi giải nén lớn hơn {max_unpacked // (1024 * 1024)} MB.",
                             code="roster_too_large")
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        if isinstance(ws, ReadOnlyWorksheet):
            ws.reset_dimensions()  # the sheet's own <dimension> is a claim, not a fact: rows are not padded to it
        return _bounded(ws.iter_rows(max_col=max_cols, values_only=True), path.name, max_rows, max_cols)
    finally:
        wb.close()


def _caused_by_defusedxml(exc: BaseException | None) -> bool:
    """openpyxl wraps what the XML parser raised in a ValueError of its own."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, DefusedXmlException):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _rows(path: Path) -> list[list[Any]]:
    s = get_settings()
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            return _xlsx_rows(path, s.max_roster_rows, s.max_roster_columns, s.max_roster_unpacked_bytes)
        if suffix in (".csv", ".txt"):
            text = path.read_bytes().decode("utf-8-sig")
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
            return _bounded(csv.reader(io.StringIO(text), dialect), path.name, s.max_roster_rows,
                            s.max_roster_columns)
    except FormsvcError:
        raise
    except Exception as exc:
        if _caused_by_defusedxml(exc):
            raise InputError(f"Bảng tính {path.name} chứa khai báo thực thể XML (DOCTYPE/ENTITY); bảng tính do "
                             "Excel hay LibreOffice lưu không có phần này, nên tệp bị từ chối.",
                             code="roster_unsafe_xml",
                             hint="Mở tệp bằng Excel hoặc LibreOffice, lưu lại thành .xlsx rồi gửi lại.") from exc
        if isinstance(exc, UnicodeDecodeError):
            raise InputError(f"Danh sách {path.name} không phải văn bản UTF-8.", code="roster_unreadable",
                             hint="Trong Excel chọn «Lưu thành» → «CSV UTF-8».") from exc
        if isinstance(exc, OSError | csv.Error | ValueError | KeyError) and suffix not in (".xlsx", ".xlsm"):
            # Never the exception's text: it can name the server's temporary copy of the file.
            raise InputError(f"Không đọc được danh sách {path.name}.", code="roster_unreadable") from exc
        # openpyxl raises many types for a corrupt or renamed file
        raise InputError(f"Tệp {path.name} không phải bảng tính Excel hợp lệ.", code="roster_unreadable") from exc
    raise InputError(f"Danh sách phải là tệp .csv hoặc .xlsx (nhận được '{path.suffix}').", code="roster_format")


def _year(value: Any) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, dt.date):
        return value.year
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    match = re.fullmatch(r"(\d{4})|\d{1,2}[/.-]\d{1,2}[/.-](\d{4})", text)
    if not match:
        raise ValueError(text)
    return int(match.group(1) or match.group(2))


def read_roster(path: Path, *, today: dt.date | None = None) -> Roster:
    rows = _rows(path)
    if not rows:
        raise InputError(f"Danh sách {path.name} trống.", code="roster_empty")
    header = [HEADERS.get(fold(str(h or "")).rstrip(":")) for h in rows[0]]
    if "full_name" not in header:
        raise InputError(f"Danh sách {path.name} thiếu cột «Họ và tên» (hoặc «full_name»).", code="roster_no_name")
    this_year = (today or dt.date.today()).year
    roster = Roster()
    for n, raw in enumerate(rows[1:], start=2):
        values = {key: raw[i] if i < len(raw) else None for i, key in enumerate(header) if key}
        if all(v is None or str(v).strip() == "" for v in raw):
            continue
        name = nfc(str(values.get("full_name") or ""))
        problems: list[str] = []
        if not name:
            problems.append("thiếu họ và tên")
        year: int | None = None
        try:
            year = _year(values.get("birth_year"))
            if year is not None and not 1900 <= year <= this_year - 10:
                problems.append(f"năm sinh {year} không hợp lệ")
        except ValueError:
            problems.append(f"năm sinh «{values.get('birth_year')}» không hợp lệ")
        group_raw = values.get("group")
        group = resolve_group(group_raw) if group_raw not in (None, "") else None
        if group_raw not in (None, "") and group is None:
            problems.append(f"đối tượng «{group_raw}» không thuộc nhóm nào")
        sid = str(values.get("id")).strip() if values.get("id") not in (None, "") else None
        if sid is not None and (_ID.search(sid) or len(sid) > 64):
            problems.append(f"mã «{sid}» chỉ được gồm chữ không dấu, số, '.', '_' hoặc '-'")
        if problems:
            roster.errors.append(RowError(n, f"Dòng {n}: " + "; ".join(problems) + "."))
            continue
        unit = values.get("unit")
        cset = values.get("criteria_set")
        roster.people.append(Person(row=n, full_name=name, birth_year=year,
                                    unit=nfc(str(unit)) if unit not in (None, "") else None,
                                    group=group.code if group else None, id=sid,
                                    criteria_set=str(cset).strip() if cset not in (None, "") else None))
    return roster
