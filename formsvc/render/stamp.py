"""Stamp the return-trip marks (QR payload + four ArUco markers) onto every page of a rendered PDF.

Drawn as vector squares at the exact formsvc.layout positions, so they are crisp at any scan resolution
and the extractor knows where to look.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

import cv2
import numpy as np
import segno
from pypdf import PdfReader, PdfWriter
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from formsvc import layout
from formsvc.payload import PagePayload

A4 = (layout.PAGE_W_MM * mm, layout.PAGE_H_MM * mm)
# Liberation 2 has the Vietnamese glyphs (1.x lacks the stacked diacritics) and is metric-compatible with
# Times New Roman, the font Nghị định 30/2020 prescribes.
FONT_FILES = {"LiberationSerif": "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
              "LiberationSerif-Bold": "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf",
              # The id line: monospace, every character distinct in shape and width, read back by OCR.
              "LiberationMono": "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf"}


@lru_cache(maxsize=1)
def register_fonts() -> None:
    for name, path in FONT_FILES.items():
        pdfmetrics.registerFont(TTFont(name, path))


def new_canvas(buf: io.BytesIO) -> Canvas:
    """A canvas whose only font is an embedded one (reportlab otherwise references unembedded Helvetica)."""
    register_fonts()
    return Canvas(buf, pagesize=A4, initialFontName="LiberationSerif", initialFontSize=12)


@lru_cache(maxsize=8)
def marker_bits(marker_id: int) -> np.ndarray:
    """The marker as a boolean matrix (True = black), border included (6x6 for 4x4 markers)."""
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.MARKER_DICT))
    img = cv2.aruco.generateImageMarker(dictionary, marker_id, 6)
    return np.asarray(img == 0)


def _squares(c: Canvas, bits: np.ndarray, box: layout.Box) -> None:
    n_rows, n_cols = bits.shape
    cell_w, cell_h = box.width / n_cols, box.height / n_rows
    for r in range(n_rows):
        for col in range(n_cols):
            if bits[r, col]:
                x = (box.left + col * cell_w) * mm
                y = (layout.PAGE_H_MM - box.top - (r + 1) * cell_h) * mm
                # A hair of overlap so adjacent cells print as one solid area.
                c.rect(x, y, cell_w * mm + 0.05, cell_h * mm + 0.05, stroke=0, fill=1)


FIRST_ERROR, SECOND_ERROR = "m", "l"  # the codes' error correction levels (segno raises them when room is left)


def _qr(c: Canvas, text: str, error: str, box: layout.Box) -> None:
    qr = segno.make(text, error=error, micro=False)
    _squares(c, np.array([[bool(v) for v in row] for row in qr.matrix], dtype=bool), box)


def within_first_code(payload: PagePayload) -> PagePayload:
    """`payload` with as many of its checks as the first code carries without becoming a denser one (smaller
    modules in the same 17 mm square, which a low-resolution photo loses first: a long subject id or set reference
    leaves no room): all, the name's and birth year's, the name's alone, or none."""
    plain = segno.make(payload.identity(), error=FIRST_ERROR, micro=False).version
    fewer = [payload, replace(payload, group_check=None), replace(payload, group_check=None, year_check=None)]
    for checks in fewer:
        if segno.make(checks.encode(), error=FIRST_ERROR, micro=False).version == plain:
            return checks
    return replace(payload, name_check=None, year_check=None, group_check=None)


def draw_marks(c: Canvas, payload: PagePayload) -> None:
    """Markers, both codes and the id line: the page's identity three times, far apart (see formsvc.payload)."""
    c.setFillColorRGB(0, 0, 0)
    for marker_id, box in layout.marker_boxes().items():
        _squares(c, marker_bits(marker_id), box)
    _qr(c, payload.encode(), FIRST_ERROR, layout.qr_box())
    _qr(c, payload.encode_second(), SECOND_ERROR, layout.qr2_box())
    c.saveState()
    # Shrunk, never clipped, to end before the code: long subject ids make long lines.
    text = payload.id_line()
    room = (layout.QR_LEFT_MM - layout.ID_LINE_LEFT_MM - 2.0) * mm
    size = min(layout.ID_LINE_PT, room / max(1.0, pdfmetrics.stringWidth(text, "LiberationMono", 1.0)))
    c.setFont("LiberationMono", size)
    c.drawString(layout.ID_LINE_LEFT_MM * mm, (layout.PAGE_H_MM - layout.ID_LINE_BASELINE_MM) * mm,
                 text)
    c.restoreState()


def overlay_pdf(payloads: Sequence[PagePayload]) -> bytes:
    buf = io.BytesIO()
    c = new_canvas(buf)
    for payload in payloads:
        draw_marks(c, payload)
        c.showPage()
    c.save()
    return buf.getvalue()


def stamp_pages(pdf: bytes, payloads: Sequence[PagePayload | None]) -> bytes:
    """Merge marks onto each page; a None payload leaves that page (e.g. a duplex filler page) untouched."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf))
    if len(writer.pages) != len(payloads):
        raise ValueError(f"{len(writer.pages)} pages but {len(payloads)} payloads")
    marks = [p for p in payloads if p is not None]
    overlay = PdfReader(io.BytesIO(overlay_pdf(marks))) if marks else None
    k = 0
    for page, payload in zip(writer.pages, payloads, strict=True):
        if payload is not None and overlay is not None:
            page.merge_page(overlay.pages[k])
            k += 1
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
