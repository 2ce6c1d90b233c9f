"""Read the criteria table of an official appendix (Word, digital PDF or scanned PDF) into a criteria set.

Units receive the official text as files; typing it into YAML by hand is where mistakes come from. Three
readers turn a file into plain tables of cell texts, where a position covered by a merged cell holds None:
python-docx for Word, pdfplumber for PDFs with a text layer, and for scanned pages the same ruled-table reader
and OCR that read returned forms (`extract.table_grid`, `extract.table_read`). One parser then finds the header
(TT / tiêu chí / chỉ tiêu / điểm tối đa in any order, accent-folded, fuzzy so that OCR slips still match) and
walks the rows: criteria either in their own (usually vertically merged) column or as heading rows numbered
"Tiêu chí 1", "I." or "1." over indicators numbered "a)", "1." or "Chỉ tiêu 6".

What the file cannot say (ids, score steps, minimums, the outcome rule, audience, years) comes from a base set:
the one named, or else the loaded set whose wording is closest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from rapidfuzz import fuzz

from formsvc.criteria.loader import CriteriaRegistry
from formsvc.criteria.model import CriteriaSet
from formsvc.errors import CriteriaImportError
from formsvc.text import fold, nfc

Reader = Literal["docx", "pdf", "ocr"]
Role = Literal["number", "criterion", "indicator", "content", "points"]
RawTable = list[list[str | None]]  # rows of cell texts; None where a merged cell covers the position

MAX_TABLE_ROWS = 400
MAX_CELL_CHARS = 2000
MAX_PAGES = 40
MAX_DOCX_INFLATED = 200 * 1024 * 1024
MAX_DOCX_ENTRIES = 2000
HEADER_SEARCH_ROWS = 6
HEADER_MIN_SCORE = 80.0  # rapidfuzz ratio 0..100; "Diem toi da" read as "Diern toi da" still scores ~91
OCR_DPI = 200
BASE_MIN_SIMILARITY = 60.0
BASE_MIN_MARGIN = 3.0

# Accent-folded header words per column role; the best fuzzy match above HEADER_MIN_SCORE wins.
HEADER_KEYS: dict[Role, tuple[str, ...]] = {
    "number": ("tt", "stt", "so tt", "so thu tu", "thu tu"),
    "criterion": ("tieu chi", "ten tieu chi", "cac tieu chi"),
    "indicator": ("chi tieu", "noi dung chi tieu", "cac chi tieu", "ten chi tieu"),
    "content": ("noi dung", "noi dung tieu chi", "tieu chi, chi tieu", "noi dung tieu chi, chi tieu",
                "tieu chi va chi tieu", "noi dung tieu chi va chi tieu", "noi dung danh gia"),
    "points": ("diem toi da", "diem", "so diem", "thang diem", "diem chuan", "muc diem", "so diem toi da"),
}
# Vietnamese legal numbering of points: a, b, c, d, đ, e, g, h, i, k, … (no f, j, w, z).
LETTERS = "abcdđeghiklmnopqrstuvxy"

_ROMAN = r"[ivxlc]+"
_LABEL_TC = re.compile(rf"^(?:tieu chi|khoan)\s*(\d+|{_ROMAN})\b\s*[.:)\-–]?\s*")
_LABEL_CT = re.compile(r"^chi tieu\s*(\d+)\b\s*[.:)\-–]?\s*")
_LABEL_ROMAN = re.compile(rf"^({_ROMAN})\s*[.):]\s*|^({_ROMAN})$")
_LABEL_NUM = re.compile(r"^(\d{1,3})\s*[.):]?(?:\s+|$)")
_LABEL_LETTER = re.compile(r"^([a-zđ])\s*\)\s*|^([a-zđ])$")
# OCR of "III. " as "HI. ", "Il. " or "II " (dot lost) at the start of a heading row.
_GARBLED_ROMAN = re.compile(r"^[IVXLHJl1|!]{1,5}(?:\s*[.):]\s*|\s+)(?=[^\W\d_])")
_POINTS = re.compile(r"^(\d{1,3}(?:[.,]\d{1,2})?)\s*(?:diem)?$")
_OCR_DIGITS = str.maketrans({"o": "0", "O": "0", "l": "1", "I": "1", "|": "1"})


@dataclass(frozen=True)
class Label:
    kind: Literal["tc", "ct", "roman", "num", "letter", "none"]
    value: int  # the number the label stands for (letters and roman numerals as 1, 2, …)
    length: int  # characters of the cell text the label takes (to cut it from the wording)


@dataclass
class ImportedIndicator:
    row: int  # 1-based row of the file's table (header included), for messages
    number: int
    title: str
    max_points: float


@dataclass
class ImportedCriterion:
    row: int
    number: int
    title: str
    stated_points: float | None = None
    indicators: list[ImportedIndicator] = field(default_factory=list)


@dataclass
class ImportedTable:
    file_name: str
    sha256: str
    reader: Reader
    criteria: list[ImportedCriterion]
    stated_total: float | None = None


@dataclass
class ImportResult:
    table: ImportedTable
    data: dict[str, Any]  # the criteria set as written to YAML (the loader's schema, fully expanded)
    cset: CriteriaSet
    base: CriteriaSet | None
    base_guessed: bool = False


def _fail(message: str, code: str, **detail: Any) -> CriteriaImportError:
    return CriteriaImportError(message, code=code, detail=detail or None)


def _snippet(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    return nfc(text)[:MAX_CELL_CHARS]


def fold_same_length(text: str) -> str:
    """Accent-fold character by character, keeping positions, so a label found in the folded text can be cut
    from the original wording at the same index."""
    out = []
    for ch in text:
        f = fold(ch)
        out.append(f if len(f) == 1 else ch.lower() if len(ch.lower()) == 1 else ch)
    return "".join(out)


# -- readers: file -> tables of cell texts --------------------------------------------------------------------

def _check_zip(path: Path) -> None:
    """A .docx is a zip: refuse one that would inflate past MAX_DOCX_INFLATED before python-docx parses it."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise _fail(f"Tệp {path.name} không phải tệp Word (.docx) đọc được.", "criteria_import_unreadable",
                    reason=type(exc).__name__) from exc
    if len(infos) > MAX_DOCX_ENTRIES or sum(i.file_size for i in infos) > MAX_DOCX_INFLATED:
        raise _fail(f"Tệp {path.name} quá lớn khi giải nén; phụ lục tiêu chí không cần đến như vậy.",
                    "criteria_import_too_large")


