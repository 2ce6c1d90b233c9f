"""Two pages in one image: an open booklet or two sheets laid side by side and photographed (or scanned) at once.

Only landscape images are looked at (a portrait A4 page is never a spread). formsvc's markers say where each page
is: every page has ids 0 and 3 on its left edge and 1 and 2 on its right, so a spread shows the left page's right
column of markers, then the right page's left column; the cut goes between them. An image that does not show two
pages' markers is returned whole, as one page.
"""

from __future__ import annotations

import cv2
import numpy as np

from formsvc.extract.align import detect_markers

LOOK_MAX_SIDE = 2400  # px: markers are found on a copy this size; the cut is made on the full image
LEFT_EDGE, RIGHT_EDGE = (0, 3), (1, 2)


def _cut(markers: list[tuple[int, np.ndarray]]) -> float | None:
    """x where the left page ends and the right one begins, from the markers' centres, or None."""
    rights = sorted(float(q[:, 0].mean()) for i, q in markers if i in RIGHT_EDGE)
    lefts = sorted(float(q[:, 0].mean()) for i, q in markers if i in LEFT_EDGE)
    if len(rights) < 2 or len(lefts) < 2:
        return None
    # The left page's left edge, then its right edge, then the right page's left edge, then its right edge.
    inner_right = [x for x in rights if x > lefts[0] and x < lefts[-1]]
    inner_left = [x for x in lefts if inner_right and x > max(inner_right)]
    if not inner_right or not inner_left:
        return None
    cut = (max(inner_right) + min(inner_left)) / 2

    def a_page(lo: float, hi: float) -> bool:  # a left edge, then a right edge, both within lo..hi
        return any(lo < a < b < hi for a in lefts for b in rights)

    return cut if a_page(-1.0, cut) and a_page(cut, float("inf")) else None


def split_spread(image: np.ndarray) -> list[tuple[int, int]]:
    """Column ranges of the pages in `image`: two when it holds two formsvc pages side by side (upright or upside
    down), else the whole width."""
    h, w = image.shape[:2]
    whole = [(0, w)]
    if w <= h * 1.15:
        return whole
    scale = min(1.0, LOOK_MAX_SIDE / max(h, w))
    small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                  interpolation=cv2.INTER_AREA)
    markers = detect_markers(small, whole=True)
    ids = [i for i, _ in markers]
    if len(markers) < 5 or len(set(ids)) == len(ids):
        return whole  # one page's markers at most: not a spread
    for turned in (False, True):
        found = markers
        if turned:  # upside down: the same markers as seen after turning the image half a turn
            sw = small.shape[1]
            found = [(i, np.column_stack([sw - 1 - q[:, 0], q[:, 1]])) for i, q in markers]
        cut = _cut(found)
        if cut is None:
            continue
        x = round((small.shape[1] - 1 - cut if turned else cut) / scale)
        if not 0.2 * w < x < 0.8 * w:
            continue
        halves = [(0, x), (x, w)]
        # Upside down, the page on the left is the second one.
        return halves[::-1] if turned else halves
    return whole
