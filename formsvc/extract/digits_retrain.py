"""Fine-tune the handwriting CNN on the values reviewers confirmed: this deployment's handwriting, learnt.

Every kept answer (a value and the box as the recogniser saw it) is cut into digits exactly as reading cuts them
(digits.box_glyphs); a box whose digit count differs from its value's is left out (a comma taken for a digit, ink
that ran together: no way to know which glyph is which digit). One answer in HOLD_BACK_EVERY (chosen by a hash of
the crop's pixels, so the same box always falls on the same side) is never trained on: it measures the candidate
on this deployment's own handwriting. The shipped CNN is the starting point and stays the fallback; replayed
shipped training digits (digits_train.TRAIN positions) keep the model from forgetting what it knew.

A candidate is kept only when it is not worse than the shipped model and the model in use on the generic held-out
boxes (digits_train.HELD_OUT positions composed into score boxes, never trained on by the shipped models nor
here; GENERIC_TOLERANCE allowed) and not worse than the model in use on the held-back answers. A kept candidate
gets its own confidence calibration, fitted as the shipped one is (boxes of digits_train.CALIBRATION positions),
no surer than the shipped calibration and capped by the held-back answers' curve (digits_train.fit_calibration's
`ceiling` and `extra`), and the three files go to data_dir/digits/ (weights, calibration, a
.json naming both SHA-256, written last): the reader (digits._tuned) loads them together or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
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
HOLD_BACK_EVERY = 5  # one answer in five measures the candidate on this deployment's handwriting, never trained on
MIN_OWN = 20  # fewer held-back answers than this measure nothing: the generic gate then allows no tolerance
# The generic held-out boxes are another population than this deployment's: a candidate that learnt this
# deployment's pen may lose a box or three of 600 there (the standard error of 600 boxes at 97 % is 0.7 points)
# and still be the better model here. Half a point, never more; none without held-back answers to show the gain.
GENERIC_TOLERANCE = 0.005
CALIBRATION_BOXES = 3000  # generic calibration boxes for a kept candidate (the shipped calibration used 6,000)

Answer = tuple[float | None, np.ndarray]


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
    own_boxes: int = 0  # held-back answers of this deployment (never trained on)
    own_in_use: float | None = None  # ... read right by the model in use
    own_candidate: float | None = None  # ... by the candidate
    tolerance: float = GENERIC_TOLERANCE  # how much worse on the generic boxes a candidate may be
    calibration_boxes: int = 0  # boxes the kept candidate's calibration was fitted on (generic + held-back)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def digits_of(value: float) -> str:
    """The digits written for a value, in order: 7.5 -> "75", 10 -> "10"."""
    return digits.as_written(value).replace(",", "")


def held_back(cell: np.ndarray) -> bool:
    """Whether this answer is held back (never trained on): a hash of the crop's pixels, so it does not depend on
    the database's ids or on the order answers come in, and the same box never lands on both sides."""
    digest = hashlib.sha256(f"{cell.shape}".encode() + np.ascontiguousarray(cell).tobytes()).digest()
    return int.from_bytes(digest[:8], "big") % HOLD_BACK_EVERY == 0


def split(samples: Iterable[Answer]) -> tuple[list[Answer], list[Answer]]:
    """(answers to train on, answers held back)."""
    train: list[Answer] = []
    held: list[Answer] = []
    for value, cell in samples:
        (held if held_back(cell) else train).append((value, cell))
    return train, held


def glyph_set(samples: Iterable[Answer]) -> tuple[np.ndarray, np.ndarray, int, int]:
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


def box_accuracy(params: dict[str, np.ndarray] | None, boxes: Iterable[Answer]) -> float:
    """Share of boxes whose read value is the written one, reading with these CNN weights. A declared total (above
    10) is read as one, a blank box is right when read blank."""
    right = total = 0
    with digits.using_cnn(params):
        for value, img in boxes:
            total += 1
            high = 10.0 if value is None or value <= 10 else 1000.0
            right += int(digits.read_score(img, max_value=high, step=0.5).value == value)
    return right / max(total, 1)


@lru_cache(maxsize=2)
def generic_calibration_boxes(n: int = CALIBRATION_BOXES,
                              positions: tuple[int, int] | None = None) -> tuple[tuple[float, np.ndarray], ...]:
    """Boxes the kept candidate's calibration is fitted on: written as the shipped calibration's are
    (digits_train.fold_boxes), from CALIBRATION positions unless `positions` (start, stop) narrows them."""
    from formsvc.extract.digits_train import CALIBRATION, written_boxes

    where = CALIBRATION if positions is None else range(*positions)
    return tuple(written_boxes(where, n, 7, augment=True))


@dataclass
class Candidate:
    params: dict[str, np.ndarray]
    calibration: dict[str, np.ndarray] = field(default_factory=dict)  # arrays x_<group>, y_<group>; empty: unfitted

    def steps(self) -> digits.Calibration:
        return digits.calibration_from(self.calibration)


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


def _write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, target)


