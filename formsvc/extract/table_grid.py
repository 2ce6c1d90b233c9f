"""Ruled tables on a scanned page: deskew, find the ruling lines, recover the cell grid.

Tables whose row count varies (a unit's own self-assessment, the committee's candidate list) cannot have fixed
zones, but their ruling lines are the most reliable thing on a scan: long, straight and dark. A morphological
opening with a long horizontal (vertical) kernel keeps only horizontal (vertical) strokes, which text never
has. Cells are the spaces between consecutive lines; two neighbouring base cells whose shared border is missing
are one merged cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from formsvc.layout import mm_to_px

MAX_SKEW_DEG = 5.0


@dataclass(frozen=True)
class Cell:
    row: int  # first base row and column of the cell, 0-based, top-left first
    col: int
    rows: int  # span in base rows / columns (1 unless merged)
    cols: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the interior (inside the ruling lines), deskewed page


@dataclass
class Grid:
    xs: list[int]  # vertical ruling lines, left to right
    ys: list[int]  # horizontal ruling lines, top to bottom
    cells: list[Cell] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.ys) - 1

    @property
    def n_cols(self) -> int:
        return len(self.xs) - 1

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.xs[0], self.ys[0], self.xs[-1], self.ys[-1]

    def row(self, r: int) -> list[Cell]:
        """Cells that start in base row `r`, left to right."""
        return sorted((c for c in self.cells if c.row == r), key=lambda c: c.col)

    def at(self, r: int, c: int) -> Cell | None:
        """The cell covering base row `r`, column `c` (a merged cell covers several)."""
        for cell in self.cells:
            if cell.row <= r < cell.row + cell.rows and cell.col <= c < cell.col + cell.cols:
                return cell
        return None


@dataclass
class PageTables:
    image: np.ndarray  # the page rotated upright; every box refers to it
    angle: float  # degrees the scan was rotated by to make it upright
    lines: np.ndarray  # mask of the ruling lines (255) on `image`, to whiten them out of cell crops
    grids: list[Grid] = field(default_factory=list)


def _px(mm: float, dpi: float) -> int:
    return max(1, round(mm_to_px(mm, dpi)))


def _ink(gray: np.ndarray, dpi: float, *, thin: bool = False) -> np.ndarray:
    """Ink mask (255 = ink). The threshold follows the local paper colour, so shadows and grey scans work; the
    median filter drops scanner noise before it can look like ink, but it would also erase a one-pixel rule
    (a fax), so for rules (`thin`) a light blur stands in and the long opening removes the noise instead."""
    smooth = cv2.GaussianBlur(gray, (3, 3), 0) if thin else cv2.medianBlur(gray, 3)
    block = _px(8, dpi) | 1
    return cv2.adaptiveThreshold(smooth, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)


def _rotate(img: np.ndarray, angle: float, border: int) -> np.ndarray:
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)


def skew_angle(gray: np.ndarray, dpi: float) -> float:
    """Rotation (degrees, ±5) that makes text lines and ruling lines horizontal.

    Projection profiles: rotated to the right angle, the ink's row sums are most peaked (lines and rules fall
    into few rows). A coarse sweep on a small copy, then a fine one around the best coarse angle.
    """
    ink = _ink(gray, dpi)
    scale = min(1.0, 600 / max(ink.shape))
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    def sharpness(angle: float) -> float:
        profile = _rotate(small, angle, 0).astype(np.float32).sum(axis=1)
        return float(np.square(np.diff(profile)).sum())

    coarse = max(np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 0.01, 0.5), key=sharpness)
    fine = max(np.arange(coarse - 0.5, coarse + 0.51, 0.1), key=sharpness)
    return round(float(fine), 2)


def _segments(mask: np.ndarray, horizontal: bool, min_len: int) -> list[tuple[float, int, int]]:
    """(position across, start, end along) of each line component in a mask."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h = stats[i][:4]
        if horizontal and w >= min_len:
            out.append((y + h / 2, int(x), int(x + w)))
        elif not horizontal and h >= min_len:
            out.append((x + w / 2, int(y), int(y + h)))
    return out


