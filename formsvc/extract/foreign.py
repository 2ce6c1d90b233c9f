"""Self-assessments NOT printed by formsvc: the national software's printout or a unit's own Word table.

Works from words with boxes (a PDF text layer or Tesseract), so typed PDFs and scans of them go the same way:
find the header of the score column ("Tự chấm", "Điểm tự đánh giá", …), match each row's text to an indicator of
every criteria set by accent-folded fuzzy matching, take the number in the score column. The criteria set is the
one whose indicator texts match best; the person's name, unit and year come from their labelled lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

from formsvc.criteria import CriteriaRegistry, CriteriaSet
from formsvc.extract.digits import allowed, lost_comma
from formsvc.extract.lines import Line, page_lines, table_rows
from formsvc.extract.parse import UNCHECKED, adds_up
from formsvc.extract.readers import document_reader
from formsvc.extract.table_read import CellRead, PageReading, TableRead
from formsvc.extract.types import PageText
from formsvc.forms import list_forms
from formsvc.records import FieldProvenance, Record
from formsvc.text import fold, name_letters, nfc

SCORE_HEADERS = ("tu cham", "diem tu danh gia", "tu danh gia", "ca nhan tu cham", "diem tu cham")
NUM = re.compile(r"^\d{1,3}(?:[.,]\d{1,2})?$")
YEAR = re.compile(r"\bnam (20\d{2})\b")
MATCH_MIN = 75
TEXT_HEADERS = ("noi dung", "chi tieu", "tieu chi")
NUMBER_HEADERS = ("stt", "tt")
# The column of maximum points ("Điểm tối đa", "Điểm chuẩn", "Thang điểm") is printed on every form: never scores.
MAX_HEADERS = ("toi da", "diem chuan", "thang diem", "khung diem")
# Read scores that all equal their indicators' maxima look like that column, whatever its header said.
MAXIMA_SUSPECT = 0.5


def _self_assessment_form(kind: str) -> str:
    """The registry's self-assessment form of a criteria kind (cdht / dvht): what a foreign sheet stands for."""
    return next(f.id for f in list_forms() if f.document == "self_assessment" and f.kind == kind)


def classify_page(page: PageText) -> Literal["self_assessment", "minutes", "unknown"]:
    head = fold(" ".join(line.text for line in page_lines(page)[:25]))
    if "bien ban" in head and ("hop" in head or "xet" in head):
        return "minutes"
    if "tu danh gia" in head or "tu cham" in head:
        return "self_assessment"
    return "unknown"


def _score_column(lines: list[Line]) -> tuple[float, float] | None:
    """x-span of the self-score column, from the table header ("STT … Điểm tự chấm"), wrapped or not."""
    for n, line in enumerate(lines):
        if not (line.key.startswith(("stt", "tt ")) or "noi dung" in line.key or "chi tieu" in line.key):
            continue
        header_words = [w for ln in lines[n:n + 3] for w in ln.words]
        anchors = [w for w in header_words if fold(w.text) == "cham"] or \
                  [w for w in header_words if fold(w.text) == "gia"]
        if not anchors:
            continue
        a = anchors[-1] if len(anchors) == 1 else anchors[0]
        near = [w for w in header_words if fold(w.text) in ("diem", "tu", "cham", "danh", "gia", "ca", "nhan")
                and abs((w.box[0] + w.box[2]) / 2 - (a.box[0] + a.box[2]) / 2) < (a.box[2] - a.box[0]) * 2.5]
        x0, x1 = min(w.box[0] for w in near), max(w.box[2] for w in near)
        pad = (x1 - x0) * 0.25 + 10
        return x0 - pad, x1 + pad
    return None


def _label_value(lines: list[Line], labels: tuple[str, ...]) -> tuple[str, Line] | None:
    for line in lines:
        for label in labels:
            if line.key.startswith(label):
                n = len(label.split())
                value = " ".join(w.text for w in line.words[n:]).lstrip(":").strip()
                return nfc(value.strip(" .…:")), line
    return None