def save_tuned(params: dict[str, np.ndarray], calibration: dict[str, np.ndarray], report: RetrainReport,
               path: Path | None = None) -> Path:
    """Write the weights, their calibration (naming the weights' SHA-256: fitted for them and no other), then the
    .json naming both files' SHA-256. Each file is replaced whole; until the .json is, it names the old files'
    hashes, so a reader in between finds a mismatch and reads with the shipped model and calibration."""
    path = path or digits.tuned_cnn_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **params)  # type: ignore[arg-type]
    raw = buf.getvalue()
    sha = digits.sha256_file(raw)
    buf = io.BytesIO()
    np.savez_compressed(buf, model_sha256=np.array(sha), **calibration)  # type: ignore[arg-type]
    cal_raw = buf.getvalue()
    _write(path, raw)
    _write(path.with_name(digits.tuned_calibration_path().name), cal_raw)
    _write(path.with_suffix(".json"), json.dumps(
        {"sha256": sha, "calibration_sha256": digits.sha256_file(cal_raw), **report.as_json()},
        ensure_ascii=False).encode())
    return path


def retrain(samples: list[Answer], *, seed: int = 0, epochs: int = EPOCHS, boxes: int = HELD_OUT_BOXES,
            write: bool = True, calibration_boxes: int = CALIBRATION_BOXES,
            calibration_positions: tuple[int, int] | None = None) -> tuple[RetrainReport, Candidate | None]:
    """Fine-tune on the answers not held back; keep the result (with its own calibration) only if it is not
    worse on the generic held-out boxes nor on the held-back answers. `calibration_positions`: MNIST positions
    (start, stop) within CALIBRATION for the calibration boxes, for a benchmark whose answers use the others."""
    # Small products: faster on one thread, and the same sums every run.
    with threadpool_limits(1, user_api="blas"):
        return _retrain(samples, seed=seed, epochs=epochs, boxes=boxes, write=write,
                        calibration_boxes=calibration_boxes, calibration_positions=calibration_positions)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}".replace(".", ",")


def _retrain(samples: list[Answer], *, seed: int, epochs: int, boxes: int, write: bool, calibration_boxes: int,
             calibration_positions: tuple[int, int] | None) -> tuple[RetrainReport, Candidate | None]:
    from formsvc.extract.digits_train import fit_calibration

    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    train, own = split(samples)
    x, y, used, glyphs = glyph_set(train)
    if used < MIN_BOXES:
        return RetrainReport(len(samples), used, glyphs, None, None, None, False,
                             f"Chưa đủ ô đã xác nhận để học (dùng được {used}, cần ít nhất {MIN_BOXES}; "
                             f"{len(own)} ô khác được giữ lại để kiểm tra).", 0, at, own_boxes=len(own)), None
    held = held_out_boxes(boxes)
    shipped_params = digits._shipped_cnn()
    shipped = box_accuracy(shipped_params, held)
    in_use_model = digits._model()
    in_use = shipped if not in_use_model.tuned else box_accuracy(in_use_model.cnn, held)
    params = fine_tune(x, y, seed=seed, epochs=epochs)
    candidate = box_accuracy(params, held)
    measured = len(own) >= MIN_OWN
    own_in_use = box_accuracy(in_use_model.cnn, own) if measured else None
    own_candidate = box_accuracy(params, own) if measured else None
    tolerance = GENERIC_TOLERANCE if measured else 0.0
    generic_ok = candidate >= max(shipped, in_use) - tolerance - 1e-12
    own_ok = own_candidate is None or own_in_use is None or own_candidate >= own_in_use
    better = generic_ok and own_ok
    own_text = (f"{_pct(own_candidate)} trong {len(own)} ô giữ lại của đơn vị (đang dùng {_pct(own_in_use)})"
                if measured else f"chưa đủ ô giữ lại của đơn vị để so ({len(own)}, cần {MIN_OWN})")
    if better:
        verdict = "đã dùng mô hình mới."
    elif not generic_ok:
        verdict = "kém hơn trên bộ ô kiểm tra chung nên không dùng, giữ mô hình đang dùng."
    else:
        verdict = "kém hơn trên các ô giữ lại của đơn vị nên không dùng, giữ mô hình đang dùng."
    reason = (f"Mô hình mới đọc đúng {_pct(candidate)} ô kiểm tra chung (mô hình gốc {_pct(shipped)}, đang dùng "
              f"{_pct(in_use)}, cho phép kém hơn tối đa {tolerance * 100:.1f} điểm %".replace(".", ",")
              + f") và {own_text}: {verdict}")
    report = RetrainReport(len(samples), used, glyphs, shipped, in_use, candidate, better, reason, len(held), at,
                           own_boxes=len(own), own_in_use=own_in_use, own_candidate=own_candidate,
                           tolerance=tolerance)
    tuned = Candidate(params)
    if better:
        generic = list(generic_calibration_boxes(calibration_boxes, calibration_positions))
        tuned.calibration = fit_calibration(generic, params, extra=own, log=False, ceiling=digits._calibration())
        report.calibration_boxes = len(generic) + len(own)
        if write:
            save_tuned(params, tuned.calibration, report)
    return report, tuned
