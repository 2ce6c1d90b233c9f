"""Stage 3, align: map a scanned page onto the template's upright A4 frame at the pipeline dpi.

Markers (ArUco, ids 0..3 at known corners) give a homography; their ids make orientation unambiguous, so
rotated and upside-down pages come out upright. When markers are damaged, they are looked for again on copies
mended for what breaks them (printer streaks, a dithering scanner's dots); only then do the codes' corners
(zxing reports them in the code's own orientation) stand in for the missing ones. A code's corners alone are a
poor frame for a homography: its perspective, fitted on a 17 mm square and extrapolated over a 297 mm page, puts
the score boxes half a row off. Anchors that do not span the page (a sheet laid askew on a flatbed has its corner
markers cut off by the glass from ~4 degrees) fit rotation, scale and shift only, which a code's square fixes well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np

from formsvc import layout


@dataclass(frozen=True)
class Aligned:
    image: np.ndarray  # upright page, PAGE_W x PAGE_H mm at dpi
    method: str  # "markers" | "qr"
    residual_px: float  # mean reprojection error of the points used
    matrix: np.ndarray | None = None  # the homography used (source image -> `image`)
    bent: bool = False  # a marker found lies off its place by the matrix (PageMatrix.bent)
    bend_mm: float = 0.0  # how far off its place the furthest marker found lies (PageMatrix.bend_mm)

    def warp(self, other: np.ndarray) -> np.ndarray:
        """Another image of the same page (e.g. its plain grey levels) put where `image` is."""
        assert self.matrix is not None
        h, w = self.image.shape[:2]
        return cv2.warpPerspective(other, self.matrix, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=255)


def _detector() -> cv2.aruco.ArucoDetector:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.MARKER_DICT))
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    return cv2.aruco.ArucoDetector(dictionary, params)


_DETECTOR = _detector()


def _target_size(dpi: float) -> tuple[int, int]:
    return round(layout.mm_to_px(layout.PAGE_W_MM, dpi)), round(layout.mm_to_px(layout.PAGE_H_MM, dpi))


STREAK_PX = 5  # px at the page raster: white printer streaks up to this thick are closed (mended)
WIDE_STREAK_PX = 9  # then these: a printer low on ink leaves bands of 4-6 px (a marker's cells are ~13 px at 200 dpi)
DITHER_SIGMA = 1.5  # px at the page raster: smooths a dithered scan's dots back into grey for the markers
CORNER_W, CORNER_H = 0.25, 0.18  # share of the image searched at each corner first
SPAN = 0.5  # share of the page's width and height anchors must spread over to pin a perspective
# Markers found by their patterns (matched_markers): sizes tried around the nominal one (a scan's scale is within a
# few percent), the least correlation taken, and how far off their relative places may be.
MATCH_SCALES = (0.92, 1.0, 1.08)
MATCH_MIN = 0.5
MATCH_RESIDUAL_MM = 1.0
# A marker with a corner further than this past the image's edge by the matrix found was cut off by the glass or the
# photo's frame (markers_on_image): mended copies of the page are not searched for it. One whose corners are all on
# the image, 2 px from its edge, was found on a mended copy (held-out seed 53000, skewed).
OFF_IMAGE_MM = 0.5
# A marker found that the page's matrix puts further than this from its place is not on the plane the others are
# (a fold, a curl): the page is not one plane and boxes may be read off their rows. On 624 held-out capture pages
# (seeds 17000, 53000, 55000, nine kinds of capture) every marker found lands within 1.8 mm but on one page, a
# print-and-scan fold that put its boxes a row off: a marker 44 mm off.
OUTLYING_MM = 3.0


def detect_markers(image: np.ndarray, whole: bool = False, corners_only: bool = False
                   ) -> list[tuple[int, np.ndarray]]:
    """(id, 4x2 corners) of the markers found, in image pixels (`whole`: search the whole image at once).

    The markers sit in the page's corners, so the four corner windows (18 % of the page) are searched first;
    the whole image only when that does not find all four (a photo with the page small or far off centre) and
    `corners_only` is not set. ArUco over a whole 200 dpi page is a fifth of a page's reading time."""
    found: list[tuple[int, np.ndarray]] = []
    for x0, y0, window in [] if whole else _corner_windows(image):
        corners, ids, _ = _DETECTOR.detectMarkers(np.ascontiguousarray(window))
        if ids is not None:
            shift = np.array([x0, y0], np.float32)
            found += [(int(i), q[0] + shift) for i, q in zip(ids.flatten(), corners, strict=True)]
    if len({i for i, _ in found}) < 4 and not corners_only:
        corners, ids, _ = _DETECTOR.detectMarkers(image)
        found = [] if ids is None else [(int(i), q[0]) for i, q in zip(ids.flatten(), corners, strict=True)]
    return found


