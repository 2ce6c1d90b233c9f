"""Handwritten digits for training and fixtures: synthetic pen strokes, real MNIST glyphs, whole score boxes.

Synthetic digits are jittered pen strokes through per-digit skeletons, including the shapes Vietnamese writers
use (a 7 with a crossbar, a 1 with a long flag, an open 4). Real digits are MNIST glyphs (digits_train.mnist_digits
says which ones each caller may use) turned, sheared, elastically distorted and thickened. compose_box writes a
value ("10", "7,5") from either into a box the way a person does, sometimes over the frame's edge and in blue
ballpoint as a grey scanner renders it. The "test" synthetic style uses other slant, jitter, thickness and size
ranges than "train", so accuracy reported on it is not measured on the training distribution.
"""

from __future__ import annotations

from collections.abc import Callable
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


# How else people write these digits (Vietnamese school hands especially): picked at VARIANT_SHARE.
VARIANTS: dict[str, list[list[list[tuple[float, float]]]]] = {
    "7": [[[(0.1, 0.06), (0.9, 0.06), (0.42, 0.97)], [(0.3, 0.52), (0.82, 0.5)]],  # crossbar
          [[(0.08, 0.2), (0.12, 0.06), (0.9, 0.06), (0.45, 0.97)], [(0.32, 0.5), (0.78, 0.5)]]],
    "1": [[[(0.12, 0.42), (0.6, 0.03), (0.56, 0.97)]],  # long flag
          [[(0.15, 0.35), (0.6, 0.03), (0.56, 0.97)], [(0.3, 0.97), (0.82, 0.97)]]],  # flag and foot
    "4": [[[(0.42, 0.03), (0.12, 0.62), (0.9, 0.62)], [(0.7, 0.25), (0.7, 0.97)]]],  # open, two strokes
    "9": [[[(0.8, 0.3), (0.55, 0.05), (0.25, 0.1), (0.2, 0.38), (0.45, 0.5), (0.8, 0.3), (0.8, 0.97)]]],
    "2": [[[(0.15, 0.25), (0.35, 0.05), (0.7, 0.08), (0.75, 0.38), (0.15, 0.95), (0.3, 0.8), (0.88, 0.93)]]],
}
VARIANT_SHARE = 0.5


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
    strokes = SKELETONS[digit]
    if digit in VARIANTS and rng.random() < VARIANT_SHARE:
        strokes = VARIANTS[digit][int(rng.integers(0, len(VARIANTS[digit])))]
    for stroke in strokes:
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


def elastic(img: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Simard's elastic distortion: a smooth random displacement field, as a hand wobbles."""
    h, w = img.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + dx, gy + dy, cv2.INTER_LINEAR, borderValue=0)