def _docx_tables(path: Path) -> Iterator[RawTable]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _check_zip(path)
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise _fail(f"Tệp {path.name} không phải tệp Word (.docx) đọc được.", "criteria_import_unreadable",
                    reason=type(exc).__name__) from exc
    for table in document.tables:
        rows: RawTable = []
        above: list[Any] = []
        for r, row in enumerate(table.rows):
            if r >= MAX_TABLE_ROWS:
                break
            cells = list(row.cells)
            out: list[str | None] = []
            for c, cell in enumerate(cells):
                # python-docx repeats a merged cell at every grid position it covers (gridSpan and vMerge).
                left = cells[c - 1]._tc if c > 0 else None
                up = above[c]._tc if c < len(above) else None
                out.append(None if cell._tc is left or cell._tc is up else _clean(cell.text))
            rows.append(out)
            above = cells
        yield rows


def _pdf_tables(path: Path) -> Iterator[tuple[RawTable, Reader]]:
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfplumber.utils.exceptions import PdfminerException

    from formsvc.extract.pages import Page, iter_pages
    from formsvc.settings import get_settings

    try:
        pdf = pdfplumber.open(str(path))
    except (PdfminerException, PDFSyntaxError, ValueError, OSError) as exc:
        raise _fail(f"Tệp {path.name} không phải tệp PDF đọc được (hỏng hoặc có mật khẩu).",
                    "criteria_import_unreadable", reason=type(exc).__name__) from exc
    scanned: list[int] = []
    with pdf:
        if len(pdf.pages) > MAX_PAGES:
            raise _fail(f"Tệp {path.name} có {len(pdf.pages)} trang; phụ lục tiêu chí chỉ được tối đa {MAX_PAGES}.",
                        "criteria_import_too_many_pages")
        for n, page in enumerate(pdf.pages, start=1):
            if len(page.chars) < 20:
                scanned.append(n)
                continue
            for table in page.extract_tables():
                yield [[_clean(c) for c in row] for row in table[:MAX_TABLE_ROWS]], "pdf"
    if not scanned:
        return
    # Pages without a text layer: the scanned-table reader and OCR used for returned forms.
    from formsvc.extract.table_grid import find_tables
    from formsvc.extract.table_read import read_tables

    s = get_settings()
    for scan in iter_pages(path, dpi=OCR_DPI, max_pages=MAX_PAGES, max_pixels=s.max_image_pixels):
        if not isinstance(scan, Page) or scan.number not in scanned:
            continue
        tables = find_tables(scan.image, scan.dpi)
        for read in read_tables(tables, scan.number, scan.dpi):
            grid: RawTable = [[None] * read.n_cols for _ in range(min(read.n_rows, MAX_TABLE_ROWS))]
            for cell in read.cells:
                if cell.row < len(grid):
                    # Numeric columns (by header) carry the digit reader's vote, steadier than text OCR on "05".
                    text = f"{cell.number:g}" if cell.number is not None and cell.row > 0 else cell.text
                    grid[cell.row][cell.col] = "" if cell.blank else _clean(text)
            yield grid, "ocr"


