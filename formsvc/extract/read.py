"""Stage 4, read fields by zone: from the text layer of digital pages, or from the aligned image.

Score boxes are first checked for ink (a blank box is a confident "nothing written"); the inked ones are read
together in one Tesseract call. Text lines likewise. Every value comes with a confidence, a page and a box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from formsvc.extract.digits import ScoreReading, read_score
from formsvc.extract.ocr import OcrText, read_lines, read_numbers_twice
from formsvc.extract.types import Word
from formsvc.layout import mm_to_px
from formsvc.zones import Zone

INK_RATIO_BLANK = 0.004
EVIDENCE_PRESENT = "(có ghi minh chứng trên phiếu)"
NUMBER = re.compile(r"^\d{1,3}(?:[.,]\d{1,2})?$")


@dataclass(frozen=True)
class FieldRead:
    name: str
    kind: str
    text: str
    blank: bool
    confidence: float
    bbox: tuple[float, float, float, float]  # pixels at the pipeline dpi, upright page
    source: str  # text_layer | ocr


def zone_px(zone: Zone, dpi: float) -> tuple[int, int, int, int]:
    b = zone.box
    return (round(mm_to_px(b.left, dpi)), round(mm_to_px(b.top, dpi)),
            round(mm_to_px(b.left + b.width, dpi)), round(mm_to_px(b.top + b.height, dpi)))


def _ink_ratio(crop: np.ndarray) -> float:
    if crop.size == 0:
        return 0.0
    h, w = crop.shape
    inner = crop[int(h * 0.05): int(h * 0.95), int(w * 0.05): int(w * 0.95)]
    if inner.size == 0:
        return 0.0
    # Median filtering removes scanner noise; ink is what is clearly darker than this box's own paper,
    # so faint (blurred) strokes count and a grey background does not.
    smooth = cv2.medianBlur(inner, 3)
    paper = float(np.percentile(smooth, 90))
    return float((smooth < paper - 60).mean())


def _tight(crop: np.ndarray) -> np.ndarray:
    """Cut the ink's bounding box (plus a margin) so the OCR sees the number, not the cell borders."""
    h, w = crop.shape
    inner = crop[int(h * 0.05): int(h * 0.95), int(w * 0.05): int(w * 0.95)]
    ys, xs = np.nonzero(inner < 140)
    if len(xs) == 0:
        return inner
    m = 6
    y0, y1 = max(0, ys.min() - m), min(inner.shape[0], ys.max() + m)
    x0, x1 = max(0, xs.min() - m), min(inner.shape[1], xs.max() + m)
    # Tesseract reads anti-aliased glyphs better than hard-edged ones (clean scans read worse than blurred).
    return cv2.GaussianBlur(inner[y0:y1, x0:x1], (0, 0), 0.8)


def _num(text: str) -> float | None:
    return float(text.replace(",", ".")) if NUMBER.match(text) else None


def combine(z: Zone, box: tuple[int, int, int, int], a: OcrText, b: OcrText, hand: ScoreReading) -> FieldRead:
    """Typed or handwritten? Tesseract (twice) reads print, the recogniser reads handwriting; they must agree.

    - Tesseract's two readings agree and the recogniser too: confident.
    - Tesseract agrees with itself but the recogniser reads another number: keep the print reading, for review.
    - Tesseract unsure: the recogniser's reading with its own confidence (handwriting).
    """
    typed = _num(a.text) if _num(a.text) is not None and _num(a.text) == _num(b.text) else None
    typed_conf = min(a.confidence, b.confidence)
    if hand.state == "crossed":
        return FieldRead(z.name, z.kind, "", True, 0.5, box, "handwriting")
    if typed is not None:
        if hand.value == typed:
            return FieldRead(z.name, z.kind, a.text, False, max(typed_conf, hand.confidence), box, "ocr")
        return FieldRead(z.name, z.kind, a.text, False, min(typed_conf, 0.6), box, "ocr")
    if hand.state == "number":
        return FieldRead(z.name, z.kind, hand.text, False, hand.confidence, box, "handwriting")
    return FieldRead(z.name, z.kind, a.text, False, min(typed_conf, 0.3), box, "ocr")


def read_digital(zones: list[Zone], words: list[Word], dpi: float) -> list[FieldRead]:
    out = []
    for z in zones:
        x0, y0, x1, y1 = zone_px(z, dpi)
        inside = [w for w in words if x0 <= (w.box[0] + w.box[2]) / 2 <= x1 and y0 <= (w.box[1] + w.box[3]) / 2 <= y1]
        text = " ".join(w.text for w in sorted(inside, key=lambda w: (round(w.box[1] / 10), w.box[0])))
        out.append(FieldRead(z.name, z.kind, text, blank=not text.strip(), confidence=1.0,
                             bbox=(x0, y0, x1, y1), source="text_layer"))
    return out


def read_scanned(zones: list[Zone], image: np.ndarray, dpi: float) -> list[FieldRead]:
    out: dict[str, FieldRead] = {}
    numbers: list[tuple[Zone, tuple[int, int, int, int], np.ndarray]] = []
    lines: list[tuple[Zone, tuple[int, int, int, int], np.ndarray]] = []
    for z in zones:
        box = zone_px(z, dpi)
        x0, y0, x1, y1 = box
        crop = image[max(0, y0): y1, max(0, x0): x1]
        if z.kind == "score":
            if _ink_ratio(crop) < INK_RATIO_BLANK:
                out[z.name] = FieldRead(z.name, z.kind, "", True, 0.97, box, "ocr")
            else:
                numbers.append((z, box, _tight(crop)))
        elif z.name.startswith("evidence."):
            # Evidence is usually handwritten: record whether the cell has content; a reviewer reads the crop.
            inked = _ink_ratio(crop) >= INK_RATIO_BLANK
            out[z.name] = FieldRead(z.name, z.kind, EVIDENCE_PRESENT if inked else "", not inked, 0.9, box, "ocr")
        elif z.kind == "text":
            lines.append((z, box, crop))
    crops = [c for _, _, c in numbers]
    # Two readings at two scales: a typed number both agree on is trusted.
    first, second = read_numbers_twice(crops)
    for (z, box, _), a, b in zip(numbers, first, second, strict=True):
        x0, y0, x1, y1 = box
        hand = read_score(image[max(0, y0): y1, max(0, x0): x1])
        out[z.name] = combine(z, box, a, b, hand)
    for (z, box, _), res in zip(lines, read_lines([c for _, _, c in lines]), strict=True):
        out[z.name] = FieldRead(z.name, z.kind, res.text, not res.text.strip(), res.confidence, box, "ocr")
    return [out[z.name] for z in zones if z.name in out]
