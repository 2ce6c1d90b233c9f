"""Stage 3, align: map a scanned page onto the template's upright A4 frame at the pipeline dpi.

Markers (ArUco, ids 0..3 at known corners) give a homography; their ids make orientation unambiguous, so
rotated and upside-down pages come out upright. When markers are damaged, the QR code's four corners
(zxing reports them in the code's own orientation) give the transform instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from formsvc import layout


@dataclass(frozen=True)
class Aligned:
    image: np.ndarray  # upright page, PAGE_W x PAGE_H mm at dpi
    method: str  # "markers" | "qr"
    residual_px: float  # mean reprojection error of the points used


def _detector() -> cv2.aruco.ArucoDetector:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.MARKER_DICT))
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    return cv2.aruco.ArucoDetector(dictionary, params)


_DETECTOR = _detector()


def _target_size(dpi: float) -> tuple[int, int]:
    return round(layout.mm_to_px(layout.PAGE_W_MM, dpi)), round(layout.mm_to_px(layout.PAGE_H_MM, dpi))


CORNER_W, CORNER_H = 0.25, 0.18  # share of the image searched at each corner first


def _detect(image: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(id, 4x2 corners) of the markers found, in image pixels.

    The markers sit in the page's corners, so the four corner windows (18 % of the page) are searched first;
    the whole image only when that does not find all four (a photo with the page small or far off centre).
    ArUco over a whole 200 dpi page is a fifth of a page's reading time."""
    h, w = image.shape[:2]
    cw, ch = int(w * CORNER_W), int(h * CORNER_H)
    found: list[tuple[int, np.ndarray]] = []
    for x0, y0 in ((0, 0), (w - cw, 0), (w - cw, h - ch), (0, h - ch)):
        corners, ids, _ = _DETECTOR.detectMarkers(np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw]))
        if ids is not None:
            shift = np.array([x0, y0], np.float32)
            found += [(int(i), q[0] + shift) for i, q in zip(ids.flatten(), corners, strict=True)]
    if len({i for i, _ in found}) < 4:
        corners, ids, _ = _DETECTOR.detectMarkers(image)
        found = [] if ids is None else [(int(i), q[0]) for i, q in zip(ids.flatten(), corners, strict=True)]
    return found


def _marker_points(image: np.ndarray, dpi: float) -> tuple[np.ndarray, np.ndarray]:
    src, dst = [], []
    boxes = layout.marker_boxes()
    seen = set()
    for marker_id, quad in _detect(image):
        if marker_id not in boxes or marker_id in seen:
            continue
        seen.add(marker_id)
        b = boxes[marker_id]
        expected = [(b.left, b.top), (b.left + b.width, b.top), (b.left + b.width, b.top + b.height),
                    (b.left, b.top + b.height)]
        for (x, y), (ex, ey) in zip(quad, expected, strict=True):
            src.append((x, y))
            dst.append((layout.mm_to_px(ex, dpi), layout.mm_to_px(ey, dpi)))
    if not src:
        return np.empty((0, 2), np.float32), np.empty((0, 2), np.float32)
    return np.array(src, np.float32), np.array(dst, np.float32)


def _qr_points(qr_corners: np.ndarray, dpi: float) -> tuple[np.ndarray, np.ndarray]:
    b = layout.qr_box()
    expected = [(b.left, b.top), (b.left + b.width, b.top), (b.left + b.width, b.top + b.height),
                (b.left, b.top + b.height)]
    dst = np.array([(layout.mm_to_px(x, dpi), layout.mm_to_px(y, dpi)) for x, y in expected], np.float32)
    return qr_corners.astype(np.float32), dst


def align(image: np.ndarray, dpi: float, qr_corners: np.ndarray | None = None) -> Aligned | None:
    src, dst = _marker_points(image, dpi)
    method = "markers"
    if len(src) < 12:  # fewer than three markers: add the QR code's corners as anchors
        if qr_corners is None:
            return None
        qs, qd = _qr_points(qr_corners, dpi)
        src, dst = np.vstack([src, qs]), np.vstack([dst, qd])
        method = "markers+qr" if len(src) > 4 else "qr"
    matrix, _ = cv2.findHomography(src, dst, 0 if len(src) == 4 else cv2.RANSAC, 5.0)
    if matrix is None:
        return None
    projected = cv2.perspectiveTransform(src.reshape(-1, 1, 2), matrix).reshape(-1, 2)
    residual = float(np.linalg.norm(projected - dst, axis=1).mean())
    out = cv2.warpPerspective(image, matrix, _target_size(dpi), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return Aligned(out, method, residual)
