"""Handwritten score reader: numbers 0..max (and a decimal where the step allows) in a score box.

Segment the box into ink components, classify each digit with a small CNN run in numpy (weights in models/,
trained at build time by digits_train.py on real MNIST handwriting, synthetic pen strokes in Vietnamese writers'
shapes and font digits), find a decimal comma or dot between digits, and assemble a value. The raw confidence
(product of each digit's lead over its runner-up, averaged over slightly turned and thickened copies of the glyph)
is calibrated on real handwriting the model never saw
(models/digits_calibration.npz): where the calibration was measured, boxes at settings.review_confidence or above
were read right at least ACCEPT_RIGHT of the time, below it less. A deployment's fine-tuned CNN
(digits_retrain) comes with a calibration fitted for it; the two are loaded together or not at all (_tuned), and
each box is read and calibrated by one such pair (Model). Values the criteria do not allow are capped at
IMPOSSIBLE; blank and crossed-out boxes are states of their own, never numbers.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from threadpoolctl import ThreadpoolController

from formsvc.settings import get_settings

MODEL_CALIBRATION = Path(__file__).with_name("models") / "digits_calibration.npz"
MODEL_CNN = Path(__file__).with_name("models") / "digits_cnn.npz"
ACCEPT_RIGHT = 0.995  # share of boxes read right where the review threshold sits (digits_train.to_confidence)
SIDE = 28
INNER = 20


INK_CONTRAST = 60  # grey levels below the paper that are ink for certain
INK_MIN_CONTRAST = 35  # the least contrast that still is ink (median-filtered scanner noise stays above)
INK_SHARE = 0.45  # of the darkest ink's contrast: where a pale stroke's edge is
COMMA_TOP = 0.45  # share of the tallest digit's height below its top where a comma starts, at the earliest
COMMA_HEIGHT = 0.7  # most a comma's height as a share of the tallest digit's
STREAK_GAP = 5  # px: a printer's white streak cuts a stroke into pieces at most this far apart vertically
MAX_PIECES = 12  # pieces of ink in a box beyond which it is noise, not strokes cut by streaks
SPECKLE_MAX = 2  # specks (under 4 px) in a box's ink beyond which it is dithered or photocopied: not bridged
SPECK_JUMP = 60  # grey levels a pixel differs from its 3x3 median by when it is a speck, not a stroke's edge
# Share of a box's pixels that are specks (SPECK_JUMP) beyond which a dithering scanner drew it in dots. Tuning seeds
# 1000 and 3000: inside the frame, every box of 3000's clean, print-and-scan and black-and-white pages 0.0046 at
# most; 469 of 495 dithered (harsh) boxes more than 0.008, most 0.012-0.2.
DITHERED = 0.008
DESCREEN_SIGMA = 1.3  # px at 200 dpi: wider than the dots' pitch, narrower than a stroke
IMPOSSIBLE = 0.3  # most a reading can be trusted whose top reading the criteria do not allow
SEPARATOR_MISSED = 0.15  # prior of a decimal comma the segmentation did not see (or saw where there was none)
TOP_DIGITS = 3
STRAY_SHARE = 0.3  # ink left out of a reading, as a share of its digits' ink, beyond which the reading is unsure
STRAY_RAW = 0.05  # most raw confidence (before calibration) a reading that leaves such ink out can have
# Share of a box's inner pixels the ink threshold takes beyond which its paper is blotched (a bad photocopy's toner).
# Tuning 3000's clean, print-and-scan and black-and-white boxes: 0.23 at most; 38 of 758 tuning harsh boxes above.
BLOTCHED = 0.3
# A blotched box's ink: darker than its darkest ink plus this share of the paper's contrast. Tuning harsh boxes
# above BLOTCHED, read before the sum: 2 -> 23 of 38 right with 0.2 or 0.25, 19 with 0.15 or 0.3, 10 with 0.45.
BLOTCH_INK = 0.25
WHOLE = "whole"  # calibration group of a comma reading's whole part (ScoreReading.whole_confidence)
MAX_CANDIDATES = 12


@dataclass(frozen=True)
class ScoreReading:
    value: float | None
    text: str
    confidence: float
    state: Literal["number", "blank", "crossed", "unreadable"]
    # Values the criteria allow, best first, with a score (product of digit probabilities and separator prior):
    # what a joint decoding with the declared total chooses from. Empty when nothing allowed was read.
    candidates: tuple[tuple[float, float], ...] = ()
    # Written with a comma: the digits before it as read, and how sure it is that the number is that whole part
    # and a fraction (calibration group WHOLE). Where only half points exist that settles the value whatever the
    # small digit after the comma was read as (a 5 written small is read 6 or 8 far more often than a whole digit).
    whole: float | None = None
    whole_confidence: float = 0.0


@dataclass(frozen=True)
class _Glyphs:
    """Per glyph: mean class probabilities over variants and models."""
    probs: np.ndarray  # n x 10


def allowed(value: float, max_value: float, step: float) -> bool:
    """A value the criteria allow: 0..max on the step."""
    return 0 <= value <= max_value and round(value / step, 6) == int(round(value / step, 6))


def lost_comma(value: float, max_value: float, step: float) -> float | None:
    """OCR often drops a small decimal comma: "45" where at most 10 is allowed was "4,5". That value, or None."""
    if value.is_integer() and 10 <= value < 100 and allowed(value / 10, max_value, step):
        return value / 10
    return None


def _candidates(glyphs: _Glyphs, cut: int | None, max_value: float, step: float) -> tuple[tuple[float, float], ...]:
    """Allowed values from the top digits of every glyph, with the separator where it was seen and, at a low
    prior, moved or dropped: a missed comma ("45" for 4,5) is the commonest handwriting misread, a big comma
    taken for a digit ("985" for 9,5) the next."""
    n = len(glyphs.probs)
    tops = [np.argsort(-p)[:TOP_DIGITS] for p in glyphs.probs]
    cuts: list[tuple[int | None, float]] = [(cut, 1.0)]
    cuts += [(c, SEPARATOR_MISSED) for c in [None, *range(1, n)] if c != cut]
    scores: dict[float, float] = {}
    for combo in np.array(np.meshgrid(*tops, indexing="ij")).reshape(n, -1).T:
        p = float(np.prod([glyphs.probs[i][d] for i, d in enumerate(combo)]))
        digits = "".join(str(d) for d in combo)
        for c, prior in cuts:
            text = digits if c is None else digits[:c] + "." + digits[c:]
            if len(text.split(".")[0]) > 1 and text.startswith("0"):
                continue  # nobody writes a leading zero
            value = float(text)
            if allowed(value, max_value, step):
                scores[value] = max(scores.get(value, 0.0), p * prior)
        if cut is None:
            for i in range(1, n - 1):
                value = float(digits[:i] + "." + digits[i + 1:])
                if allowed(value, max_value, step):
                    p_rest = p / max(float(glyphs.probs[i][combo[i]]), 1e-9)
                    scores[value] = max(scores.get(value, 0.0), p_rest * SEPARATOR_MISSED)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:MAX_CANDIDATES]
    return tuple((v, round(s, 6)) for v, s in ranked)


def calibration_group(n_glyphs: int, at_edge: bool) -> str:
    """Boxes whose raw confidence means different things are calibrated apart: one digit or several (a comma
    to find, more to misread), and writing that reaches the box's edge (part of it may be cut off)."""
    return f"{'one' if n_glyphs == 1 else 'more'}-{'edge' if at_edge else 'inside'}"