def _corner_windows(image: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(x0, y0, window) of the four corner windows, top-left, top-right, bottom-right, bottom-left."""
    h, w = image.shape[:2]
    cw, ch = int(w * CORNER_W), int(h * CORNER_H)
    return [(x0, y0, image[y0:y0 + ch, x0:x0 + cw])
            for x0, y0 in ((0, 0), (w - cw, 0), (w - cw, h - ch), (0, h - ch))]


@dataclass(frozen=True)
class _Pattern:
    marker_id: int
    turns: int  # quarter turns anticlockwise, as np.rot90
    px: int  # the marker's side
    margin: int  # the white margin around it in `template`, a sixth of its side (its quiet zone)
    template: np.ndarray
    coarse: np.ndarray  # the same at half size, searched first


@lru_cache(maxsize=4)
def _patterns(side: int) -> tuple[_Pattern, ...]:
    """Every marker in every orientation at the sizes MATCH_SCALES makes of `side` px."""
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.MARKER_DICT))
    out = []
    for marker_id in range(4):
        base = cv2.aruco.generateImageMarker(dictionary, marker_id, 60)
        for turns in range(4):
            turned = np.ascontiguousarray(np.rot90(base, turns))
            for scale in MATCH_SCALES:
                px = round(side * scale)
                q = px // 6
                t = cv2.copyMakeBorder(cv2.resize(turned, (px, px), interpolation=cv2.INTER_NEAREST), q, q, q, q,
                                       cv2.BORDER_CONSTANT, value=255)
                out.append(_Pattern(marker_id, turns, px, q, t, cv2.resize(t, None, fx=0.5, fy=0.5,
                                                                           interpolation=cv2.INTER_AREA)))
    return tuple(out)


def _best_match(window: np.ndarray, side: int) -> tuple[float, _Pattern, int, int] | None:
    """(correlation, pattern, x, y) of the best match in `window`: every pattern searched at half size (a quarter
    of the work), the best one placed again at full size within a few pixels."""
    small = cv2.resize(window, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    top: tuple[float, _Pattern, int, int] | None = None
    for pattern in _patterns(side):
        if small.shape[0] < pattern.coarse.shape[0] or small.shape[1] < pattern.coarse.shape[1]:
            continue
        _, score, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(small, pattern.coarse, cv2.TM_CCOEFF_NORMED))
        if top is None or score > top[0]:
            top = (score, pattern, x, y)
    if top is None:
        return None
    _, pattern, x, y = top
    th, tw = pattern.template.shape
    x0, y0 = max(0, 2 * x - 4), max(0, 2 * y - 4)
    near = window[y0:y0 + th + 8, x0:x0 + tw + 8]
    if near.shape[0] < th or near.shape[1] < tw:
        return None
    _, score, _, (dx, dy) = cv2.minMaxLoc(cv2.matchTemplate(near, pattern.template, cv2.TM_CCOEFF_NORMED))
    return score, pattern, x0 + dx, y0 + dy


def matched_markers(image: np.ndarray, dpi: float) -> list[tuple[int, np.ndarray]]:
    """(id, 4x2 corners) of the markers found by correlating their known patterns in the corner windows, at the
    page's own scale: for a copy whose dithering or mottle leaves ArUco no clean square to find (the patterns
    still show). Only corners whose best match says one and the same page orientation (id and turn both: marker id
    i sits in corner (i - turns) mod 4), at least three, each at MATCH_MIN or better."""
    side = round(layout.mm_to_px(layout.MARKER_SIZE_MM, dpi))
    found: list[tuple[int, int, np.ndarray]] = []
    for corner, (x0, y0, window) in enumerate(_corner_windows(image)):
        match = _best_match(window, side)
        if match is None:
            continue
        score, p, x, y = match
        if score < MATCH_MIN or p.marker_id != (corner + p.turns) % 4:
            continue
        left, upper = x0 + x + p.margin, y0 + y + p.margin
        square = np.array([(left, upper), (left + p.px, upper), (left + p.px, upper + p.px), (left, upper + p.px)],
                          np.float32)
        # The marker's own first corner is its top-left as printed: turned with it.
        found.append((p.marker_id, p.turns, np.roll(square, p.turns, axis=0)))
    agreed = Counter(turns for _, turns, _ in found).most_common(1)
    if not agreed or agreed[0][1] < 3:
        return []
    return [(marker_id, quad) for marker_id, turns, quad in found if turns == agreed[0][0]]


def _corners_px(box: layout.Box, dpi: float) -> np.ndarray:
    """The template box's corners in pixels at `dpi` (4 x 2), in the order ArUco and zxing give a square's:
    top-left, top-right, bottom-right, bottom-left."""
    return np.array([(layout.mm_to_px(x, dpi), layout.mm_to_px(y, dpi))
                     for x, y in ((box.left, box.top), (box.left + box.width, box.top),
                                  (box.left + box.width, box.top + box.height), (box.left, box.top + box.height))],
                    np.float64)


def _marker_points(found: Sequence[tuple[int, np.ndarray]], dpi: float) -> tuple[np.ndarray, np.ndarray]:
    src, dst = [], []
    boxes = layout.marker_boxes()
    seen = set()
    for marker_id, quad in found:
        if marker_id not in boxes or marker_id in seen:
            continue
        seen.add(marker_id)
        src.append(quad)
        dst.append(_corners_px(boxes[marker_id], dpi))
    if not src:
        return np.empty((0, 2), np.float32), np.empty((0, 2), np.float32)
    return np.vstack(src).astype(np.float32), np.vstack(dst).astype(np.float32)


def _code_points(corners: np.ndarray, dpi: float, box: layout.Box) -> tuple[np.ndarray, np.ndarray]:
    return corners.astype(np.float32), _corners_px(box, dpi).astype(np.float32)


def _spans_page(dst: np.ndarray, groups: int, dpi: float) -> bool:
    """Anchors that pin a perspective: three places or more, spread over most of the page both ways."""
    w, h = _target_size(dpi)
    extent = dst.max(axis=0) - dst.min(axis=0)
    return groups >= 3 and extent[0] >= SPAN * w and extent[1] >= SPAN * h


def _fit(src: np.ndarray, dst: np.ndarray, perspective: bool) -> np.ndarray | None:
    """Homography when the anchors pin one; else rotation, scale and shift only (a flatbed's skew), which a
    code's 17 mm square or two markers on one edge fix well, where a homography from them tilts the far side of
    the page by rows."""
    if perspective:
        matrix, _ = cv2.findHomography(src, dst, 0 if len(src) == 4 else cv2.RANSAC, 5.0)
        return matrix
    affine, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return None if affine is None else np.vstack([affine, [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PageMatrix:
    matrix: np.ndarray  # 3x3 homography: image pixels -> upright template pixels at `dpi`
    dpi: float
    method: str
    residual_px: float
    markers: int = 0  # how many of the four markers it rests on
    outlying: int = 0  # of those, how many it puts more than OUTLYING_MM from their places
    bend_mm: float = 0.0  # how far from its place it puts the furthest of them (a corner's worst)
    mended: bool = False  # found on a mended copy of the page (best_matrix), not on the page as it is

    @property
    def bent(self) -> bool:
        """The markers found do not lie on one plane: the fit followed some of them (RANSAC), and boxes near the
        others may be read from the wrong place (a row off)."""
        return self.outlying > 0


def page_matrix(image: np.ndarray, dpi: float, codes: Sequence[tuple[np.ndarray, layout.Box]] = (),
                min_markers: int = 3, corners_only: bool = False) -> PageMatrix | None:
    """The page's homography onto the template, from the markers (at least `min_markers`) and, when fewer are
    found, the corners of the codes read (`codes`: each code's corners with the box it has on the page). Anchors
    that do not span the page (a skewed flatbed scan cuts the corner markers off) give a similarity instead.
    `corners_only`: markers searched for in the image's corner windows only (detect_markers)."""
    src, dst = _marker_points(detect_markers(image, corners_only=corners_only), dpi)
    markers = len(src) // 4
    method = "markers"
    if markers < min_markers:  # too few markers: add the codes' corners as anchors
        if not codes:
            return None
        for corners, box in codes:
            cs, cd = _code_points(corners, dpi, box)
            src, dst = np.vstack([src, cs]), np.vstack([dst, cd])
        method = "markers+qr" if markers else "qr"
    return _fitted(src, dst, dpi, method, markers, _spans_page(dst, len(src) // 4, dpi))


def _fitted(src: np.ndarray, dst: np.ndarray, dpi: float, method: str, markers: int, perspective: bool
            ) -> PageMatrix | None:
    """The matrix fitted on the anchors (_fit), with the mean distance its anchors land from their places."""
    matrix = _fit(src, dst, perspective)
    if matrix is None:
        return None
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), matrix).reshape(-1, 2)
    off = np.linalg.norm(projected - dst, axis=1)
    # The markers are the first anchors (page_matrix appends the codes' corners after them).
    worst = off[: markers * 4].reshape(-1, 4).max(axis=1)
    outlying = int((worst > layout.mm_to_px(OUTLYING_MM, dpi)).sum())
    bend_mm = float(worst.max()) * layout.MM_PER_INCH / dpi if markers else 0.0
    return PageMatrix(matrix, dpi, method, float(off.mean()), markers, outlying, bend_mm)


def warp_box(image: np.ndarray, pm: PageMatrix, box: layout.Box, px_per_mm: float,
             pad_mm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The template's `box` (plus `pad_mm`) cut straight from the source image at `px_per_mm`, which may be
    finer than the page raster: a small code is decoded at the resolution it needs. Also returns the crop ->
    image homography, to map what is found in the crop back."""
    k = px_per_mm
    s = k * layout.MM_PER_INCH / pm.dpi
    to_crop = np.array([[s, 0, -(box.left - pad_mm) * k], [0, s, -(box.top - pad_mm) * k], [0, 0, 1]]) @ pm.matrix
    size = (round((box.width + 2 * pad_mm) * k), round((box.height + 2 * pad_mm) * k))
    crop = cv2.warpPerspective(image, to_crop, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=255)
    return crop, np.linalg.inv(to_crop)


def mended(image: np.ndarray, vertical: bool = True, px: int = STREAK_PX) -> np.ndarray:
    """The page with white streaks up to `px` thick closed (a printer low on ink leaves them through every dark
    area; they break the markers' and codes' squares): a grey-level opening along the streaks' cross direction."""
    kernel = np.ones((px, 1) if vertical else (1, px), np.uint8)
    return cv2.morphologyEx(image, cv2.MORPH_OPEN, kernel)


def mended_views(image: np.ndarray) -> Iterator[np.ndarray]:
    """Copies of the page mended for what breaks markers and codes: printer streaks (closed along either
    direction), a dithering scanner's dots (smoothed back into grey), then wider streaks, last the dots smoothed
    and the light evened out (a dark photocopy or glare leaves a marker's white margin no brighter than the page
    around it)."""
    yield mended(image)
    yield mended(image, vertical=False)
    smooth = cv2.GaussianBlur(image, (0, 0), DITHER_SIGMA)
    yield smooth
    yield mended(image, px=WIDE_STREAK_PX)
    yield cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(smooth)


def best_matrix(image: np.ndarray, dpi: float, codes: Sequence[tuple[np.ndarray, layout.Box]] = (),
                min_markers: int = 3, as_is: PageMatrix | None = None) -> tuple[PageMatrix, np.ndarray] | None:
    """The matrix resting on the most markers, found on the page as it is or on a mended copy (and the image it
    was found on); the code's corners join in only when fewer than `min_markers` are found anywhere. Without codes
    and with fewer than two markers anywhere, the markers found by their patterns (matched_matrix). `as_is`: the
    page as it is already searched (page_matrix with the same codes and min_markers), not searched again.

    The mended copies are not searched once every marker not found lies off the image by the matrix found
    (markers_on_image: a flatbed's glass cut it off): no copy can show it, and searching six copies of a whole page
    for it was three fifths of a skewed scan's reading time. On a page that fills its image (its markers, where
    found, in the corner windows) the mended copies are searched in the corner windows only: what mending brings
    back (streaks, dots, a dark copy) is a scanner's, and a scan fills its image; searching each copy whole was a
    sixth of a dithered page's reading time and found no marker the windows had not (528 kept capture pages)."""
    best: tuple[PageMatrix, np.ndarray] | None = None
    corners_only = False
    for n, view in enumerate((image, *mended_views(image))):
        pm = as_is if n == 0 and as_is is not None else page_matrix(view, dpi, codes, min_markers=min_markers,
                                                                      corners_only=corners_only)
        if n == 0:
            corners_only = pm is None or _fills_image(pm, image.shape[:2])
        if pm is not None and (best is None or pm.markers > best[0].markers):
            best = (pm if n == 0 else replace(pm, mended=True), view)
            if pm.markers >= markers_on_image(pm, image.shape[:2]):
                break
    if not codes and (best is None or best[0].markers < 2):
        # A page a code identified is framed by the codes; correlating patterns costs 0.07-0.1 s a page.
        matched = matched_matrix(image, dpi)
        if matched is not None:
            best = (matched, image)
    return best


def markers_on_image(pm: PageMatrix, shape: tuple[int, ...]) -> int:
    """How many of the four markers `pm` puts on an image of `shape` (h, w): all but those with a corner more than
    OFF_IMAGE_MM past its edge, which ArUco finds on no copy of the page (a 4-6 degree flatbed skew puts corners
    10-60 px off the image). The margin is the matrix's own error: a marker it puts just past the edge may be on it."""
    h, w = shape[0], shape[1]
    slack = layout.mm_to_px(OFF_IMAGE_MM, pm.dpi) * _image_px_per_page_px(np.linalg.inv(pm.matrix), pm.dpi)
    return sum(bool(np.all((xy >= -slack) & (xy <= np.array([w - 1, h - 1]) + slack))) for xy in _marker_corners(pm))


def _fills_image(pm: PageMatrix, shape: tuple[int, ...]) -> bool:
    """Whether `pm` puts every marker's centre inside a corner window (detect_markers) of an image of `shape`
    (h, w)."""
    h, w = shape[0], shape[1]
    cw, ch = w * CORNER_W, h * CORNER_H
    for xy in _marker_corners(pm):
        x, y = xy.mean(axis=0)
        if not (x < cw or x > w - cw) or not (y < ch or y > h - ch):
            return False
    return True


def _marker_corners(pm: PageMatrix) -> list[np.ndarray]:
    """Each marker's corners (4 x 2) where `pm` puts them on the image."""
    to_image = np.linalg.inv(pm.matrix)
    return [cv2.perspectiveTransform(_corners_px(box, pm.dpi)[None], to_image)[0]
            for box in layout.marker_boxes().values()]


def _image_px_per_page_px(to_image: np.ndarray, dpi: float) -> float:
    """The scale `to_image` maps template pixels at the page's centre by (a phone photo's page is smaller than
    the template)."""
    cx, cy = layout.mm_to_px(layout.PAGE_W_MM / 2, dpi), layout.mm_to_px(layout.PAGE_H_MM / 2, dpi)
    pts = cv2.perspectiveTransform(np.array([[(cx, cy), (cx + 100, cy)]], np.float64), to_image)[0]
    return float(np.linalg.norm(pts[1] - pts[0]) / 100)


def matched_matrix(image: np.ndarray, dpi: float) -> PageMatrix | None:
    """The homography from the markers found by their patterns (matched_markers), when they sit where the
    template puts them relative to each other (within MATCH_RESIDUAL_MM)."""
    src, dst = _marker_points(matched_markers(image, dpi), dpi)
    if len(src) < 12:
        return None
    pm = _fitted(src, dst, dpi, "markers_matched", len(src) // 4, True)
    return None if pm is None or pm.residual_px > layout.mm_to_px(MATCH_RESIDUAL_MM, dpi) else pm


def align(image: np.ndarray, dpi: float, codes: Sequence[tuple[np.ndarray, layout.Box]] = (),
          fallback: PageMatrix | None = None) -> Aligned | None:
    """The upright page; `fallback` (a matrix found from markers on a mended copy, or from just two) when only
    the codes' corners or nothing is found on the page as it is. Fewer than three markers on the page as
    it is: the mended copies are searched before the code's corners are trusted (a fallback resting on three or
    more markers is that search's answer already: identify_own_page made it over the same copies). A fallback
    resting on three or more markers of the page as it is is what searching it again would give (the codes' corners
    join only when fewer are found)."""
    as_is = fallback is not None and fallback.method == "markers" and not fallback.mended and fallback.markers >= 3
    pm = fallback if as_is else page_matrix(image, dpi, codes)
    if pm is None or pm.markers < 3:
        if fallback is not None and fallback.markers >= 3:
            found: PageMatrix | None = fallback
        elif fallback is not None and not codes:
            # The fallback is the best the mended copies gave (identify_own_page): fewer than three markers on
            # every one of them, so only the markers matched by their patterns are left to try (1-1.5 s saved).
            found = fallback if fallback.method == "markers_matched" else matched_matrix(image, dpi)
        else:
            best = best_matrix(image, dpi, codes, as_is=pm)
            found = None if best is None else best[0]
        pm = pm if found is None or (pm is not None and found.markers <= pm.markers) else found
    if fallback is not None and (pm is None or pm.method == "qr"):
        pm = fallback
    if pm is None:
        return None
    out = cv2.warpPerspective(image, pm.matrix, _target_size(dpi), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return Aligned(out, pm.method, pm.residual_px, pm.matrix, pm.bent, pm.bend_mm)