def _cluster(positions: list[float], tol: float) -> list[int]:
    """Line positions closer than `tol` are one line (a thick or doubled rule)."""
    out: list[list[float]] = []
    for p in sorted(positions):
        if out and p - out[-1][-1] <= tol:
            out[-1].append(p)
        else:
            out.append([p])
    return [round(sum(g) / len(g)) for g in out]


def _coverage(mask: np.ndarray, horizontal: bool, at: int, start: int, end: int, reach: int) -> float:
    """Share of the border between two base cells that is ruled (0..1)."""
    if end - start < 2:
        return 1.0
    if horizontal:
        band = mask[max(0, at - reach): at + reach + 1, start:end]
        return float((band.max(axis=0) > 0).mean()) if band.size else 0.0
    band = mask[start:end, max(0, at - reach): at + reach + 1]
    return float((band.max(axis=1) > 0).mean()) if band.size else 0.0


def _dense(ink: np.ndarray, horizontal: bool, dpi: float) -> np.ndarray:
    """Where ink runs along one direction with small gaps: a rule broken into dashes by a fax threshold, which an
    opening loses. Only used to decide whether a border between two found lines exists, never to find lines."""
    across = (3, 1) if horizontal else (1, 3)
    window = (_px(5, dpi), 1) if horizontal else (1, _px(5, dpi))
    thick = cv2.dilate(ink, np.ones(across[::-1], np.uint8))
    density = cv2.blur(thick.astype(np.float32) / 255, window)
    return ((density >= 0.6) * 255).astype(np.uint8)


def _grid(hmask: np.ndarray, vmask: np.ndarray, ink: np.ndarray, box: tuple[int, int, int, int],
          dpi: float) -> Grid | None:
    x0, y0, x1, y1 = box
    tol = _px(1.2, dpi)
    min_cell = _px(2.5, dpi)
    hs = [s for s in _segments(hmask[y0:y1 + 1, x0:x1 + 1], True, _px(8, dpi))]
    vs = [s for s in _segments(vmask[y0:y1 + 1, x0:x1 + 1], False, _px(4, dpi))]
    ys = [y + y0 for y in _cluster([p for p, _, _ in hs], tol)]
    xs = [x + x0 for x in _cluster([p for p, _, _ in vs], tol)]
    # Lines closer than a cell can be are a doubled rule, not a row of their own.
    ys = [y for i, y in enumerate(ys) if i == 0 or y - ys[i - 1] >= min_cell]
    xs = [x for i, x in enumerate(xs) if i == 0 or x - xs[i - 1] >= min_cell]
    if len(ys) < 3 or len(xs) < 3:
        return None
    reach = _px(0.6, dpi)
    margin = _px(0.8, dpi)
    hdense, vdense = _dense(ink, True, dpi), _dense(ink, False, dpi)

    def ruled(horizontal: bool, at: int, start: int, end: int) -> bool:
        # Clean rules survive the opening; dashed ones (fax) are nearly continuous in the density mask, which
        # text crossing a merged cell never is.
        opened = _coverage(hmask if horizontal else vmask, horizontal, at, start, end, reach)
        return opened >= 0.5 or _coverage(hdense if horizontal else vdense, horizontal, at, start, end, reach) >= 0.85

    nr, nc = len(ys) - 1, len(xs) - 1
    parent = list(range(nr * nc))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r in range(nr):
        for c in range(nc):
            # Only the middle of a border counts: near the corners the crossing line is always there.
            if c + 1 < nc and not ruled(False, xs[c + 1], ys[r] + margin, ys[r + 1] - margin):
                parent[find(r * nc + c + 1)] = find(r * nc + c)
            if r + 1 < nr and not ruled(True, ys[r + 1], xs[c] + margin, xs[c + 1] - margin):
                parent[find((r + 1) * nc + c)] = find(r * nc + c)
    groups: dict[int, list[tuple[int, int]]] = {}
    for r in range(nr):
        for c in range(nc):
            groups.setdefault(find(r * nc + c), []).append((r, c))
    pad = _px(0.5, dpi)
    cells = []
    for members in groups.values():
        r0, r1 = min(r for r, _ in members), max(r for r, _ in members)
        c0, c1 = min(c for _, c in members), max(c for _, c in members)
        cells.append(Cell(r0, c0, r1 - r0 + 1, c1 - c0 + 1,
                          (xs[c0] + pad, ys[r0] + pad, xs[c1 + 1] - pad, ys[r1 + 1] - pad)))
    cells.sort(key=lambda c: (c.row, c.col))
    return Grid(xs=xs, ys=ys, cells=cells)