Calibration = dict[str, tuple[np.ndarray, np.ndarray]]


def calibration_from(data: dict[str, np.ndarray]) -> Calibration:
    """Isotonic steps per group from stored arrays x_<group>, y_<group>."""
    groups = {k[2:] for k in data if k.startswith("x_")}
    return {g: (np.asarray(data[f"x_{g}"], np.float64), np.asarray(data[f"y_{g}"], np.float64)) for g in groups}


@lru_cache(maxsize=1)
def _calibration() -> Calibration:
    """The shipped models' calibration: per calibration group, isotonic steps raw confidence -> probability right;
    empty before the first calibration (training)."""
    if not MODEL_CALIBRATION.exists():
        return {}
    with np.load(MODEL_CALIBRATION) as data:
        return calibration_from({k: data[k] for k in data.files})


def calibrate(raw: float, group: str = "all", steps: Calibration | None = None) -> float:
    """The probability that a box of `group` read with raw confidence `raw` is read right (measured on real
    handwriting the models never saw, see digits_train.calibrate), by `steps` or else the calibration of the
    model in use (the shipped one's, or the one fitted for this deployment's fine-tuned CNN)."""
    steps = _model().calibration if steps is None else steps
    if not steps:
        return raw
    if group == WHOLE and WHOLE not in steps:
        return 0.0  # fitted before whole parts were: no say, rather than the boxes' curve
    x, y = steps.get(group, steps["all"])
    return float(np.interp(raw, x, y))


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """Found once: looking up the loaded BLAS libraries costs more than a whole box's classification."""
    return ThreadpoolController()