def read_file_tables(path: Path) -> tuple[list[RawTable], Reader]:
    head = path.read_bytes()[:8]
    if head.startswith(b"%PDF"):
        found = list(_pdf_tables(path))
        reader: Reader = "ocr" if any(r == "ocr" for _, r in found) else "pdf"
        return [t for t, _ in found], reader
    if head.startswith(b"PK\x03\x04"):
        return list(_docx_tables(path)), "docx"
    raise _fail(f"Tệp {path.name} không phải Word (.docx) hay PDF.", "criteria_import_file_type")


# -- parser: tables -> criteria and indicators ----------------------------------------------------------------

def _header_key(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^0-9a-z, ]", " ", fold(text))).strip()


def _roles(row: list[str | None]) -> dict[Role, int]:
    """Column of each role in a header row; each role and each column used once, best scores first."""
    scored: list[tuple[float, Role, int]] = []
    for col, text in enumerate(row):
        if not text:
            continue
        key = _header_key(text)
        for role, keys in HEADER_KEYS.items():
            score = max(fuzz.ratio(key, k) for k in keys)
            if score >= HEADER_MIN_SCORE:
                scored.append((score, role, col))
    out: dict[Role, int] = {}
    used: set[int] = set()
    for _score, role, col in sorted(scored, key=lambda t: -t[0]):
        if role not in out and col not in used:
            out[role] = col
            used.add(col)
    if "content" in out and ("indicator" in out or "criterion" in out):
        del out["content"]  # "nội dung" beside a "chỉ tiêu" column is a description, not the wording
    return out


def _usable(roles: dict[Role, int]) -> bool:
    return "points" in roles and any(r in roles for r in ("indicator", "content"))


def _roman(text: str) -> int:
    values = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
    total = 0
    for a, b in zip(text, text[1:] + " ", strict=True):
        v = values[a]
        total += -v if b in values and values[b] > v else v
    return total


def label_of(text: str) -> Label:
    """The numbering a cell starts with: "Tiêu chí 2", "Chỉ tiêu 6", "II.", "1.", "a)" (or nothing)."""
    folded = fold_same_length(text)
    if m := _LABEL_TC.match(folded):
        g = m.group(1)
        return Label("tc", int(g) if g.isdigit() else _roman(g), m.end())
    if m := _LABEL_CT.match(folded):
        return Label("ct", int(m.group(1)), m.end())
    if (m := _LABEL_ROMAN.match(folded)) and text[: len(m.group(1) or m.group(2))].isupper():
        return Label("roman", _roman(m.group(1) or m.group(2)), m.end())
    if m := _LABEL_NUM.match(folded):
        return Label("num", int(m.group(1)), m.end())
    if m := _LABEL_LETTER.match(folded):
        # From the original text: folding turns "đ)" (the fifth point) into "d)" (the fourth).
        letter = text[m.start(1) if m.group(1) else m.start(2)].lower()
        return Label("letter", LETTERS.index(letter) + 1 if letter in LETTERS else 0, m.end())
    return Label("none", 0, 0)


