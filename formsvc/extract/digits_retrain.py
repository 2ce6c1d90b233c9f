"""Fine-tune the handwriting CNN on the values reviewers confirmed: this deployment's handwriting, learnt.

Every kept answer (a value and the box as the recogniser saw it) is cut into digits exactly as reading cuts them
(digits.box_glyphs); a box whose digit count differs from its value's is left out (a comma taken for a digit, ink
that ran together: no way to know which glyph is which digit). The shipped CNN is the starting point and stays
the fallback: the fine-tuned weights go to data_dir/digits/ (digits.tuned_cnn_path) and are written only when the
box accuracy on held-out real handwriting (digits_train.HELD_OUT positions composed into score boxes, never
trained on by the shipped models nor here) is at least the shipped model's and the model in use's. Replayed
shipped training digits (digits_train.TRAIN positions) keep the model from forgetting what it knew.

The two MLPs and the confidence calibration stay as shipped: the CNN is half of every glyph's vote.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from formsvc.extract import digits

EPOCHS = 4
LEARNING_RATE = 3e-4  # a third of training's: move the shipped weights, do not replace them
REPLAY_COPIES = 2  # augmented copies of each shipped training digit mixed in
HELD_OUT_BOXES = 600
MIN_BOXES = 10  # fewer usable answers than this teach nothing measurable


@dataclass
class RetrainReport:
    samples: int  # answers offered
    used: int  # answers whose digits could be cut as their value says
    glyphs: int  # digits learnt (before augmentation)
    shipped: float | None  # held-out box accuracy of the shipped CNN (None: not measured, nothing to train)
    in_use: float | None  # ... of the CNN in use before this run (the shipped one, or an earlier fine-tuned one)
    candidate: float | None  # ... of the fine-tuned candidate; None when there was nothing to train on
    accepted: bool
    reason: str  # Vietnamese, for the admin
    held_out_boxes: int
    at: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def digits_of(value: float) -> str:
    """The digits written for a value, in order: 7.5 -> "75", 10 -> "10"."""
    return digits.as_written(value).replace(",", "")


def glyph_set(samples: Iterable[tuple[float | None, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(28x28 vectors, labels, boxes used, digits) from (value, box crop) answers; each digit also slightly turned and
    thinner/thicker, as reading sees it (digits._variants)."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    used = n_glyphs = 0
    for value, cell in samples:
        if value is None or value < 0 or cell.ndim != 2:
            continue
        text = digits_of(float(value))
        glyphs = digits.box_glyphs(cell)
        if glyphs is None or len(glyphs) != len(text):
            continue
        used += 1
        n_glyphs += len(glyphs)
        for glyph, ch in zip(glyphs, text, strict=True):
            for variant in digits._variants(glyph):
                xs.append(digits.normalise(variant))
                ys.append(int(ch))
    if not xs:
        return np.zeros((0, digits.SIDE * digits.SIDE), np.float32), np.zeros(0, np.int64), 0, 0
    return np.stack(xs).astype(np.float32), np.array(ys, np.int64), used, n_glyphs


@lru_cache(maxsize=2)
def held_out_boxes(n: int = HELD_OUT_BOXES, seed: int = 4242) -> tuple[tuple[float, np.ndarray], ...]:
    """Score boxes written with held-out real handwriting (positions digits_train.HELD_OUT), clean and degraded
    as scans are; the same boxes every run, so runs compare."""
    from formsvc.extract.digits_train import HELD_OUT, written_boxes

    return tuple(written_boxes(HELD_OUT, n, seed, augment=False))


def box_accuracy(params: dict[str, np.ndarray] | None, boxes: Iterable[tuple[float, np.ndarray]]) -> float:
    """Share of boxes whose read value is the written one, reading with these CNN weights."""
    right = total = 0
    with digits.using_cnn(params):
        for value, img in boxes:
            total += 1
            right += int(digits.read_score(img, max_value=10, step=0.5).value == value)
    return right / max(total, 1)


def fine_tune(x: np.ndarray, y: np.ndarray, *, seed: int = 0, epochs: int = EPOCHS) -> dict[str, np.ndarray]:
    """The shipped CNN trained further on the answers' digits plus replayed shipped training digits."""
    from formsvc.extract.digits_train import TRAIN, real, train_cnn

    base = digits._shipped_cnn()
    if base is None:
        raise RuntimeError("the shipped CNN is missing")
    rx, ry = real(TRAIN, REPLAY_COPIES, seed + 17)
    tuned = train_cnn(np.vstack([x, rx]), np.concatenate([y, ry]), seed=seed, epochs=epochs, lr=LEARNING_RATE,
                      init=base, log=False)
    if "temperature" in base:
        tuned["temperature"] = base["temperature"].copy()  # the calibration was fitted with it
    return tuned


def save_tuned(params: dict[str, np.ndarray], report: RetrainReport, path: Path | None = None) -> Path:
    """Write the weights, then the .json naming their SHA-256: a reader never loads a half-written model."""
    path = path or digits.tuned_cnn_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **params)  # type: ignore[arg-type]
    raw = buf.getvalue()
    for target, data in ((path, raw), (path.with_suffix(".json"), json.dumps(
            {"sha256": hashlib.sha256(raw).hexdigest(), **report.as_json()}, ensure_ascii=False).encode())):
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    return path


def retrain(samples: list[tuple[float | None, np.ndarray]], *, seed: int = 0, epochs: int = EPOCHS,
            boxes: int = HELD_OUT_BOXES, write: bool = True) -> tuple[RetrainReport, dict[str, np.ndarray] | None]:
    """Fine-tune on the answers and keep the result only if it is not worse on the held-out boxes."""
    # Small products: faster on one thread, and the same sums every run. Scoped: the API process runs this too.
    with threadpool_limits(1, user_api="blas"):
        return _retrain(samples, seed=seed, epochs=epochs, boxes=boxes, write=write)


def _retrain(samples: list[tuple[float | None, np.ndarray]], *, seed: int, epochs: int, boxes: int,
             write: bool) -> tuple[RetrainReport, dict[str, np.ndarray] | None]:
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    x, y, used, glyphs = glyph_set(samples)
    if used < MIN_BOXES:
        return RetrainReport(len(samples), used, glyphs, None, None, None, False,
                             f"Chưa đủ ô đã xác nhận để học (dùng được {used}, cần ít nhất {MIN_BOXES}).",
                             0, at), None
    held = held_out_boxes(boxes)
    shipped = box_accuracy(digits._shipped_cnn(), held)
    in_use_params = digits._cnn()
    in_use = shipped if in_use_params is digits._shipped_cnn() else box_accuracy(in_use_params, held)
    params = fine_tune(x, y, seed=seed, epochs=epochs)
    candidate = box_accuracy(params, held)
    better = candidate >= shipped and candidate >= in_use
    reason = (f"Mô hình mới đọc đúng {candidate:.1%} ô kiểm tra (mô hình gốc {shipped:.1%}, đang dùng {in_use:.1%}): "
              + ("đã dùng mô hình mới." if better else "kém hơn nên không dùng, giữ mô hình đang dùng."))
    report = RetrainReport(len(samples), used, glyphs, shipped, in_use, candidate, better, reason, len(held), at)
    if better and write:
        save_tuned(params, report)
    return report, params