def normalise(glyph: np.ndarray) -> np.ndarray:
    """Ink mask of one glyph -> 28x28 float vector, glyph scaled into a 20x20 box and centred (MNIST-like)."""
    ys, xs = np.nonzero(glyph)
    if len(xs) == 0:
        return np.zeros(SIDE * SIDE, np.float32)
    crop = glyph[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.float32)
    h, w = crop.shape
    s = INNER / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
    out = np.zeros((SIDE, SIDE), np.float32)
    y0, x0 = (SIDE - nh) // 2, (SIDE - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = small
    peak = out.max()
    return (out / peak if peak > 0 else out).reshape(-1)


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(n, h, w, c) -> (n, h-k+1, w-k+1, k*k*c): every k x k patch as a row, for a convolution as one product."""
    v = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    return np.ascontiguousarray(v).reshape(*v.shape[:3], -1)


def pool2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 max pooling of (n, h, w, c); also the blocks, which training's backward pass needs."""
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // 2, 2, w // 2, 2, c)
    return blocks.max(axis=(2, 4)), blocks


def cnn_forward(p: dict[str, np.ndarray], x: np.ndarray,
                keep: bool = False) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """LeNet-shaped CNN on 28x28 glyph vectors: conv 5x5 + pool, conv 5x5 + pool, dense, dense 10 (the widths are
    the weights': digits_train.CNN_WIDTHS).

    Returns the logits and, with `keep`, what digits_train's backward pass needs.
    """
    n = x.shape[0]
    c1 = im2col(x.reshape(n, SIDE, SIDE, 1).astype(np.float32), 5)
    z1 = c1 @ p["c1w"] + p["c1b"]
    p1, r1 = pool2(np.maximum(z1, 0))
    c2 = im2col(p1, 5)
    z2 = c2 @ p["c2w"] + p["c2b"]
    p2, r2 = pool2(np.maximum(z2, 0))
    f = p2.reshape(n, -1)
    hidden = np.maximum(f @ p["f1w"] + p["f1b"], 0)
    logits = hidden @ p["f2w"] + p["f2b"]
    return logits, ((c1, z1, p1, r1, c2, z2, p2, r2, f, hidden) if keep else ())


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@lru_cache(maxsize=1)
def _shipped_cnn() -> dict[str, np.ndarray] | None:
    if not MODEL_CNN.exists():
        return None
    with np.load(MODEL_CNN) as data:
        return {k: data[k].astype(np.float32) for k in data.files}


def tuned_cnn_path() -> Path:
    """Where `formsvc digits retrain` keeps this deployment's fine-tuned CNN; beside it its calibration
    (tuned_calibration_path) and a .json naming both files' SHA-256."""
    return get_settings().data_dir / "digits" / "digits_cnn.npz"


def tuned_calibration_path() -> Path:
    return tuned_cnn_path().with_name("digits_calibration.npz")


@dataclass(frozen=True)
class Model:
    """The CNN reading uses and the calibration fitted for exactly that CNN: resolved once per box, so a box is
    never classified by one model and calibrated for another (a retrain may land between two boxes)."""
    cnn: dict[str, np.ndarray] | None
    calibration: Calibration
    tuned: bool


@lru_cache(maxsize=1)
def _shipped() -> Model:
    return Model(_shipped_cnn(), _calibration(), False)


def sha256_file(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _valid_calibration(steps: Calibration) -> bool:
    """Usable steps: an "all" curve, and every curve finite, strictly increasing in x (two steps at one x are a
    jump np.interp reads either side of), probabilities within 0..1."""
    if "all" not in steps:
        return False
    for x, y in steps.values():
        if x.ndim != 1 or x.shape != y.shape or len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
            return False
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0) or y.min() < 0 or y.max() > 1:
            return False
    return True


