"""Synthetic handwritten digits: jittered pen strokes through per-digit skeletons.

Used at build time to train the score recogniser and, with a different style, by the test fixtures. The
"test" style uses other slant, jitter, thickness and size ranges than "train", so reported accuracy is not
measured on the training distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Skeletons in a unit box (x right, y down); several strokes per digit where a pen would lift.
SKELETONS: dict[str, list[list[tuple[float, float]]]] = {
    "0": [[(0.5, 0.03), (0.2, 0.2), (0.12, 0.5), (0.2, 0.82), (0.5, 0.97), (0.8, 0.82), (0.88, 0.5), (0.8, 0.18),
           (0.5, 0.03)]],
    "1": [[(0.3, 0.25), (0.58, 0.03), (0.55, 0.97)]],
    "2": [[(0.15, 0.25), (0.32, 0.07), (0.6, 0.04), (0.82, 0.2), (0.75, 0.45), (0.15, 0.95), (0.88, 0.93)]],
    "3": [[(0.15, 0.12), (0.45, 0.03), (0.78, 0.15), (0.7, 0.38), (0.42, 0.48), (0.78, 0.6), (0.82, 0.82),
           (0.55, 0.97), (0.15, 0.88)]],
    "4": [[(0.62, 0.97), (0.62, 0.03), (0.1, 0.65), (0.9, 0.65)]],
    "5": [[(0.82, 0.05), (0.28, 0.05), (0.22, 0.45), (0.55, 0.38), (0.82, 0.58), (0.75, 0.88), (0.45, 0.98),
           (0.15, 0.86)]],
    "6": [[(0.75, 0.06), (0.42, 0.2), (0.2, 0.55), (0.25, 0.88), (0.55, 0.97), (0.8, 0.78), (0.68, 0.52),
           (0.38, 0.5), (0.2, 0.65)]],
    "7": [[(0.1, 0.06), (0.9, 0.06), (0.42, 0.97)]],
    "8": [[(0.5, 0.48), (0.22, 0.3), (0.3, 0.06), (0.7, 0.06), (0.78, 0.3), (0.5, 0.48), (0.18, 0.7),
           (0.28, 0.95), (0.72, 0.95), (0.82, 0.7), (0.5, 0.48)]],
    "9": [[(0.8, 0.35), (0.58, 0.06), (0.28, 0.08), (0.18, 0.35), (0.4, 0.52), (0.8, 0.35), (0.72, 0.97)]],
}


@dataclass(frozen=True)
class Style:
    jitter: tuple[float, float]
    slant: tuple[float, float]
    thickness: tuple[float, float]  # stroke width as a share of the glyph height
    aspect: tuple[float, float]
    rotation: tuple[float, float]  # degrees


STYLES = {
    "train": Style(jitter=(0.0, 0.05), slant=(-0.15, 0.35), thickness=(0.06, 0.13), aspect=(0.5, 0.8),
                   rotation=(-8, 8)),
    "test": Style(jitter=(0.02, 0.065), slant=(-0.25, 0.45), thickness=(0.05, 0.16), aspect=(0.45, 0.85),
                  rotation=(-12, 12)),
}


def _smooth(points: np.ndarray, n: int = 24) -> np.ndarray:
    """Catmull-Rom through the control points: a pen moves in curves, not corners."""
    if len(points) < 3:
        return points
    p = np.vstack([points[0], points, points[-1]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0, 1, n, endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(points[-1])
    return np.array(out)


def draw_digit(digit: str, height: int, rng: np.random.Generator, style: str = "train") -> np.ndarray:
    """One handwritten-looking digit, dark ink (0) on white (255), `height` pixels tall, width by aspect."""
    st = STYLES[style]
    aspect = rng.uniform(*st.aspect)
    width = max(4, int(height * aspect))
    pad = int(height * 0.25)
    canvas = np.full((height + 2 * pad, width + 2 * pad), 255, np.uint8)
    slant = rng.uniform(*st.slant)
    jitter = rng.uniform(*st.jitter)
    thick = max(1, round(height * rng.uniform(*st.thickness)))
    for stroke in SKELETONS[digit]:
        pts = np.array(stroke, dtype=np.float64)
        pts = pts + rng.normal(0, jitter, pts.shape)
        pts = _smooth(pts)
        xs = (pts[:, 0] + slant * (1 - pts[:, 1])) * width / (1 + abs(slant)) + pad
        ys = pts[:, 1] * height + pad
        poly = np.stack([xs, ys], axis=1).round().astype(np.int32)
        cv2.polylines(canvas, [poly], False, int(rng.integers(0, 60)), thick, lineType=cv2.LINE_AA)
    angle = rng.uniform(*st.rotation)
    h, w = canvas.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(canvas, m, (w, h), borderValue=255)


def draw_separator(height: int, rng: np.random.Generator) -> np.ndarray:
    """A handwritten decimal comma or dot."""
    size = max(3, int(height * rng.uniform(0.12, 0.2)))
    canvas = np.full((height, size * 2 + 4), 255, np.uint8)
    y = int(height * rng.uniform(0.82, 0.92))
    if rng.random() < 0.6:
        cv2.line(canvas, (size + 2, y - size // 2), (size, y + size), int(rng.integers(0, 60)), max(2, size // 2))
    else:
        cv2.circle(canvas, (size + 2, y), max(1, size // 2), int(rng.integers(0, 60)), -1)
    return canvas