def _points(text: str, row: int, what: str, reader: Reader) -> float:
    raw = text.translate(_OCR_DIGITS) if reader == "ocr" else text
    m = _POINTS.match(fold(raw))
    if not m:
        raise _fail(f"Dòng {row} của bảng ({what}): điểm tối đa «{_snippet(text, 20)}» không phải là một số.",
                    "criteria_import_bad_points", row=row, value=text)
    value = float(m.group(1).replace(",", "."))
    if value <= 0:
        raise _fail(f"Dòng {row} của bảng ({what}): điểm tối đa phải lớn hơn 0.", "criteria_import_bad_points",
                    row=row, value=text)
    return value


@dataclass
class _Row:
    n: int  # 1-based table row
    number: str
    criterion: str | None  # None: covered by the merged cell above (same criterion goes on)
    text: str
    points: str
    spans: bool = False  # a merged cell covers part of the row (criterion headings span the number column)


def _cell(cells: list[str | None], roles: dict[Role, int], role: Role) -> str | None:
    """The row's text in `role`'s column: None where a merged cell covers it, "" when the table has no such column."""
    col = roles.get(role)
    return cells[col] if col is not None and col < len(cells) else ""


def _merge_tables(tables: list[RawTable], file_name: str) -> tuple[dict[Role, int], list[_Row]]:
    """The criteria table (the first with a recognisable header) and its continuations on later pages."""
    roles: dict[Role, int] | None = None
    width = 0
    rows: list[_Row] = []
    offset = 0
    for table in tables:
        header_at = next((i for i, row in enumerate(table[:HEADER_SEARCH_ROWS]) if _usable(_roles(row))), None)
        if roles is None:
            if header_at is None:
                continue
            roles, width = _roles(table[header_at]), len(table[header_at])
            body, start = table[header_at + 1:], header_at + 2
        elif table and len(table[0]) == width:
            # A table that goes on over a page break, its header printed again or not.
            skip = header_at + 1 if header_at is not None else 0
            body, start = table[skip:], offset + skip + 1
        else:
            break
        text_role: Role = "indicator" if "indicator" in roles else "content"
        for i, cells in enumerate(body):
            rows.append(_Row(n=start + i, number=_cell(cells, roles, "number") or "",
                             criterion=_cell(cells, roles, "criterion"), text=_cell(cells, roles, text_role) or "",
                             points=_cell(cells, roles, "points") or "",
                             spans=any(c is None for k, c in enumerate(cells) if k != roles.get("criterion"))))
        offset = rows[-1].n if rows else offset
    if roles is None:
        raise _fail(f"Không tìm thấy bảng tiêu chí trong tệp {file_name}: cần một bảng có cột «Tiêu chí» hoặc "
                    "«Chỉ tiêu» (nội dung) và cột «Điểm tối đa».", "criteria_import_no_table")
    return roles, rows


def _is_total(r: _Row) -> bool:
    return any(fold(t).startswith(("tong cong", "tong diem", "tong so diem", "cong"))
               or fold(t) == "tong" for t in (r.number, r.text, r.criterion or ""))


def _label(number: str, text: str) -> tuple[Label, str]:
    """The row's numbering (from the TT column, else from the start of its text) and its wording without it."""
    in_text = label_of(text)
    wording = text[in_text.length:].strip() if in_text.kind != "none" else text
    if number:
        return label_of(number), wording
    return in_text, wording


