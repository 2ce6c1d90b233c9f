"""Read a roster (CSV or XLSX) with English or Vietnamese headers into people; bad rows are listed, not fatal."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import openpyxl

from formsvc.criteria import resolve_group
from formsvc.errors import InputError, LimitError
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


def _rows(path: Path, limit: int) -> list[list[Any]]:
    """At most `limit` rows (header included): a sheet claiming a million rows is never read past the limit."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                return [list(r) for r in islice(wb.worksheets[0].iter_rows(values_only=True), limit)]
            finally:
                wb.close()
        if suffix in (".csv", ".txt"):
            text = path.read_bytes().decode("utf-8-sig")
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
            return [list(r) for r in islice(csv.reader(io.StringIO(text), dialect), limit)]
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError) as exc:
        raise InputError(f"Không đọc được danh sách {path.name}: {exc}", code="roster_unreadable") from exc
    except Exception as exc:  # openpyxl raises many types for a corrupt or renamed file
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
    most = get_settings().roster_max_rows
    rows = _rows(path, most + 2)  # the header, the allowed rows, and one more to tell that there are more
    if not rows:
        raise InputError(f"Danh sách {path.name} trống.", code="roster_empty")
    if len(rows) > most + 1:
        raise LimitError(f"Danh sách {path.name} có hơn {most} dòng; hãy chia thành nhiều tệp.",
                         code="roster_too_large", detail={"max_rows": most})
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
