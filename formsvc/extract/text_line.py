"""A printed one-line field cut where its ink actually is, on paper evened out.

A zone is where the template put the line; on a folded, curled or unevenly fed page the line sits up to half a line
lower or higher, and the zone's crop cuts its letters in half (print-and-scan bench: "Hồ Thị Hà" read as nothing
from the zone, "Hồ Thị Hà" at 0.95 from the line found around it). Mottled grey paper with a scanner's speckle
also breaks Tesseract's own global threshold; a median and a division by the paper's local level even it out first.
"""

from __future__ import annotations

import cv2
import numpy as np

PAPER_KERNEL = 15  # px: wider than a printed stroke, so a closing leaves the paper's level alone
INK_BELOW = 150  # of 255 on evened paper: darker is ink (paper is 255, print-and-scan strokes 30..140)
ROW_INK_SHARE = 0.004  # of the crop's width: a row with fewer ink pixels (and fewer than ROW_INK_MIN) is paper
ROW_INK_MIN = 3
MAX_LINE_MM = 8.0  # a zone taller than this holds more than one line: read as it is
MARGIN = 0.25  # of the zone's height, kept above and below the line found
# Where a line's letters sit in its zone: the middle of their ink this share of the zone's height below the zone's
# middle (zones are the renderer's line boxes, the ascent above the letters; measured 0.2 on every subject line).
TEXT_BELOW = 0.2


def evened(crop: np.ndarray) -> np.ndarray:
    """Greyscale crop with speckle taken out and the paper brought to white wherever it is grey."""
    if crop.size == 0:
        return crop
    smooth = cv2.medianBlur(crop, 3)
    paper = cv2.morphologyEx(smooth, cv2.MORPH_CLOSE,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (PAPER_KERNEL, PAPER_KERNEL)))
    return cv2.divide(smooth, paper, scale=255)


def ink_runs(ink: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Row spans [top, bottom) holding ink, spans at most `gap` rows apart joined (a diacritic above its letter)."""
    least = max(ROW_INK_MIN, ROW_INK_SHARE * ink.shape[1])
    rows = np.flatnonzero(ink.sum(axis=1) >= least)
    runs: list[tuple[int, int]] = []
    for y in rows.tolist():
        if runs and y - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], y + 1)
        else:
            runs.append((y, y + 1))
    return runs


def line_crop(image: np.ndarray, box: tuple[int, int, int, int], dpi: float) -> np.ndarray:
    """The zone's line, evened, cut around the line of ink nearest to where the zone puts its letters, at most half
    a zone from there (searched half a zone above and below the zone). A zone with no such line (a blank field) is
    the zone's crop with the ink of the lines around it whitened: nothing of a neighbour's is read as this field's."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    zone = image[max(0, y0): y1, max(0, x0): x1]
    if h <= 0 or x1 <= x0 or h > MAX_LINE_MM / 25.4 * dpi:
        return zone
    top = max(0, y0 - h)
    band = evened(image[top: y1 + h, max(0, x0): x1])
    zt, zb = y0 - top, y1 - top
    margin = max(3, round(h * MARGIN))
    expected = (zt + zb) / 2 + TEXT_BELOW * h
    runs = ink_runs(band < INK_BELOW, max(2, h // 5))

    def ours(r: tuple[int, int]) -> bool:
        return abs((r[0] + r[1]) / 2 - expected) <= h / 2

    near = [r for r in runs if ours(r)]
    inside = [r for r in near if r[1] - r[0] <= 1.5 * h]
    if near and not inside:  # lines run together (a stain, a fold's shadow): nothing to cut apart
        return zone
    if not inside:
        if all(r[1] <= zt or r[0] >= zb for r in runs):
            # No ink in the zone: blank paper, whose grain alone Tesseract reads as a line of marks.
            return np.full_like(zone, 255)
        zone = zone.copy()
        for r in runs:  # a neighbour's accents or descenders reaching in
            zone[max(0, r[0] - zt): max(0, r[1] - zt)] = 255
        return zone
    run = min(inside, key=lambda r: abs((r[0] + r[1]) / 2 - expected))
    return band[max(0, run[0] - margin): run[1] + margin]