def parse_tables(tables: list[RawTable], *, file_name: str, sha256: str, reader: Reader) -> ImportedTable:
    roles, rows = _merge_tables(tables, file_name)
    out = ImportedTable(file_name=file_name, sha256=sha256, reader=reader, criteria=[])
    rows = [r for r in rows if any((r.number, r.criterion, r.text, r.points))]
    if "criterion" in roles:
        _walk_columns(rows, out, reader)
    else:
        _walk_headings(rows, out, reader)
    if not out.criteria:
        raise _fail(f"Bảng tiêu chí trong tệp {file_name} không có dòng nào.", "criteria_import_empty")
    for c in out.criteria:
        if not c.indicators:
            raise _fail(f"Dòng {c.row} của bảng (tiêu chí «{_snippet(c.title)}»): tiêu chí không có chỉ tiêu nào.",
                        "criteria_import_empty_criterion", row=c.row)
        total = sum(i.max_points for i in c.indicators)
        if c.stated_points is not None and abs(total - c.stated_points) > 1e-9:
            raise _fail(f"Dòng {c.row} của bảng (tiêu chí «{_snippet(c.title)}»): ghi tối đa {c.stated_points:g} "
                        f"điểm nhưng các chỉ tiêu cộng lại được {total:g}.", "criteria_import_points_mismatch",
                        row=c.row)
    total = sum(i.max_points for c in out.criteria for i in c.indicators)
    if out.stated_total is not None and abs(total - out.stated_total) > 1e-9:
        raise _fail(f"Dòng tổng của bảng ghi {out.stated_total:g} điểm nhưng các chỉ tiêu cộng lại được {total:g}.",
                    "criteria_import_points_mismatch")
    return out


def _add_indicator(out: ImportedTable, r: _Row, label: Label, wording: str, reader: Reader) -> None:
    if not out.criteria:
        raise _fail(f"Dòng {r.n} của bảng («{_snippet(wording)}»): chỉ tiêu đứng trước mọi tiêu chí.",
                    "criteria_import_orphan_indicator", row=r.n)
    crit = out.criteria[-1]
    number = sum(len(c.indicators) for c in out.criteria) + 1
    local = len(crit.indicators) + 1
    what = f"chỉ tiêu «{_snippet(wording)}»"
    if not wording:
        raise _fail(f"Dòng {r.n} của bảng: chỉ tiêu không có nội dung.", "criteria_import_no_wording", row=r.n)
    expected = {"ct": (number,), "num": (number, local), "letter": (local,)}.get(label.kind)
    # OCR misreads short labels ("2." as "3,"); on a scan the order of the rows is the numbering.
    if expected is not None and label.value not in expected and reader != "ocr":
        raise _fail(f"Dòng {r.n} của bảng ({what}): số thứ tự «{_snippet(r.number or wording, 12)}» không đúng "
                    f"thứ tự (mong đợi chỉ tiêu thứ {number}).", "criteria_import_numbering", row=r.n)
    if not r.points:
        raise _fail(f"Dòng {r.n} của bảng ({what}): thiếu điểm tối đa.", "criteria_import_bad_points", row=r.n)
    crit.indicators.append(ImportedIndicator(r.n, number, wording, _points(r.points, r.n, what, reader)))


def _add_criterion(out: ImportedTable, r: _Row, label: Label, wording: str, reader: Reader) -> None:
    number = len(out.criteria) + 1
    if label.kind in ("tc", "roman", "num") and label.value != number and reader != "ocr":
        raise _fail(f"Dòng {r.n} của bảng (tiêu chí «{_snippet(wording)}»): số thứ tự không đúng thứ tự "
                    f"(mong đợi tiêu chí {number}).", "criteria_import_numbering", row=r.n)
    if not wording:
        raise _fail(f"Dòng {r.n} của bảng: tiêu chí không có tên.", "criteria_import_no_wording", row=r.n)
    out.criteria.append(ImportedCriterion(r.n, number, wording))


