"""Score boxes put back inside their printed frames.

An aligned page is the photo mapped onto the template by one plane (align.py). A sheet that does not lie flat (an
edge lifting, the sheet bowed) is no plane: its boxes land a few millimetres off their frames, and a box cut across
its frame's ruling reads a stroke that is not written ("7" read "71") or loses half its number. Each score box sits
centred in a ruled cell of the table, a little inside its lines, so the cell found around the box says where the
box really is: its two horizontal lines as far apart as the cell's height and its two vertical lines as its width.
A cell found whole moves its box; anything less (a line lost to a stain, a fold, a stroke through the cell) leaves
the box where the plane put it.

A sheet bent further (a marker found off the page's plane: align.PageMatrix.bent) may have its boxes several
millimetres off, even a whole row, where a cell found around a box is its neighbour's, as whole as its own. There
the table's lines place the boxes together (framed): down each column of boxes, the ruled lines must be found in the
order and at the spacings the template prints them, one whole run of them and only one, each row a little taller or
shorter than printed and than its neighbour at most; then along each box's row, the column lines the same way. A
column a score row off fails at its heading rows, which are shorter, or at the table's end; lines not all found,
fitting two ways, or tilted more than MAX_TILT place nothing, and the boxes not placed stay for a person. A placed
box whose lines tilt is read from its surroundings turned level (Framed.levelled): a square crop of a tilted cell
holds the cell's lines in its corners.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

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

# A column's row lines (framed): looked for this far above its first line and below its last; a horizontal ruling
# covers this share of the strip down the column's middle (a cell's line spans it; a handwritten stroke seldom does).
COLUMN_REACH_MM = 30.0
COLUMN_INSET_MM = 2.0
ROW_INSET_MM = 0.3  # a row's column lines are looked for over its box's whole height: a digit's stroke is shorter
ROW_LINE_COVER = 0.8
# Each row as seen, over its height as printed: a sheet bent away from the camera shows rows shorter (foreshortened),
# one lifted towards it a little taller; from one row to the next that changes little. A heading row (10 mm) taken
# for a score row (15 mm), or the other way round, is a third off.
ROW_STRETCH = 0.25
ROW_STRETCH_STEP = 0.1
COLUMN_SHIFT_MM = 12.0  # further off than this, a column is not looked for (a fold: the box may be anywhere)
# A marker further off the page's plane than this: folded, not curled; nothing on the page is placed by its lines.
BEND_MAX_MM = 30.0
# Lines tilted up to this much (rise over run, 5.7 degrees) are levelled before they are looked for, and the boxes
# placed by them are read levelled (LEVEL_FROM); tilted more (or past TILTS), nothing is placed.
MAX_TILT = 0.1
# A placed box whose cell's lines tilt more than this (about 1.1 degrees: 0.4 mm across a 20 mm box) is read from its
# surroundings turned level, LEVEL_MARGIN_MM around it (less than half the 1.6 mm between two boxes' frames).
LEVEL_FROM = 0.02
LEVEL_MARGIN_MM = 0.6
TILTS = np.tan(np.radians(np.arange(-6.0, 6.01, 0.5)))
SEGMENT_MM, SEGMENT_OVERLAP_MM = 40.0, 4.0  # a strip's lines are levelled piece by piece (_strip_lines)


def _lines(ink: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Positions along the other axis of straight rulings at least `length` long (axis 1: horizontal lines, their
    rows; axis 0: vertical lines, their columns). A line a bent sheet tilts by a pixel or two is still found: the
    ink is first thickened across it."""
    thick = cv2.dilate(ink, np.ones((3, 1) if axis == 1 else (1, 3), np.uint8))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1) if axis == 1 else (1, length))
    runs = cv2.morphologyEx(thick, cv2.MORPH_OPEN, kernel)
    return np.flatnonzero(runs.sum(axis=axis) >= length)


def _middles(positions: np.ndarray) -> list[float]:
    """Runs of adjacent positions are one line (2-3 px thick): the middle of each."""
    return [float(g.mean()) for g in np.split(positions, np.flatnonzero(np.diff(positions) > 1) + 1)]


def _shift(positions: np.ndarray, side: int, search: int, gap: float, slack: float) -> float | None:
    """How far the cell's centre is from the box's, along one axis, from the line positions found (window
    coordinates, the box from `search` to `search + side`); None unless exactly one pair of lines is as far apart
    as the cell."""
    if len(positions) < 2:
        return None
    lines = _middles(positions)
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