def _best_set(rows: list[str], registry: CriteriaRegistry) -> tuple[CriteriaSet, dict[int, tuple[str, float]]]:
    """The criteria set whose indicator texts match the rows' texts best, and row index -> (indicator, ratio)."""
    best: tuple[float, CriteriaSet, dict[int, tuple[str, float]]] | None = None
    for cset in registry:
        matches: dict[int, tuple[str, float]] = {}
        for n, row in enumerate(rows):
            text = fold(row)
            scored = [(fuzz.token_set_ratio(fold(ind.title), text), ind.id) for ind in cset.indicators]
            ratio, ind_id = max(scored)
            if ratio >= MATCH_MIN:
                matches[n] = (ind_id, ratio)
        # Each indicator once: keep its best row.
        by_ind: dict[str, tuple[int, float]] = {}
        for n, (ind_id, ratio) in matches.items():
            if ind_id not in by_ind or ratio > by_ind[ind_id][1]:
                by_ind[ind_id] = (n, ratio)
        kept = {n: (i, r) for i, (n, r) in by_ind.items()}
        quality = sum(r for _, r in kept.values()) + (0.5 if cset.verified else 0)
        if best is None or quality > best[0]:
            best = (quality, cset, kept)
    assert best is not None
    return best[1], best[2]