def _table_quad(gray: np.ndarray, dpi: float) -> np.ndarray | None:
    """Corners (top-left, top-right, bottom-right, bottom-left) of the page's largest ruled table: its rules are
    one connected stroke in the ink, whatever the perspective."""
    ink = _ink(gray, dpi, thin=True)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n < 2:
        return None
    big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT]))
    if stats[big, cv2.CC_STAT_WIDTH] < _px(60, dpi) or stats[big, cv2.CC_STAT_HEIGHT] < _px(30, dpi):
        return None
    contours, _ = cv2.findContours(((labels == big) * 255).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea)).reshape(-1, 2).astype(np.float32)
    # The extreme points along the diagonals are the table's corners (tilts stay well under 45°).
    total, diff = hull.sum(axis=1), hull[:, 0] - hull[:, 1]
    return np.array([hull[total.argmin()], hull[diff.argmax()], hull[total.argmax()], hull[diff.argmin()]],
                    np.float32)


def rectify(gray: np.ndarray, dpi: float) -> np.ndarray:
    """Undo a phone photo's perspective, taking the largest table's outline as the rectangle it was printed as.
    A scan (outline already a rectangle, at most turned) comes back unchanged: rotation is the deskew's job."""
    quad = _table_quad(gray, dpi)
    if quad is None:
        return gray
    tl, tr, br, bl = quad
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    # Opposite sides of equal length and a right angle: a turned rectangle, nothing to undo.
    sides = abs(np.linalg.norm(tr - tl) - np.linalg.norm(br - bl)) + abs(np.linalg.norm(bl - tl) -
                                                                         np.linalg.norm(br - tr))
    top, left = tr - tl, bl - tl
    cos = abs(float(np.dot(top, left) / (np.linalg.norm(top) * np.linalg.norm(left) + 1e-6)))
    if sides < _px(1.0, dpi) and cos < 0.01:
        return gray
    x, y = float(tl[0]), float(tl[1])
    target = np.array([[x, y], [x + width, y], [x + width, y + height], [x, y + height]], np.float32)
    matrix = cv2.getPerspectiveTransform(quad, target)
    h, w = gray.shape
    return cv2.warpPerspective(gray, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)


def find_tables(gray: np.ndarray, dpi: float, *, deskew: bool = True) -> PageTables:
    """Every ruled table (at least 2 x 2 cells) on a page, top to bottom. With `deskew`, a photographed page's
    perspective is undone and a scan's tilt straightened first."""
    if deskew:
        gray = rectify(gray, dpi)
    angle = skew_angle(gray, dpi) if deskew else 0.0
    image = _rotate(gray, angle, 255) if angle else gray
    ink = _ink(image, dpi, thin=True)
    # A short closing along each direction first bridges the gaps that fax thresholds and noise leave in rules.
    hk, vk = _px(10, dpi), _px(5, dpi)
    hbridged = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (_px(0.4, dpi), 1)))
    vbridged = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, _px(0.4, dpi))))
    hmask = cv2.morphologyEx(hbridged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (hk, 1)))
    vmask = cv2.morphologyEx(vbridged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, vk)))
    lines = cv2.bitwise_or(hmask, vmask)
    joined = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    grids = []
    for i in range(1, n):
        x, y, w, h = (int(v) for v in stats[i][:4])
        if w < _px(30, dpi) or h < _px(8, dpi):
            continue  # an underline or a lone rule, not a table
        grid = _grid(hmask, vmask, ink, (x, y, x + w - 1, y + h - 1), dpi)
        if grid is not None:
            grids.append(grid)
    grids.sort(key=lambda g: g.ys[0])
    return PageTables(image=image, angle=angle, lines=lines, grids=grids)