def draw_mnist(glyph: np.ndarray, height: int, rng: np.random.Generator, *, augment: bool = True) -> np.ndarray:
    """A 28x28 MNIST digit (ink bright) as dark ink (0) on white (255), `height` pixels tall.

    With `augment`: turned, sheared, squeezed, elastically distorted and thinned or thickened, the variation
    2,000 real samples need to stand for many writers. Without: only scaled, as the writer wrote it.
    """
    img: np.ndarray = glyph.reshape(28, 28).astype(np.float32) / 255.0
    img = cv2.copyMakeBorder(img, 8, 8, 8, 8, cv2.BORDER_CONSTANT, value=0)
    if augment:
        img = elastic(img, rng, alpha=float(rng.uniform(0, 2.2)), sigma=float(rng.uniform(3.0, 4.5)))
        m: np.ndarray = cv2.getRotationMatrix2D((22, 22), float(rng.uniform(-14, 14)), 1.0)
        m[0, 1] += float(rng.uniform(-0.3, 0.3))
        m[0, :] *= float(rng.uniform(0.75, 1.2))
        m[0, 2] += 22 - (m[0, 0] * 22 + m[0, 1] * 22 + m[0, 2])
        img = cv2.warpAffine(img, m, (44, 44), flags=cv2.INTER_LINEAR, borderValue=0)
    ys, xs = np.nonzero(img > 0.15)
    if len(xs) == 0:
        return np.full((height, max(4, height // 2)), 255, np.uint8)
    img = img[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    scale = height / img.shape[0]
    img = cv2.resize(img, (max(2, round(img.shape[1] * scale)), height), interpolation=cv2.INTER_CUBIC)
    if augment:
        k = int(rng.integers(-1, 3)) * max(1, height // 40)  # thinner (erode) or thicker (dilate) pen
        if k > 0:
            img = cv2.dilate(img, np.ones((k + 1, k + 1), np.uint8))
        elif k < 0:
            img = cv2.erode(img, np.ones((-k + 1, -k + 1), np.uint8))
    ink = np.clip(img, 0, 1)
    pad = max(2, height // 4)  # as draw_digit pads, so compose_box lines both up alike
    out = (255 - ink * 255).astype(np.uint8)
    return cv2.copyMakeBorder(out, pad, pad, pad // 2, pad // 2, cv2.BORDER_CONSTANT, value=255)


Glyph = Callable[[str, int, np.random.Generator], np.ndarray]


def compose_box(value: str, size_px: tuple[int, int], rng: np.random.Generator, glyph: Glyph, *,
                frame: bool = False, overflow: float = 0.0, blue: float = 0.0) -> np.ndarray:
    """`value` ("8", "10", "7,5") written in a white (h, w) box, one glyph per character from `glyph`.

    frame: draw the box's printed frame. overflow: probability that the writing runs a little over the top or
    bottom edge (people write bigger than the box). blue: probability of blue ballpoint, rendered as a scanner's
    grey (lighter, uneven ink) rather than black.
    """
    h, w = size_px
    canvas = np.full((h, w), 255, np.uint8)
    if value:
        over = rng.random() < overflow
        height = int(h * (rng.uniform(0.7, 0.85) if over else rng.uniform(0.5, 0.72)))
        glyphs = []
        for ch in value:
            if ch in ",.":
                glyphs.append(draw_separator(height + int(height * 0.5), rng))
            else:
                g = glyph(ch, height, rng)
                if g.shape[0] > height + int(height * 0.5):
                    g = cv2.resize(g, (g.shape[1], height + int(height * 0.5)), interpolation=cv2.INTER_AREA)
                glyphs.append(g)
        gh = max(g.shape[0] for g in glyphs)
        # Glyphs are drawn with a quarter of their height free above and below: top-aligned, the digits share a
        # baseline and a comma sits on it.
        row = np.hstack([cv2.copyMakeBorder(g, 0, gh - g.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=255)
                         for g in glyphs])
        scale = min(1.0, (w * 0.9) / row.shape[1], (h * (1.2 if over else 0.95)) / row.shape[0])
        if scale < 1:
            row = cv2.resize(row, (max(1, int(row.shape[1] * scale)), max(1, int(row.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        if rng.random() < blue:
            # Blue ballpoint through a grey scanner: ink at 90..150 instead of near black, unevenly laid down.
            level = rng.uniform(90, 150)
            streak = cv2.GaussianBlur(rng.normal(0, 1, row.shape).astype(np.float32), (0, 0), 3) * 60
            ink = (255 - row.astype(np.float32)) / 255
            row = np.clip(255 - ink * (255 - level - streak), 0, 255).astype(np.uint8)
        rh, rw = row.shape
        y = (h - rh) // 2 + int(rng.integers(-2, 3))
        if over:
            y += int(rng.choice([-1, 1]) * rng.uniform(0.04, 0.1) * h)  # a little over the top or bottom edge
        x = (w - rw) // 2 + int(rng.integers(-4, 5))
        x = max(0, min(x, w - rw))
        sy0, sy1 = max(0, -y), min(rh, h - y)  # rows of the writing that land inside the crop
        y0 = max(0, y)
        canvas[y0:y0 + sy1 - sy0, x:x + rw] = np.minimum(canvas[y0:y0 + sy1 - sy0, x:x + rw], row[sy0:sy1])
    if frame:
        cv2.rectangle(canvas, (0, 0), (w - 1, h - 1), 0, 2)
    return canvas


def felt_pen_photo(box: np.ndarray, rng: np.random.Generator, *, pen_px: int = 9, scale: float = 0.5,
                   quality: int = 40) -> np.ndarray:
    """A box as one kind of deployment captures it and the shipped training never saw: written with a thick felt
    pen (strokes `pen_px` wider at 200 dpi, about 1 mm) and photographed by phone at about 100 dpi (`scale`),
    JPEG-compressed and scaled back up to the reader's 200 dpi. Deterministic: `rng` is taken for the interface
    (and a little jitter of the JPEG quality)."""
    h, w = box.shape
    thick = cv2.erode(box, np.ones((pen_px, pen_px), np.uint8))
    small = cv2.resize(thick, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    q = int(np.clip(quality + rng.integers(-5, 6), 10, 95))
    ok, enc = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, q])
    decoded = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE) if ok else None
    if decoded is not None:
        small = decoded
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