@document_reader("self_assessment", "bản tự đánh giá")
def read_foreign_self_assessment(pages: list[PageText], registry: CriteriaRegistry) -> Record | None:
    lines = [line for p in pages for line in page_lines(p)]
    if any(p.source == "ocr" for p in pages):
        # A scan: only its ruled table is read cell by cell; the full-page OCR misses lone digits in cells.
        return _read_scanned(pages, lines, registry)
    column = _score_column(lines)
    if column is None:
        return None
    rows = table_rows(lines, stop=("tong",))
    cset, matches = _best_set([" ".join(w.text for w in row.words[1:]) for row in rows], registry)  # no row number
    if len(matches) < max(3, len(cset.indicators) // 2):
        return None
    fields: list[FieldProvenance] = []
    scores: dict[str, float | str | None] = {}
    for n, (ind_id, ratio) in matches.items():
        line = rows[n]
        nums = [w for w in line.words_in(*column) if NUM.match(w.text)]
        value: float | str | None = float(nums[0].text.replace(",", ".")) if nums else None
        conf = (ratio / 100) * (nums[0].confidence if nums else 0.5)
        scores[ind_id] = value
        fields.append(FieldProvenance(name=f"scores.{ind_id}", value=value, confidence=round(min(1.0, conf), 3),
                                      page=line.page, bbox=nums[0].box if nums else line.box,
                                      source="text_layer" if conf and nums and nums[0].confidence == 1 else "ocr"))
    total = None
    for line in lines:
        if line.key.startswith("tong") and "diem" in line.key:
            nums = [w for w in line.words_in(*column) if NUM.match(w.text)]
            if nums:
                total = float(nums[0].text.replace(",", "."))
                fields.append(FieldProvenance(name="total_declared", value=total, confidence=nums[0].confidence,
                                              page=line.page, bbox=nums[0].box, source="ocr"))
            break
    return _record(lines, cset, scores, total, fields)


def _doubt_maxima(cset: CriteriaSet, scores: dict[str, float | str | None],
                  fields: list[FieldProvenance]) -> list[FieldProvenance]:
    """Scores that all equal their indicators' maxima may be the printed maximum column read as scores: a person
    must confirm them, however sure the reading was."""
    read = {k: v for k, v in scores.items() if isinstance(v, float)}
    maxima = {i.id: i.max_points for i in cset.indicators}
    if len(read) < 3 or any(v != maxima.get(k) for k, v in read.items()):
        return fields
    return [f.model_copy(update={"confidence": min(f.confidence, MAXIMA_SUSPECT)})
            if f.name.startswith("scores.") else f for f in fields]


def _doubt_unadded(scores: dict[str, float | str | None], total: float | None,
                   fields: list[FieldProvenance]) -> list[FieldProvenance]:
    """A scanned sheet whose scores do not add up to its written total holds a misread, and nothing says which
    cell (the total itself may be it): none is trusted on its own reading (handwriting read at phone resolution
    made Tesseract's four readings agree on "5" for a written 9,5, at 0.95). Nor is any when no total was read,
    or a score is not a number: nothing checks them then. As on formsvc's own sheets (parse.doubt_unchecked and
    the blank-total rule)."""
    if adds_up(scores.values(), total):
        return fields
    return [f.model_copy(update={"confidence": min(f.confidence, UNCHECKED)})
            if f.name.startswith("scores.") or f.name == "total_declared" else f for f in fields]


def _record(lines: list[Line], cset: CriteriaSet, scores: dict[str, float | str | None], total: float | None,
            fields: list[FieldProvenance], *, scanned: bool = False) -> Record:
    """The record around the scores: person, unit, year from their labelled lines."""
    fields = _doubt_maxima(cset, scores, fields)
    if scanned:
        fields = _doubt_unadded(scores, total, fields)
    name = _label_value(lines, ("ho va ten", "ho ten"))
    unit = _label_value(lines, ("don vi", "co quan", "noi cong tac"))
    birth = _label_value(lines, ("nam sinh", "ngay sinh"))
    year_match = next((YEAR.search(line.key) for line in lines if YEAR.search(line.key)), None)
    full_name = name[0] if name else ""
    if name:
        confidence = name[1].confidence()
        if scanned:
            # OCR adds marks no Vietnamese name has; each one dropped makes the name less sure, never surer.
            full_name, dropped = name_letters(full_name)
            confidence *= 0.9 ** dropped
        fields.append(FieldProvenance(name="subject.full_name", value=full_name, confidence=round(confidence, 3),
                                      page=name[1].page, bbox=name[1].box, source="ocr"))
    birth_year = None
    if birth:
        m = re.search(r"(19|20)\d{2}", birth[0])
        birth_year = int(m.group(0)) if m else None
        if scanned:
            fields.append(FieldProvenance(name="subject.birth_year", value=birth_year,
                                          confidence=birth[1].confidence() if m else 0.0, page=birth[1].page,
                                          bbox=birth[1].box, source="ocr"))
    year = int(year_match.group(1)) if year_match else cset.years.last
    if not year_match:
        fields.append(FieldProvenance(name="year", value=year, confidence=0.0, source="ocr"))
    return Record(
        form=_self_assessment_form(cset.kind),
        criteria_set=cset.id, year=year,
        subject={"full_name": full_name, "birth_year": birth_year, "unit": unit[0] if unit else None,
                 "group": cset.sole_group},
        scores=scores, evidence={k: "(theo bản tự đánh giá)" for k, v in scores.items() if v},
        total_declared=total, fields=fields, extra={"layout": "foreign"},
    )


@dataclass
class _Row:
    """One indicator row of a scanned table: its text (wrapped over pages joined), number cell and score cell."""

    text: str
    number: CellRead | None
    score: CellRead | None
    page: int


def _columns(table: TableRead, previous: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
    """(number, text, score, n_cols) columns; a table continued on the next page without a header keeps them."""
    if not any(table.header):
        return previous if previous and previous[3] == table.n_cols else None
    scored = [(max(fuzz.partial_ratio(h, head) for h in SCORE_HEADERS), n) for n, head in enumerate(table.header)
              if head and not any(m in head for m in MAX_HEADERS)]
    if not scored:
        return None
    ratio, score_col = max(scored)
    if ratio < 80:
        return None
    number_col = table.column(*NUMBER_HEADERS)
    text_col = table.column(*TEXT_HEADERS)
    if text_col is None:
        # The indicator text is the column with the most words.
        words = [sum(len(c.text.split()) for c in table.cells if c.col == k) for k in range(table.n_cols)]
        text_col = max(range(table.n_cols), key=lambda k: words[k])
    return (0 if number_col is None else number_col), text_col, score_col, table.n_cols


def _scanned_rows(tables: list[TableRead]) -> tuple[list[_Row], CellRead | None, int]:
    """Indicator rows of every table (in page order), and the total's cell."""
    rows: list[_Row] = []
    total: tuple[CellRead | None, int] | None = None
    cols: tuple[int, int, int, int] | None = None
    for table in tables:
        found = _columns(table, cols)
        if found is None:
            continue
        has_header = found is not cols
        cols = found
        number_col, text_col, score_col, _ = cols
        for r in range(1 if has_header else 0, table.n_rows):
            text_cell = table.at(r, text_col)
            if text_cell is None or text_cell.row != r:
                continue  # a row merged into the one above
            number, score = table.at(r, number_col), table.at(r, score_col)
            if fold(text_cell.text).startswith("tong"):
                total = (score, table.page)
                continue
            numbered = number is not None and not number.blank and number is not text_cell
            if not numbered and (score is None or score.blank) and rows:
                # A row wrapped onto the next page (or an unnumbered line of the same row): same indicator.
                rows[-1].text += " " + text_cell.text
                continue
            rows.append(_Row(text_cell.text, number if number is not text_cell else None, score, table.page))
    return rows, (total[0] if total else None), (total[1] if total else 0)


def _score_field(name: str, cell: CellRead | None, page: int, match_conf: float, max_points: float,
                 step: float) -> tuple[float | None, FieldProvenance]:
    """A score cell's value and provenance: unsure when unread, blank or not a value the criteria allow."""
    if cell is None:
        return None, FieldProvenance(name=name, value=None, confidence=0.0, page=page, source="ocr")
    value, conf = cell.number, cell.number_confidence
    if cell.blank:
        value, conf = None, 0.97
    elif value is not None and not allowed(value, max_points, step):
        conf = min(conf, 0.3)
        # A dropped decimal comma ("75" where at most 10 is allowed) is offered, still for a human to confirm.
        if (comma := lost_comma(value, max_points, step)) is not None:
            value, conf = comma, min(conf, 0.5)
    conf = min(conf, match_conf)
    return value, FieldProvenance(name=name, value=value, confidence=round(conf, 3), page=page, bbox=cell.box,
                                  source=cell.number_source)


def _read_scanned(pages: list[PageText], lines: list[Line], registry: CriteriaRegistry) -> Record | None:
    tables = [t for p in pages if isinstance(p, PageReading) for t in p.table_reads]
    rows, total_cell, total_page = _scanned_rows(tables)
    if not rows:
        return None
    cset, matches = _best_set([r.text for r in rows], registry)
    by_number = {i.number: i.id for i in cset.indicators}
    # A row whose text matched nothing but whose printed number names an indicator not matched elsewhere is that
    # indicator (OCR garbled the text), with a confidence that sends it to review.
    taken = {ind for ind, _ in matches.values()}
    for n, row in enumerate(rows):
        num = row.number.number if row.number else None
        if n not in matches and num is not None and num.is_integer() and by_number.get(int(num)) not in (None, *taken):
            matches[n] = (by_number[int(num)], 0.0)
            taken.add(by_number[int(num)])
    if len(matches) < max(3, len(cset.indicators) // 2):
        return None
    fields: list[FieldProvenance] = []
    scores: dict[str, float | str | None] = {}
    for n, (ind_id, ratio) in matches.items():
        row, ind = rows[n], cset.indicator(ind_id)
        assert ind is not None
        num = row.number.number if row.number else None
        # The row number printed beside the text confirms the match; a different number contradicts it.
        if num == ind.number and row.number and row.number.number_confidence >= 0.8:
            match_conf = 1.0 if ratio >= 60 or ratio == 0.0 else 0.6
        elif num is not None and num != ind.number:
            match_conf = 0.4
        else:
            match_conf = 1.0 if ratio >= 90 else ratio / 100 * 0.9
        if ratio == 0.0 and match_conf == 1.0:
            match_conf = 0.7  # matched by its number alone
        value, prov = _score_field(f"scores.{ind_id}", row.score, row.page, match_conf, ind.max_points, ind.step)
        scores[ind_id] = value
        fields.append(prov)
    for ind in cset.indicators:
        if ind.id not in scores:
            scores[ind.id] = None
            fields.append(FieldProvenance(name=f"scores.{ind.id}", value=None, confidence=0.0, source="ocr"))
    total = None
    if total_cell is not None:
        max_total = sum(i.max_points for i in cset.indicators)
        total, prov = _score_field("total_declared", total_cell, total_page, 1.0, max_total, 0.01)
        fields.append(prov)
    else:  # no "Tổng" row read: the sheet's total is unknown, which a reviewer must see, not a silent blank
        fields.append(FieldProvenance(name="total_declared", value=None, confidence=0.0, source="ocr"))
    return _record(lines, cset, scores, total, fields, scanned=True)