def _walk_columns(rows: list[_Row], out: ImportedTable, reader: Reader) -> None:
    """Criteria in their own column (merged down over their indicators, or repeated on every row)."""
    for r in rows:
        if _is_total(r):
            out.stated_total = _points(r.points, r.n, "dòng tổng", reader) if r.points else None
            break
        if r.criterion:
            label = label_of(r.criterion)
            wording = r.criterion[label.length:].strip() if label.kind != "none" else r.criterion
            if not out.criteria or wording != out.criteria[-1].title:
                _add_criterion(out, r, label if label.kind != "none" else Label("none", 0, 0), wording, reader)
                if not r.text:  # a heading row of its own: its points are the criterion's maximum
                    if r.points:
                        out.criteria[-1].stated_points = _points(r.points, r.n, "tiêu chí", reader)
                    continue
        if r.text:
            label, wording = _label(r.number, r.text)
            _add_indicator(out, r, label, wording, reader)


def _walk_headings(rows: list[_Row], out: ImportedTable, reader: Reader) -> None:
    """One wording column: criteria are heading rows ("Tiêu chí 1", "I.", or "1." over "a)" indicators)."""
    end = next((k for k, r in enumerate(rows) if _is_total(r)), len(rows))  # rows after the total are notes
    if end < len(rows) and rows[end].points:
        out.stated_total = _points(rows[end].points, rows[end].n, "dòng tổng", reader)
    labelled = [(r, *_label(r.number, r.text)) for r in rows[:end]]
    kinds = {lab.kind for _, lab, _ in labelled}
    heading_kinds = ({"tc", "roman"} if kinds & {"tc", "roman"} else {"num"} if {"letter", "num"} <= kinds
                     else set())
    # Heading rows usually span the number column. When every labelled heading does and some rows do not, the
    # span decides: a scan's "III." read as "HI." is still a heading.
    by_label = [r for r, lab, _ in labelled if lab.kind in heading_kinds]
    spanning = [r for r, _, _ in labelled if r.spans]
    by_span = 0 < len(spanning) < len(labelled) and all(r.spans for r in by_label)
    if not heading_kinds and not by_span:
        first = next((r for r in rows if r.text), None)
        where = f"dòng {first.n}" if first else "bảng"
        raise _fail(f"Không phân biệt được dòng tiêu chí với dòng chỉ tiêu ({where}): dòng tiêu chí cần ghi "
                    "«Tiêu chí 1», «I.» hoặc «1.» (khi chỉ tiêu ghi «a)»), hoặc bảng cần một cột «Tiêu chí» riêng.",
                    "criteria_import_no_structure")
    for r, label, wording in labelled:
        if r.spans if by_span else label.kind in heading_kinds:
            if label.kind == "none" and (m := _GARBLED_ROMAN.match(wording)):
                wording = wording[m.end():]
            _add_criterion(out, r, label, wording, reader)
            if r.points:
                out.criteria[-1].stated_points = _points(r.points, r.n, "tiêu chí", reader)
        else:
            _add_indicator(out, r, label, wording, reader)


# -- building the set -----------------------------------------------------------------------------------------

def similarity(table: ImportedTable, cset: CriteriaSet) -> float:
    """How alike the file's criterion and indicator wording is to a set's, 0..100 (position by position)."""
    mine = [fold(c.title) for c in table.criteria] + [fold(i.title) for c in table.criteria for i in c.indicators]
    theirs = [fold(c.title) for c in cset.criteria] + [fold(i.title) for i in cset.indicators]
    if not mine:
        return 0.0
    pairs = zip(mine, theirs, strict=False)
    return sum(fuzz.token_set_ratio(a, b) for a, b in pairs) / max(len(mine), len(theirs))


def guess_base(table: ImportedTable, registry: CriteriaRegistry) -> CriteriaSet:
    """The loaded set whose wording is clearly the closest; near ties (sets composed from one another) are not
    guessed between."""
    scored = sorted(((similarity(table, s), s.id) for s in registry), reverse=True)
    ambiguous = len(scored) > 1 and scored[0][0] - scored[1][0] < BASE_MIN_MARGIN
    if not scored or scored[0][0] < BASE_MIN_SIMILARITY or ambiguous:
        near = ", ".join(i for _, i in scored[:3])
        raise _fail(f"Không xác định được tệp này là văn bản chính thức của bộ tiêu chí nào (gần nhất: {near}); "
                    "hãy chọn bộ tiêu chí gốc (--base).", "criteria_import_base_unknown",
                    candidates=[{"id": i, "score": round(sc)} for sc, i in scored[:3]])
    return registry.get(scored[0][1])