@lru_cache(maxsize=4)
def _tuned(path: Path, stamp: tuple[int, ...]) -> Model | None:
    """The fine-tuned CNN with its own calibration, or None unless all is whole and belongs together: the .json
    names the SHA-256 of the weights and of the calibration (a torn or replaced file is not loaded), the
    calibration names the weights' SHA-256 it was fitted for (a calibration of another model is refused), the
    weights have the shipped model's arrays and shapes and are finite. Keyed by the three files' stat, so a
    retrain is picked up by running workers without a restart."""
    shipped = _shipped_cnn()
    meta_path, cal_path = path.with_suffix(".json"), tuned_calibration_path()
    if shipped is None:
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        raw, cal_raw = path.read_bytes(), cal_path.read_bytes()
        weights_sha = sha256_file(raw)
        if not isinstance(meta, dict) or meta.get("sha256") != weights_sha \
                or meta.get("calibration_sha256") != sha256_file(cal_raw):
            return None
        with np.load(io.BytesIO(raw)) as data:
            tuned = {k: data[k].astype(np.float32) for k in data.files}
        with np.load(io.BytesIO(cal_raw)) as data:
            cal = {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        return None
    if str(cal.pop("model_sha256", "")) != weights_sha:
        return None
    if tuned.keys() != shipped.keys() or any(tuned[k].shape != shipped[k].shape for k in shipped):
        return None
    if not all(np.isfinite(v).all() for v in tuned.values()):
        return None
    steps = calibration_from(cal)
    if not _valid_calibration(steps):
        return None
    return Model(tuned, steps, True)


_override: Model | None = None


@contextmanager
def using_cnn(params: dict[str, np.ndarray] | None, calibration: Calibration | None = None) -> Iterator[None]:
    """Read with these CNN weights inside the block (retraining compares a candidate with the model in use, and
    fits its calibration). Without `calibration`, confidences are the shipped calibration's: right for the
    shipped CNN only, so a candidate's are not to be trusted (retraining compares values, not confidences).
    One process at a time: retraining runs alone."""
    global _override
    model = Model(params, _calibration() if calibration is None else calibration, params is not _shipped_cnn())
    before, _override = _override, model
    try:
        yield
    finally:
        _override = before


def _model() -> Model:
    """The model in use: an override, else this deployment's fine-tuned CNN with its calibration when present,
    whole and matching, else the shipped CNN with the shipped calibration (always the fallback)."""
    if _override is not None:
        return _override
    path = tuned_cnn_path()
    try:
        # Size and inode too: two writes within one tick of the file system's clock share an mtime.
        stamp = tuple(v for p in (path, path.with_suffix(".json"), tuned_calibration_path())
                      for st in [p.stat()] for v in (st.st_mtime_ns, st.st_size, st.st_ino))
    except OSError:
        return _shipped()
    return _tuned(path, stamp) or _shipped()


def _cnn() -> dict[str, np.ndarray] | None:
    """The CNN in use (see _model)."""
    return _model().cnn


def classify_cnn(vectors: np.ndarray, params: dict[str, np.ndarray] | None = None) -> np.ndarray | None:
    """Class probabilities (n x 10) from the CNN (`params`, else the one in use), None if it has not been
    trained."""
    p = _cnn() if params is None else params
    if p is None:
        return None
    logits, _ = cnn_forward(p, vectors)
    return softmax(logits)


def _variants(glyph: np.ndarray) -> list[np.ndarray]:
    """The glyph as written, slightly turned and with thinner/thicker strokes: a reading must survive all."""
    padded = cv2.copyMakeBorder(glyph, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=0)
    out = [padded, cv2.dilate(padded, np.ones((2, 2), np.uint8))]
    centre = (padded.shape[1] / 2, padded.shape[0] / 2)
    for angle in (-7, 7):
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        out.append(cv2.warpAffine(padded, m, (padded.shape[1], padded.shape[0]), flags=cv2.INTER_NEAREST))
    if glyph.sum() > 60:
        out.append(cv2.erode(padded, np.ones((2, 2), np.uint8)))
    return out


def _classify_glyphs(glyphs: list[np.ndarray], cnn_params: dict[str, np.ndarray] | None) -> _Glyphs:
    """Mean class probabilities per glyph over its variants, by the CNN. Two MLPs (pixels, stroke directions) used
    to vote beside it: on boxes none of them saw they let more misreads through at every confidence than the CNN
    alone (bench/RESULTS.md, 2026-12-03, eleventh session)."""
    if cnn_params is None:
        raise RuntimeError(f"no digit model at {MODEL_CNN}: train it (python -m formsvc.extract.digits_train)")
    vectors = [np.stack([normalise(v) for v in _variants(glyph)]) for glyph in glyphs]
    # Products this small finish before BLAS's threads wake up: one thread is ~10x faster on a busy 2-core box.
    with _blas().limit(limits=1, user_api="blas"):
        means = [softmax(cnn_forward(cnn_params, v)[0]).mean(axis=0) for v in vectors]
    return _Glyphs(np.array(means))


def _confidence(glyphs: _Glyphs) -> float:
    """Product over the digits of the best class's lead over the runner-up in the mean over the glyph's variants
    (a blob 82 % "8" and 13 % "5" is not 82 % sure). Variants that disagree already shrink the lead."""
    c = 1.0
    for mean in glyphs.probs:
        first, second = np.sort(mean)[::-1][:2]
        c *= float(first - second)
    return c


def ink_mask(cell: np.ndarray) -> np.ndarray:
    """1 where a crop holds ink: clearly darker than its own paper after scanner noise is filtered out, so faint
    (blurred) strokes count and a grey background does not. How much darker follows the crop's darkest ink: pale
    pen (blue ballpoint scanned grey, pencil) is ink too, never a blank box, but never closer to the paper than
    INK_MIN_CONTRAST, which scanner noise does not reach."""
    return _ink_of(*_grey_levels(cell))


def _grey_levels(cell: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(the crop with scanner noise median-filtered out, its paper's grey level, its darkest ink's)."""
    smooth = cv2.medianBlur(cell, 3)
    return smooth, float(np.percentile(smooth, 90)), float(np.percentile(smooth, 0.5))


def _ink_of(smooth: np.ndarray, paper: float, darkest: float) -> np.ndarray:
    """ink_mask from a crop's _grey_levels."""
    margin = min(INK_CONTRAST, max(INK_MIN_CONTRAST, INK_SHARE * (paper - darkest)))
    return (smooth < paper - margin).astype(np.uint8)


def _crossed(mask: np.ndarray) -> bool:
    """A cross-out: an X of long strokes, or one slash from corner to corner. A single shorter diagonal is the
    stem of a 7 or a slanted 1, never a cancellation on its own."""
    h, w = mask.shape
    lines = cv2.HoughLinesP(mask * 255, 1, np.pi / 180, threshold=max(10, int(min(h, w) * 0.5)),
                            minLineLength=int(min(h, w) * 0.7), maxLineGap=4)
    if lines is None or mask.mean() <= 0.03:
        return False
    slopes = set()
    for x0, y0, x1, y1 in lines.reshape(-1, 4):
        dx, dy = abs(x1 - x0), abs(y1 - y0)
        if dx > 0.6 * w and dy > 0.7 * h:
            return True
        if dx > 0.3 * w and dy > 0.5 * h:
            slopes.add(bool((x1 - x0) * (y1 - y0) > 0))
    return len(slopes) == 2


def _inner(shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The part of a score box its number is read from: the box's own printed borders left out."""
    h, w = shape[:2]
    return slice(int(h * 0.06), int(h * 0.94)), slice(int(w * 0.04), int(w * 0.96))


def box_mask(cell: np.ndarray) -> np.ndarray:
    """The ink of a score box, the box's own printed borders left out (descreened; a blotched box's darkest ink)."""
    return _box_ink(cell)[0]


def _box_ink(cell: np.ndarray) -> tuple[np.ndarray, bool]:
    """(box_mask, whether the box's paper is blotched). A bad photocopy leaves toner patches as dark as a pale stroke
    over a box: the ink threshold takes them for ink, and a box more than BLOTCHED of whose pixels it takes holds
    patches, not a number (no written number's ink reaches that share). There only the ink within BLOTCH_INK of the
    paper's contrast from the darkest is taken: the pen's strokes are darker than the toner."""
    smooth, paper, darkest = _grey_levels(descreened(cell[_inner(cell.shape)]))
    mask = _ink_of(smooth, paper, darkest)
    if mask.mean() <= BLOTCHED:
        return mask, False
    return (smooth < darkest + BLOTCH_INK * (paper - darkest)).astype(np.uint8), True


def descreened(cell: np.ndarray) -> np.ndarray:
    """A box a dithering scanner drew in dots (DITHERED) with the dots smoothed back into grey levels; any other box
    as it is. The ink threshold cuts a dotted stroke into specks and holes that the recogniser reads as other digits
    or not at all. Harsh captures of tuning seeds 1000, 3000 and 6000 (augraphy's dithering, bleed-through, glare and
    bad photocopy; sigma 0.8-1.5 tried, 1.3 best by a few boxes): 695 -> 710 of 792 boxes right after the sum, 19 ->
    26 of 72 sheets with no person, 0 silent both ways."""
    if speck_share(cell) <= DITHERED:
        return cell
    return cv2.GaussianBlur(cell, (0, 0), DESCREEN_SIGMA)


def speck_share(image: np.ndarray) -> float:
    """The share of an image's pixels that are specks: SPECK_JUMP from their 3x3 median."""
    if image.size == 0:
        return 0.0
    return float((cv2.absdiff(image, cv2.medianBlur(image, 3)) > SPECK_JUMP).mean())


# (one mask per digit, their x spans, the separators' component stats, the stats of ink that is neither)
Segments = tuple[list[np.ndarray], list[tuple[int, int]], list[np.ndarray], list[np.ndarray]]


def _bridge_streaks(mask: np.ndarray) -> np.ndarray:
    """The mask with thin horizontal gaps closed: a printer low on ink leaves white streaks across the page that cut
    a 7's bar off its stem (read as 1) or a 6's loop off (held out print-and-scan pages: 232 -> 242 of 264 boxes
    read right before the sum). Not on a speckled box (dithering, a bad photocopy): there closing joins specks
    into strokes."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if int((stats[1:, cv2.CC_STAT_AREA] < 4).sum()) > SPECKLE_MAX:
        return mask
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((STREAK_GAP, 1), np.uint8))


def _rejoined(stats: np.ndarray, labels: list[int]) -> list[tuple[np.ndarray, list[int]]]:
    """Components (stats, labels) with the pieces of a stroke a white streak cut apart joined. Closing
    (_bridge_streaks) joins straight cuts only; a slanted stroke's two ends miss each other by a pixel or two, and
    the lower half of a 5 cut off its bar was then taken for a comma. Not on a speckled box (specks stacked in a
    column are no stroke)."""
    if int((stats[1:, cv2.CC_STAT_AREA] < 4).sum()) > SPECKLE_MAX or len(labels) > MAX_PIECES:
        return [(stats[i], [i]) for i in labels]
    parent = {i: i for i in labels}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in itertools.combinations(labels, 2):
        if _cut_apart(stats[a], stats[b]):
            parent[root(b)] = root(a)
    groups: dict[int, list[int]] = {}
    for i in labels:
        groups.setdefault(root(i), []).append(i)
    out = []
    for g in groups.values():
        x0 = min(int(stats[i][cv2.CC_STAT_LEFT]) for i in g)
        y0 = min(int(stats[i][cv2.CC_STAT_TOP]) for i in g)
        x1 = max(int(stats[i][cv2.CC_STAT_LEFT] + stats[i][cv2.CC_STAT_WIDTH]) for i in g)
        y1 = max(int(stats[i][cv2.CC_STAT_TOP] + stats[i][cv2.CC_STAT_HEIGHT]) for i in g)
        out.append((np.array([x0, y0, x1 - x0, y1 - y0, sum(int(stats[i][cv2.CC_STAT_AREA]) for i in g)]), g))
    return out


def _cut_apart(a: np.ndarray, b: np.ndarray) -> bool:
    """One piece right above the other, sharing at least half the narrower one's width, a thin gap between."""
    ax, ay, aw, ah = (int(v) for v in a[:4])
    bx, by, bw, bh = (int(v) for v in b[:4])
    shared = min(ax + aw, bx + bw) - max(ax, bx)
    gap = max(by - (ay + ah), ay - (by + bh))
    return shared >= 0.5 * min(aw, bw) and 0 <= gap < STREAK_GAP


def segment(mask: np.ndarray) -> Segments | Literal["blank", "unreadable"]:
    """A box's ink as digits, left to right: (one mask per digit, their x spans, the separators' component stats,
    the stats of the ink that is neither), or why not. Components overlapping horizontally are one digit (a broken
    stroke); small low ones are commas."""
    mask = _bridge_streaks(mask)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    ih = mask.shape[0]
    comps = _rejoined(stats, [i for i in range(1, n) if stats[i][cv2.CC_STAT_AREA] >= 4])
    if not comps:
        return "blank"
    top_s = max((s for s, _ in comps), key=lambda s: s[cv2.CC_STAT_HEIGHT])
    tallest, top = top_s[cv2.CC_STAT_HEIGHT], top_s[cv2.CC_STAT_TOP]
    digits, seps, others = [], [], []
    for s, i in comps:
        # A comma hangs in the lower half of the digits' line, however long its tail; no digit does.
        low = s[cv2.CC_STAT_TOP] >= top + COMMA_TOP * tallest and s[cv2.CC_STAT_HEIGHT] <= COMMA_HEIGHT * tallest
        if s[cv2.CC_STAT_HEIGHT] >= 0.45 * tallest and not low:
            digits.append((s, i))
        elif (s[cv2.CC_STAT_HEIGHT] <= 0.4 * tallest or low) and s[cv2.CC_STAT_TOP] > ih * 0.35:
            seps.append(s)
        else:
            others.append(s)
    if not digits or len(digits) > 3:
        return "unreadable"
    digits.sort(key=lambda d: d[0][cv2.CC_STAT_LEFT])
    merged: list[list[int]] = []
    spans: list[tuple[int, int]] = []
    for s, ids in digits:
        left, right = s[cv2.CC_STAT_LEFT], s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH]
        if spans and left < spans[-1][1] - 0.3 * (right - left):
            merged[-1] += ids
            spans[-1] = (spans[-1][0], max(spans[-1][1], right))
        else:
            merged.append(list(ids))
            spans.append((left, right))
    return [np.isin(labels, group).astype(np.uint8) for group in merged], spans, seps, others


def _stray(mask: np.ndarray, glyphs: list[np.ndarray], unused: list[np.ndarray]) -> bool:
    """Whether a box holds ink its reading does not account for, at least STRAY_SHARE of the digits' own: the
    pieces of a digit a printer's streaks cut into bits too small to be digits (a "9,5" read "9" at 1.0 with the
    5 in four pieces and the comma left over), never a reading to trust on its own. Ink at the box's edge is the
    frame's or a neighbour's."""
    h, w = mask.shape
    inside = [s for s in unused if s[cv2.CC_STAT_LEFT] > 0 and s[cv2.CC_STAT_TOP] > 0
              and s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH] < w and s[cv2.CC_STAT_TOP] + s[cv2.CC_STAT_HEIGHT] < h]
    stray = sum(int(s[cv2.CC_STAT_AREA]) for s in inside)
    return stray >= STRAY_SHARE * sum(int(g.sum()) for g in glyphs)


def box_segments(cell: np.ndarray) -> Segments | None:
    """A score box's ink cut as reading cuts it (segment); None for a blank, crossed-out or unreadable box."""
    mask = box_mask(cell)
    if mask.mean() < 0.004 or _crossed(mask):
        return None
    seg = segment(mask)
    return None if isinstance(seg, str) else seg


def box_glyphs(cell: np.ndarray) -> list[np.ndarray] | None:
    """The digit masks the recogniser classifies in a score box, left to right; None for a blank, crossed-out or
    unreadable box. What retraining learns from: the same cut as reading."""
    seg = box_segments(cell)
    return None if seg is None else seg[0]


def read_ink(cell: np.ndarray) -> np.ndarray | None:
    """Where in the box (the cell's own coordinates) the ink a reading takes as digits and separators lies; None
    for a box that reads as no number (blank, crossed out, unreadable). Ink outside it (specks, a crease, the
    frame) is none of the number's."""
    seg = box_segments(cell)
    if seg is None:
        return None
    used = np.zeros(seg[0][0].shape, bool)  # a number has a digit at least (segment)
    for glyph in seg[0]:
        used |= glyph > 0
    for s in seg[2]:
        x, y, w, h = (int(v) for v in s[:4])
        used[y: y + h, x: x + w] = True
    out = np.zeros(cell.shape, bool)
    out[_inner(cell.shape)] = used
    return out


def read_score(cell: np.ndarray, *, max_value: float = 10, step: float = 0.5) -> ScoreReading:
    """One score box: blank, crossed out, unreadable or a number with its calibrated confidence."""
    model = _model()
    reading, group, impossible = _read_raw(cell, model, max_value=max_value, step=step)
    if group is None:
        return reading
    confidence = calibrate(reading.confidence, group, model.calibration)
    whole = calibrate(reading.whole_confidence, WHOLE, model.calibration) if reading.whole is not None else 0.0
    return replace(reading, confidence=min(confidence, IMPOSSIBLE) if impossible else confidence,
                   whole_confidence=whole)


def read_score_raw(cell: np.ndarray, *, max_value: float = 10,
                   step: float = 0.5) -> tuple[ScoreReading, str | None, bool]:
    """read_score before calibration: (reading, calibration group, top reading impossible). A number's confidence
    is the raw one (what the calibration is fitted on); other states come with group None and their final
    confidence. An impossible top reading (out of range, off the step, a leading zero) is replaced by the best
    allowed candidate, and read_score caps its confidence at IMPOSSIBLE. A comma reading's whole_confidence is raw
    too (group WHOLE)."""
    return _read_raw(cell, _model(), max_value=max_value, step=step)


def _read_raw(cell: np.ndarray, model: Model, *, max_value: float,
              step: float) -> tuple[ScoreReading, str | None, bool]:
    mask, blotched = _box_ink(cell)
    if mask.mean() < 0.004:
        return ScoreReading(None, "", 0.97, "blank"), None, False
    if _crossed(mask):
        return ScoreReading(None, "", 0.9, "crossed"), None, False
    seg = segment(mask)
    if isinstance(seg, str):
        return ScoreReading(None, "", 0.97 if seg == "blank" else 0.2, seg), None, False
    masks, spans, seps, others = seg
    glyphs = _classify_glyphs(masks, model.cnn)
    confidence = _confidence(glyphs)
    ys, xs = np.nonzero(mask)
    at_edge = bool(ys.min() <= 1 or ys.max() >= mask.shape[0] - 2 or xs.min() <= 1 or xs.max() >= mask.shape[1] - 2)
    group = calibration_group(len(masks), at_edge)
    chars = [str(int(p.argmax())) for p in glyphs.probs]
    text = "".join(chars)
    cut: int | None = None
    sep_between = [s for s in seps if spans[0][1] <= s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH] / 2 <= spans[-1][0]]
    if len(chars) >= 2 and sep_between:
        cut = sum(1 for a, _ in spans if a < sep_between[0][cv2.CC_STAT_LEFT])
        text = "".join(chars[:cut]) + "," + "".join(chars[cut:])
    candidates = _candidates(glyphs, cut, max_value, step)
    if blotched or _stray(mask, masks, [s for s in seps if not (cut and s is sep_between[0])] + others):
        confidence = min(confidence, STRAY_RAW)  # a blotched box's strokes may be cut by the patches or hide in them
    whole = float("".join(chars[:cut])) if cut else None
    whole_raw = _confidence(_Glyphs(glyphs.probs[:cut])) if cut else 0.0
    value = float(text.replace(",", "."))
    # "05" is nobody's way of writing 5: a comma went missing (0,5). Like a value out of range, impossible as read.
    leading_zero = len(text.split(",")[0]) > 1 and text.startswith("0")
    impossible = leading_zero or not allowed(value, max_value, step)
    if impossible and candidates:
        # The top reading is impossible; the best allowed candidate is a better guess, but only a guess.
        value = candidates[0][0]
        text = as_written(value)
    return ScoreReading(value, text, confidence, "number", candidates, whole, whole_raw), group, impossible


def as_written(value: float) -> str:
    """A value as written on the form: "7,5", "10"."""
    return f"{value:.1f}".rstrip("0").rstrip(".").replace(".", ",")


def read_scores(cells: list[np.ndarray], *, max_value: float = 10, step: float = 0.5) -> list[ScoreReading]:
    return [read_score(c, max_value=max_value, step=step) for c in cells]