@dataclass(frozen=True)
class _Level:
    """A placed box's surroundings as the table's lines there are tilted: read levelled (Framed.levelled)."""
    matrix: np.ndarray  # 2x3: patch pixels -> page pixels
    x0: int  # where the patch goes on the page
    y0: int
    size: tuple[int, int]  # (w, h)


@dataclass(frozen=True)
class Framed:
    zones: list[Zone]
    boxes: frozenset[str]  # the score boxes placed by the table's lines around them (framed)
    levels: tuple[_Level, ...] = ()

    def levelled(self, image: np.ndarray) -> np.ndarray:
        """The page (or its plain grey levels) with each placed box whose cell's lines tilt by more than LEVEL_FROM
        turned level where it is placed: an axis-aligned crop of a tilted cell holds its lines."""
        if not self.levels:
            return image
        out = image.copy()
        h_img, w_img = image.shape[:2]
        for lv in self.levels:
            w, h = lv.size
            if lv.x0 < 0 or lv.y0 < 0 or lv.x0 + w > w_img or lv.y0 + h > h_img:
                continue
            out[lv.y0:lv.y0 + h, lv.x0:lv.x0 + w] = cv2.warpAffine(
                image, lv.matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        return out


def framed(zones: list[Zone], image: np.ndarray, dpi: float, bend_mm: float) -> Framed:
    """A bent page's zones (see the module's docstring): each score box placed by its column's row lines and its
    row's column lines; the names of the boxes so placed, and how to level those whose lines tilt. The others,
    and every box of a page bent more than BEND_MAX_MM, are snapped as on a flat page and not named."""
    if bend_mm > BEND_MAX_MM:
        return Framed(snapped(zones, image, dpi), frozenset())
    px = dpi / MM_PER_INCH
    half = FRAME_GAP_MM / 2
    boxes = [z for z in zones if z.kind == "score"]
    columns: dict[int, list[Zone]] = defaultdict(list)
    for z in boxes:
        columns[round(z.box.left)].append(z)
    moved: dict[str, Zone] = {}
    levels: list[_Level] = []
    for column in columns.values():
        column.sort(key=lambda z: z.box.top)
        rows = _printed([y for z in column for y in (z.box.top - half, z.box.top + z.box.height + half)])
        left, right = column[0].box.left + COLUMN_INSET_MM, column[0].box.left + column[0].box.width - COLUMN_INSET_MM
        down = _registered(image, px, rows, (left, right), across=False)
        if down is None:
            continue
        for z in column:
            b = z.box
            above, below = down[_nearest(rows, b.top - half)], down[_nearest(rows, b.top + b.height + half)]
            top = b.top + (above[0] + below[0]) / 2
            row = [o for o in boxes if abs(o.box.top - b.top) < 1.0]
            cols = _printed([x for o in row for x in (o.box.left - half, o.box.left + o.box.width + half)])
            side = _registered(image, px, cols, (top + ROW_INSET_MM, top + b.height - ROW_INSET_MM),
                               across=True)
            if side is None:
                continue
            before, after = side[_nearest(cols, b.left - half)], side[_nearest(cols, b.left + b.width + half)]
            box = Box(b.left + (before[0] + after[0]) / 2, top, b.width, b.height)
            moved[z.name] = replace(z, box=box)
            rise, lean = (above[1] + below[1]) / 2, (before[1] + after[1]) / 2
            if max(abs(rise), abs(lean)) > LEVEL_FROM:
                levels.append(_level(box, rise, lean, px))
    rest = snapped([z for z in zones if z.name not in moved], image, dpi)
    by_name = {z.name: z for z in rest} | moved
    return Framed([by_name[z.name] for z in zones], frozenset(moved), tuple(levels))


def _level(box: Box, rise: float, lean: float, px: float) -> _Level:
    """How to level `box` (mm) and LEVEL_MARGIN_MM around it: its horizontal lines rise `rise` px a px across, its
    vertical lines lean `lean` px a px down."""
    w, h = round((box.width + 2 * LEVEL_MARGIN_MM) * px), round((box.height + 2 * LEVEL_MARGIN_MM) * px)
    cx, cy = (box.left + box.width / 2) * px, (box.top + box.height / 2) * px
    matrix = np.array([[1.0, lean, cx - w / 2 - lean * h / 2], [rise, 1.0, cy - rise * w / 2 - h / 2]])
    return _Level(matrix, round(cx - w / 2), round(cy - h / 2), (w, h))


def _printed(lines: list[float]) -> list[float]:
    """Line positions (mm) sorted, those within half a millimetre of another taken once (two cells share a line)."""
    ys = sorted(lines)
    return [ys[i] for i in _once(ys, 0.5)]


def _once(ys: list[float], gap: float) -> list[int]:
    """Indices of the sorted positions `ys` kept when each within `gap` of the last one kept is the same line."""
    kept: list[int] = []
    for i, y in enumerate(ys):
        if not kept or y - ys[kept[-1]] > gap:
            kept.append(i)
    return kept


def _registered(image: np.ndarray, px: float, printed: list[float], band: tuple[float, float], across: bool
                ) -> dict[float, tuple[float, float]] | None:
    """How far (mm) each printed line is from where the page's plane puts it, and how it tilts there (px a px):
    the table's lines found in a band crossing them (rows down a column; `across`: columns along a row, `band`
    then top and bottom), one run of them that is the printed lines and only one (_fits); None unless found so,
    or the lines lie tilted more than MAX_TILT in the band."""
    if len(printed) < 3:
        return None
    h_img, w_img = image.shape[:2]
    b0, b1 = round(band[0] * px), round(band[1] * px)
    r0, r1 = round((printed[0] - COLUMN_REACH_MM) * px), round((printed[-1] + COLUMN_REACH_MM) * px)
    if across:
        r0, r1 = max(0, r0), min(w_img, r1)
        if b0 < 0 or b1 > h_img or b1 - b0 < 4 or r1 - r0 < 2:
            return None
        strip = image[b0:b1, r0:r1].T
    else:
        r0, r1 = max(0, r0), min(h_img, r1)
        if b0 < 0 or b1 > w_img or b1 - b0 < 4 or r1 - r0 < 2:
            return None
        strip = image[r0:r1, b0:b1]
    found = _strip_lines((strip < INK_BELOW).astype(np.uint8), px)
    if found is None:
        return None
    seen = (r0 + found[0]) / px
    want = np.array(printed)
    fits = [i for i in range(len(seen) - len(want) + 1) if _fits(seen[i:i + len(want)], want)]
    if len(fits) != 1:
        return None
    i = fits[0]
    off, tilt = seen[i:i + len(want)] - want, found[1][i:i + len(want)]
    return {p: (float(o), float(t)) for p, o, t in zip(printed, off, tilt, strict=True)}


def _strip_lines(ink: np.ndarray, px: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the straight lines running across the strip (along its width) cross its middle, in px, and their
    tilts. A bent sheet's lines tilt more or less from one end of a column to the other: the strip is searched in
    pieces SEGMENT_MM long, each at the tilt (of TILTS) that lines the most of its ink up across it. None when a
    piece's lines tilt more than MAX_TILT."""
    h, w = ink.shape
    size, step = round(SEGMENT_MM * px), round((SEGMENT_MM - SEGMENT_OVERLAP_MM) * px)
    found: list[tuple[float, float]] = []
    for top in range(0, max(1, h - round(SEGMENT_OVERLAP_MM * px)), step):
        piece = ink[top:top + size]
        best: tuple[float, float, np.ndarray] | None = None
        for slope in TILTS:
            m = np.array([[1, 0, 0], [-slope, 1, slope * (w - 1) / 2]], np.float32)  # level through the middle
            level = cv2.warpAffine(piece, m, (w, piece.shape[0]), flags=cv2.INTER_NEAREST, borderValue=0)
            sharp = float((level.sum(axis=1).astype(np.float64) ** 2).sum())
            if best is None or sharp > best[0]:
                best = (sharp, slope, level)
        assert best is not None
        _, slope, level = best
        rows = _lines(level, 1, round(w * ROW_LINE_COVER))
        if len(rows) == 0:
            continue
        if abs(slope) > MAX_TILT:
            return None
        found += [(top + y, float(slope)) for y in _middles(rows)]
    # A line in two overlapping pieces is found twice, within a pixel or two: the first kept.
    found.sort()
    kept = [found[i] for i in _once([y for y, _ in found], 0.5 * px)]
    return np.array([y for y, _ in kept]), np.array([t for _, t in kept])


def _fits(seen: np.ndarray, want: np.ndarray) -> bool:
    """Lines seen that are the lines printed: each row's height as seen within ROW_STRETCH of its height as printed,
    changing by at most ROW_STRETCH_STEP from one row to the next, and none further off than COLUMN_SHIFT_MM."""
    if np.abs(seen - want).max() > COLUMN_SHIFT_MM:
        return False
    stretch = np.diff(seen) / np.diff(want)
    return bool(np.abs(stretch - 1).max() <= ROW_STRETCH and
                (len(stretch) < 2 or np.abs(np.diff(stretch)).max() <= ROW_STRETCH_STEP))


def _nearest(values: list[float], y: float) -> float:
    return min(values, key=lambda v: abs(v - y))
