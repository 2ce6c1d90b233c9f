"""Read the cells of ruled tables found on a scanned page (formsvc/extract/table_grid.py), batched.

A full-page Tesseract pass misses isolated digits in table cells; cut out they read well. Every text cell of a page
goes through ONE `vie` recognition (crops stacked one under another) and every cell of a numeric column through
ONE digits-only recognition at two scales (formsvc/extract/ocr.py),
plus the handwritten-number recogniser. Each cell keeps every reading and a confidence; the document readers
(foreign.py, minutes.py) decide what a column means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from formsvc.extract.digits import ink_mask, read_score
from formsvc.extract.ocr import OcrText, read_numbers_twice, stacked_words
from formsvc.extract.table_grid import Grid, PageTables
from formsvc.extract.types import PageText
from formsvc.payload import PagePayload
from formsvc.text import fold, nfc

NUMBER = re.compile(r"^\d{1,4}(?:[.,]\d{1,2})?$")
# Header words of columns that hold numbers (row numbers, points, totals, years).
NUMERIC_HEADERS = ("stt", "tt", "diem", "cham", "nam sinh", "thong nhat", "tong")
TEXT_SCALE = 1.5  # 11 pt text at 200 dpi is small for Tesseract; half again reads stacked marks better


@dataclass(frozen=True)
class CellRead:
    row: int
    col: int
    rows: int
    cols: int
    box: tuple[float, float, float, float]  # page pixels of the page as read (deskewed)
    text: str  # Vietnamese OCR of the cell, NFC
    confidence: float  # 0..1, the weakest word's
    blank: bool
    number: float | None = None  # numeric columns: the agreed reading, None when blank or unsure
    number_confidence: float = 0.0
    number_source: str = "ocr"  # ocr | handwriting


@dataclass
class TableRead:
    page: int
    n_rows: int
    n_cols: int
    header: list[str]  # accent-folded header text per column ("" when the table has no header row)
    cells: list[CellRead] = field(default_factory=list)

    def at(self, row: int, col: int) -> CellRead | None:
        for c in self.cells:
            if c.row <= row < c.row + c.rows and c.col <= col < c.col + c.cols:
                return c
        return None

    def column(self, *keys: str) -> int | None:
        """Index of the column whose header holds one of `keys` (accent-folded), first key first."""
        for key in keys:
            for n, head in enumerate(self.header):
                if key in head:
                    return n
        return None


@dataclass
class PageReading(PageText):
    """A page's words plus what was read from its ruled tables and, on formsvc's own forms, its QR payload."""

    table_reads: list[TableRead] = field(default_factory=list)
    payload: PagePayload | None = None


def _crop(tables: PageTables, box: tuple[int, int, int, int], dpi: float) -> np.ndarray | None:
    """The cell's content without remnants of its ruling lines, cut to its ink; None when the cell is blank.

    Blank is judged by the ink's size, not its share of the cell: a lone "7" in a tall cell is under 0.2 % ink.
    """
    x0, y0, x1, y1 = box
    img = tables.image[max(0, y0):y1, max(0, x0):x1].copy()
    if img.size == 0:
        return None
    rules = cv2.dilate(tables.lines[max(0, y0):y1, max(0, x0):x1], np.ones((5, 5), np.uint8))
    img[rules > 0] = 255
    ink = ink_mask(img)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    glyph = max(3, round(dpi / 25))  # ~1 mm: the height of the smallest printed digit's stroke run
    keep = [i for i in range(1, n) if stats[i][cv2.CC_STAT_AREA] >= glyph and stats[i][cv2.CC_STAT_HEIGHT] >= glyph]
    if not keep:
        return None
    xs0 = min(stats[i][cv2.CC_STAT_LEFT] for i in keep)
    ys0 = min(stats[i][cv2.CC_STAT_TOP] for i in keep)
    xs1 = max(stats[i][cv2.CC_STAT_LEFT] + stats[i][cv2.CC_STAT_WIDTH] for i in keep)
    ys1 = max(stats[i][cv2.CC_STAT_TOP] + stats[i][cv2.CC_STAT_HEIGHT] for i in keep)
    m = 6
    return img[max(0, ys0 - m): ys1 + m, max(0, xs0 - m): xs1 + m]


def read_text_cells(crops: list[np.ndarray]) -> list[OcrText]:
    """Printed Vietnamese text of each crop (one or several lines), in one Tesseract call."""
    scaled = [cv2.resize(c, None, fx=TEXT_SCALE, fy=TEXT_SCALE, interpolation=cv2.INTER_CUBIC) for c in crops]
    # Words in Tesseract's reading order: a cell may hold several lines.
    return [OcrText(nfc(" ".join(w.text for w in ws)), min((w.confidence for w in ws), default=0.0))
            for ws in stacked_words(scaled, "vie")]


def _num(text: str) -> float | None:
    t = text.replace(" ", "")
    return float(t.replace(",", ".")) if NUMBER.match(t) else None


def vote_number(readings: list[OcrText], text: OcrText, hand_value: float | None, hand_conf: float,
                hand_state: str) -> tuple[float | None, float, str]:
    """One value from several digits-only readings (two crops x two scales), the `vie` reading and the
    handwriting recogniser.

    Each way of cutting and scaling a small crop fails on different scans (JPEG ringing, noise, thin strokes), so
    the value is what most readings agree on and the confidence says how unanimous they were: a value nobody
    contradicts is trusted, a split vote goes to review, and with no printed reading the handwriting recogniser's
    own reading and confidence stand. Never a silent guess.
    """
    if hand_state == "crossed":
        return None, 0.5, "handwriting"
    values = [v for v in (_num(r.text) for r in readings) if v is not None]
    plain = _num(text.text)
    if values:
        best = max(set(values), key=lambda v: (values.count(v), v == plain))
        agree, against = values.count(best), len(values) - values.count(best)
        seconded = plain == best or hand_value == best
        if agree >= 3 and against == 0:
            return best, 0.95, "ocr"
        if agree >= 2 and against == 0:
            return best, 0.9 if seconded else 0.75, "ocr"
        if agree >= 3 and seconded:
            return best, 0.8, "ocr"
        return best, 0.4 if agree >= 2 else 0.3, "ocr"
    if hand_state == "number" and hand_value is not None:
        return hand_value, min(hand_conf, 0.9) if plain == hand_value else min(hand_conf, 0.7), "handwriting"
    return plain, 0.3 if plain is not None else 0.0, "ocr"


def _numeric(header: str) -> bool:
    words = header.split()
    return any(k in header if " " in k else k in words for k in NUMERIC_HEADERS)


def read_grid(tables: PageTables, grid: Grid, page: int, dpi: float, *, max_value: float = 100,
              step: float = 0.5) -> TableRead:
    """Every cell's text; numeric columns (by their header, or all when there is no header row) also as numbers."""
    cells = grid.cells
    crops = {i: crop for i, c in enumerate(cells) if (crop := _crop(tables, c.box, dpi)) is not None}
    inked = list(crops)
    texts: dict[int, OcrText] = dict(zip(inked, read_text_cells(list(crops.values())), strict=True))
    header = [""] * grid.n_cols
    for i, c in enumerate(cells):
        if c.row == 0 and i in texts:
            for k in range(c.col, c.col + c.cols):
                header[k] = fold(texts[i].text)
    has_header = any(_numeric(h) for h in header)
    if not has_header:
        header = [""] * grid.n_cols
    numeric_cols = {k for k, h in enumerate(header) if _numeric(h)} if has_header else set(range(grid.n_cols))
    wanted = [i for i in inked if cells[i].col in numeric_cols and not (has_header and cells[i].row == 0)]
    # Each number twice more, padded and softened: Tesseract reads anti-aliased glyphs with room around them
    # differently, and where the tight crop fails this one often does not. Still one call for the whole page.
    soft = [cv2.GaussianBlur(cv2.copyMakeBorder(crops[i], 8, 8, 8, 8, cv2.BORDER_CONSTANT, value=255), (0, 0), 0.8)
            for i in wanted]
    first, second = read_numbers_twice([crops[i] for i in wanted] + soft)
    n = len(wanted)
    numbers: dict[int, tuple[float | None, float, str]] = {}
    for k, i in enumerate(wanted):
        x0, y0, x1, y1 = cells[i].box
        hand = read_score(tables.image[y0:y1, x0:x1], max_value=max_value, step=step)
        readings = [first[k], second[k], first[n + k], second[n + k]]
        numbers[i] = vote_number(readings, texts[i], hand.value, hand.confidence, hand.state)
    out = TableRead(page=page, n_rows=grid.n_rows, n_cols=grid.n_cols, header=header)
    for i, c in enumerate(cells):
        text = texts.get(i, OcrText("", 0.97))
        value, conf, source = numbers.get(i, (None, 0.97 if i not in texts else 0.0, "ocr"))
        out.cells.append(CellRead(c.row, c.col, c.rows, c.cols, tuple(float(v) for v in c.box),  # type: ignore[arg-type]
                                  text.text, text.confidence, i not in texts, value, conf, source))
    return out


def read_tables(tables: PageTables, page: int, dpi: float) -> list[TableRead]:
    return [read_grid(tables, g, page, dpi) for g in tables.grids]