def build_set(table: ImportedTable, base: CriteriaSet, *, version: int,
              imported_at: dt.datetime | None = None) -> tuple[dict[str, Any], CriteriaSet]:
    """The criteria set: wording and points from the file, everything else from `base`; indicators keep the base's
    ids position by position so records keyed by indicator id stay comparable."""
    base_inds = base.indicators
    criteria = []
    for c in table.criteria:
        base_crit = base.criteria[c.number - 1] if c.number <= len(base.criteria) else None
        inds = []
        for i in c.indicators:
            like = base_inds[min(i.number, len(base_inds)) - 1]
            same_slot = i.number <= len(base_inds)
            ind: dict[str, Any] = {
                "id": like.id if same_slot else f"ct{i.number}", "number": i.number, "title": i.title,
                "max_points": i.max_points, "step": like.step, "evidence_required": like.evidence_required,
                "verified": True, "origin": base.id,
            }
            if like.min_points is not None:
                ind["min_points"] = min(like.min_points, i.max_points)
            if same_slot and like.evidence_hint:
                ind["evidence_hint"] = like.evidence_hint
            inds.append(ind)
        criteria.append({"id": base_crit.id if base_crit else f"tc{c.number}", "number": c.number, "title": c.title,
                         "indicators": inds})
    when = imported_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    source = base.source.model_dump(mode="json", exclude_none=True) | {"sha256": table.sha256}
    data: dict[str, Any] = {
        "id": base.id, "title": base.title, "kind": base.kind, "version": version, "source": source,
        "verified": True,
        "note": f"Nội dung và điểm nhập từ tệp chính thức «{table.file_name}» (SHA-256 {table.sha256[:12]}…).",
        "audience_groups": list(base.audience_groups),
        "years": {"from": base.years.first, "to": base.years.last},
        "total_max": sum(i.max_points for c in table.criteria for i in c.indicators),
        "criteria": criteria,
        "outcome": base.outcome.model_dump(mode="json"),
        "imported_from": {"file_name": table.file_name, "sha256": table.sha256, "reader": table.reader,
                          "imported_at": when.isoformat(), "base": f"{base.id}@{base.version}"},
    }
    try:
        cset = CriteriaSet.model_validate(data | {"file": f"import:{table.sha256}"})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise _fail(f"Bảng trong tệp {table.file_name} không tạo được bộ tiêu chí hợp lệ theo «{base.id}»: {problems}",
                    "criteria_import_invalid_set") from exc
    return data, cset


def import_file(path: Path, registry: CriteriaRegistry, *, base_id: str | None = None,
                file_name: str | None = None, version: int | None = None) -> ImportResult:
    """Read `path` and build the next version of its criteria set (not stored: see `criteria.store`)."""
    from formsvc.settings import get_settings

    name = file_name or path.name
    size = path.stat().st_size
    limit = get_settings().max_upload_bytes
    if size > limit:
        raise _fail(f"Tệp {name} lớn hơn giới hạn {limit // (1024 * 1024)} MB.", "criteria_import_too_large")
    if size == 0:
        raise _fail(f"Tệp {name} rỗng.", "criteria_import_unreadable")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    tables, reader = read_file_tables(path)
    table = parse_tables(tables, file_name=name, sha256=sha, reader=reader)
    base = registry.get(base_id) if base_id else guess_base(table, registry)
    if version is None:
        version = next_version(registry, base.id)
    data, cset = build_set(table, base, version=version)
    return ImportResult(table=table, data=data, cset=cset, base=base, base_guessed=base_id is None)


def next_version(registry: CriteriaRegistry, set_id: str) -> int:
    versions = getattr(registry, "versions_of", None)
    known = versions(set_id) if versions else [registry.get(set_id).version]
    return max(known) + 1

