"""Tesseract, batched: all of a page's crops of one kind go through ONE tesseract call.

Crops are pasted side by side (numbers, one line) or one under another (text lines) with wide white gaps;
each recognised word is mapped back to the crop it came from by position. One process per crop costs ~135 ms
here, one per page keeps OCR cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytesseract

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # OpenMP makes tesseract ~4x slower on 2 cores

GAP = 40
DIGITS_CONFIG = "--psm 6 -c tessedit_char_whitelist=0123456789,."
TEXT_CONFIG = "--psm 6"


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float  # 0..1


def _read(canvas: np.ndarray, lang: str, config: str) -> list[tuple[str, float, float, float]]:
    data = pytesseract.image_to_data(canvas, lang=lang, config=config, output_type=pytesseract.Output.DICT)
    words = []
    for text, conf, left, top, width, height in zip(data["text"], data["conf"], data["left"], data["top"],
                                                    data["width"], data["height"], strict=True):
        if text.strip() and float(conf) >= 0:
            words.append((text.strip(), float(conf) / 100, left + width / 2, top + height / 2))
    return words


def read_numbers_twice(crops: list[np.ndarray], height: int = 48) -> tuple[list[OcrText], list[OcrText]]:
    """Typed/printed numbers, one per crop, read twice in ONE tesseract call: once rescaled to `height`
    pixels and once at the scan's own scale, all stacked as separate lines. Two scales disagree when a
    reading is shaky, which is what the caller checks."""
    scaled = []
    for c in crops:
        h, w = c.shape
        s = height / max(h, 1)
        scaled.append(_resize(c, max(1, round(w * s)), height))
    both = _stacked(scaled + list(crops), "eng", DIGITS_CONFIG, joiner="")
    return both[: len(crops)], both[len(crops):]


def read_lines(crops: list[np.ndarray]) -> list[OcrText]:
    """Printed Vietnamese text, one line per crop, read in one call with crops stacked vertically."""
    return _stacked(crops, "vie", TEXT_CONFIG, joiner=" ")


def _stacked(crops: list[np.ndarray], lang: str, config: str, joiner: str) -> list[OcrText]:
    if not crops:
        return []
    width = max(c.shape[1] for c in crops) + 2 * GAP
    height = sum(c.shape[0] for c in crops) + GAP * (len(crops) + 1)
    canvas = np.full((height, width), 255, np.uint8)
    spans = []
    y = GAP
    for c in crops:
        canvas[y:y + c.shape[0], GAP:GAP + c.shape[1]] = c
        spans.append((y, y + c.shape[0]))
        y += c.shape[0] + GAP
    out: list[list[tuple[str, float, float]]] = [[] for _ in crops]
    for text, conf, cx, cy in _read(canvas, lang, config):
        for i, (a, b) in enumerate(spans):
            if a - GAP / 2 <= cy <= b + GAP / 2:
                out[i].append((text, conf, cx))
                break
    return [OcrText(joiner.join(t for t, _, _ in sorted(ws, key=lambda w: w[2])),
                    min((c for _, c, _ in ws), default=0.0)) for ws in out]


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC)
