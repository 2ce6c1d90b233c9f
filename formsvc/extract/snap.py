"""Score boxes put back inside their printed frames.

An aligned page is the photo mapped onto the template by one plane (align.py). A sheet that does not lie flat (an
edge lifting, the sheet bowed) is no plane: its boxes land a few millimetres off their frames, and a box cut across
its frame's ruling reads a stroke that is not written ("7" read "71") or loses half its number. Each score box sits
centred in a ruled cell of the table, a little inside its lines, so the cell found around the box says where the
box really is: its two horizontal lines as far apart as the cell's height and its two vertical lines as its width.
A cell found whole moves its box; anything less (a line lost to a stain, a fold, a stroke through the cell) leaves
the box where the plane put it.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from formsvc.extract.read import zone_px
from formsvc.layout import MM_PER_INCH, Box
from formsvc.zones import Zone

# How far around a box its frame is looked for. Only one pair of rulings as far apart as the cell fits in that window
# (a neighbour's pair would need it a whole cell larger), so a box is never moved into its neighbour's cell.
SEARCH_MM = 5.0
# A box's frame lies about 0.85 mm outside it on every side (the template's cells): lines this much further apart
# than the box's side, give or take SPACING_SLACK_MM (a bent sheet's cell looks a little larger or smaller).
FRAME_GAP_MM = 1.6
SPACING_SLACK_MM = 1.2
# Share of the box's side a ruling line must cover, as ink on one row (or column) of the window.
LINE_COVER = 0.5
# Less than this off the cell's middle, along either axis, is where the plane put it: a flat page's boxes are within
# a pixel of their cells (the ruling's own thickness), and moving them by that only re-rolls the recogniser's dice.
LEAST_MOVE_MM = 0.3
INK_BELOW = 140  # grey level


def _lines(ink: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Positions along the other axis of straight rulings at least `length` long (axis 1: horizontal lines, their
    rows; axis 0: vertical lines, their columns). A line a bent sheet tilts by a pixel or two is still found: the
    ink is first thickened across it."""
    thick = cv2.dilate(ink, np.ones((3, 1) if axis == 1 else (1, 3), np.uint8))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1) if axis == 1 else (1, length))
    runs = cv2.morphologyEx(thick, cv2.MORPH_OPEN, kernel)
    return np.flatnonzero(runs.sum(axis=axis) >= length)


def _shift(positions: np.ndarray, side: int, search: int, gap: float, slack: float) -> float | None:
    """How far the cell's centre is from the box's, along one axis, from the line positions found (window
    coordinates, the box from `search` to `search + side`); None unless exactly one pair of lines is as far apart
    as the cell."""
    if len(positions) < 2:
        return None
    # Runs of adjacent positions are one line (2-3 px thick): its middle.
    groups = np.split(positions, np.flatnonzero(np.diff(positions) > 1) + 1)
    lines = [float(g.mean()) for g in groups]
    want = side + gap
    pairs = [(a, b) for i, a in enumerate(lines) for b in lines[i + 1:] if abs((b - a) - want) <= slack]
    if len(pairs) != 1:
        return None
    a, b = pairs[0]
    return (a + b) / 2 - (search + (side - 1) / 2)


def snapped(zones: list[Zone], image: np.ndarray, dpi: float) -> list[Zone]:
    """The zones with every score box moved to the middle of the ruled cell found around it (see the module's
    docstring); other zones, and boxes whose cell is not found whole, as they were."""
    px = dpi / MM_PER_INCH
    search = round(SEARCH_MM * px)
    gap, slack, least = FRAME_GAP_MM * px, SPACING_SLACK_MM * px, LEAST_MOVE_MM * px
    h_img, w_img = image.shape[:2]
    out = []
    for z in zones:
        if z.kind != "score":
            out.append(z)
            continue
        x0, y0, x1, y1 = zone_px(z, dpi)
        if x0 - search < 0 or y0 - search < 0 or x1 + search > w_img or y1 + search > h_img:
            out.append(z)
            continue
        window = image[y0 - search:y1 + search, x0 - search:x1 + search]
        ink = (window < INK_BELOW).astype(np.uint8)
        w, h = x1 - x0, y1 - y0
        dy = _shift(_lines(ink, 1, round(w * LINE_COVER)), h, search, gap, slack)
        dx = _shift(_lines(ink, 0, round(h * LINE_COVER)), w, search, gap, slack)
        if dx is None or dy is None:
            out.append(z)
            continue
        dx, dy = (0.0 if abs(d) < least else d for d in (dx, dy))
        if dx == dy == 0.0:
            out.append(z)
            continue
        b, mm = z.box, MM_PER_INCH / dpi
        out.append(replace(z, box=Box(b.left + dx * mm, b.top + dy * mm, b.width, b.height)))
    return out
