"""How sure a sheet's readings are once its declared total agrees with them.

Each score box and the total are read on their own, with a calibrated confidence (the probability that the reading
is right, measured on handwriting the models never saw) and the reader's other candidates. A sheet whose readings
add up to its total is much surer than its boxes one by one: a misread would have to be cancelled exactly by
another misread (or the total misread by the same amount). This module says how much surer, as a probability:

    P(every field is what it was read as | the truths add up to the true total, or the writer's own sum is off)

over every choice of values the criteria allow, each field's wrong readings spread over its other candidates (by
their scores) and, for the share of misreads whose truth no reader offered (ESCAPE), evenly over every allowed value.
A dynamic programme over the running sum keeps it exact and small (a sheet is ~10 boxes of ~20 values each).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np

from formsvc.extract.digits import ACCEPT_RIGHT

# Of a wrong reading's probability, the share whose true value is none of the reader's candidates: 0.25 measured on
# 3,000 calibration boxes (digits_train.CALIBRATION positions, 64 misreads); rounded up, since the rest is spread by
# the candidates' own (uncalibrated) scores.
ESCAPE = 0.35
# A writer whose own total disagrees with their boxes: then a misread box can make the sum agree by chance.
WRITER_SUM_WRONG = 0.05
# Most probability a reading is given whatever its confidence: nothing read from paper is certain.
MOST_SURE = 0.9999


@dataclass(frozen=True)
class Reading:
    """One field as the sheet decoding sees it: the value taken, its calibrated confidence, the reader's allowed
    candidates (value, score) and the values the criteria allow (0..max_points on step)."""
    value: float
    confidence: float
    candidates: tuple[tuple[float, float], ...]
    max_points: float
    step: float


def p_right(confidence: float, threshold: float) -> float:
    """Confidence -> probability right: the inverse of the calibration's map (digits_train.to_confidence), which
    puts ACCEPT_RIGHT at the review threshold and is linear on either side of it."""
    c = min(max(confidence, 0.0), 1.0)
    if c <= threshold:
        p = c / threshold * ACCEPT_RIGHT
    else:
        p = ACCEPT_RIGHT + (c - threshold) / (1.0 - threshold) * (1.0 - ACCEPT_RIGHT)
    return min(max(p, 1e-6), MOST_SURE)


def _grid(r: Reading, unit: int) -> int:
    """Number of allowed values on the sum's grid (index = hundredths / unit)."""
    return round(r.max_points * 100) // unit + 1


def distribution(r: Reading, threshold: float, unit: int) -> np.ndarray:
    """P(true value) over the sum's grid (index k = k * unit hundredths); zero off the field's own allowed values."""
    out = np.zeros(_grid(r, unit))
    step = round(r.step * 100)
    allowed = np.arange(0, round(r.max_points * 100) + 1, step) // unit
    on_grid = round(r.value * 100) % step == 0 and 0 <= r.value <= r.max_points
    own = round(r.value * 100) // unit if on_grid else -1  # a value the criteria do not allow is no one's truth
    p = p_right(r.confidence, threshold) if on_grid else 0.0
    others = allowed[allowed != own]
    if len(others) == 0:
        out[own] = 1.0
        return out
    alts = {round(v * 100) // unit: s for v, s in r.candidates if v != r.value and s > 0
            and round(v * 100) % step == 0 and 0 <= v <= r.max_points}
    spread = ESCAPE if alts else 1.0
    out[others] = (1.0 - p) * spread / len(others)
    total_score = sum(alts.values())
    for k, s in alts.items():
        out[k] += (1.0 - p) * (1.0 - spread) * s / total_score
    if on_grid:
        out[own] = p
    return out


def _setup(boxes: Sequence[Reading], total: Reading, threshold: float, chosen: Sequence[float] | None
           ) -> tuple[list[float], int, list[np.ndarray], np.ndarray] | None:
    values = list(chosen) if chosen is not None else [*(b.value for b in boxes), total.value]
    if len(values) != len(boxes) + 1 or abs(sum(values[:-1]) - values[-1]) > 1e-6:
        return None
    unit = reduce(math.gcd, [round(f.step * 100) for f in [*boxes, total]])
    dists = [distribution(b, threshold, unit) for b in boxes]
    t = distribution(total, threshold, unit)
    if any(not 0 <= round(v * 100) // unit < len(d) for v, d in zip(values, [*dists, t], strict=True)):
        return None
    return values, unit, dists, t


def _agree(sums: np.ndarray, t: np.ndarray) -> float:
    """P(true total == true sum of the boxes), each as its readers see it."""
    n = min(len(sums), len(t))
    return float(sums[:n] @ t[:n])


def _weights(n_total: int) -> tuple[float, float]:
    """Weights of the writer's sum being right and being wrong. Right: the truths are tied by the sum, so each
    agreeing choice weighs n_total times an unconstrained one (the total's reading was scored under a flat prior
    over n_total values). Wrong: any total."""
    return (1.0 - WRITER_SUM_WRONG) * n_total, WRITER_SUM_WRONG * n_total / max(n_total - 1, 1)


def sheet_sure(boxes: Sequence[Reading], total: Reading, threshold: float,
               chosen: Sequence[float] | None = None) -> float:
    """The probability that every box and the total are what they were read as (or the `chosen` values, the total
    last: another choice that adds up), given the sheet. 0 when the values do not add up."""
    setup = _setup(boxes, total, threshold, chosen)
    if setup is None:
        return 0.0
    values, unit, dists, t = setup
    sums = reduce(np.convolve, dists) if dists else np.ones(1)
    agree = _agree(sums, t)
    ours = math.prod(float(d[round(v * 100) // unit]) for d, v in zip([*dists, t], values, strict=True))
    right, wrong = _weights(len(t))
    return right * ours / (right * agree + wrong * max(1.0 - agree, 0.0))


def field_sure(boxes: Sequence[Reading], total: Reading, threshold: float,
               chosen: Sequence[float] | None = None) -> list[float] | None:
    """Per field (the boxes, then the total), the probability that it is what it was read as (or its `chosen`
    value), given the whole sheet: a reading the sum agrees with gains, one that another misread could have made
    add up loses. None when the values do not add up."""
    setup = _setup(boxes, total, threshold, chosen)
    if setup is None:
        return None
    values, unit, dists, t = setup
    sums = reduce(np.convolve, dists) if dists else np.ones(1)
    agree = _agree(sums, t)
    right, wrong = _weights(len(t))
    z = right * agree + wrong * max(1.0 - agree, 0.0)
    out = []
    for i, (d, v) in enumerate(zip(dists, values, strict=False)):
        others = reduce(np.convolve, [e for j, e in enumerate(dists) if j != i]) if len(dists) > 1 else np.ones(1)
        k = round(v * 100) // unit
        shifted = np.zeros(len(t))  # P(the other boxes add up to T - v), T over the total's grid
        n = max(0, min(len(others), len(t) - k))
        shifted[k:k + n] = others[:n]
        tied = float(shifted @ t)
        out.append(float(d[k]) * (right * tied + wrong * max(1.0 - tied, 0.0)) / z)
    k = round(values[-1] * 100) // unit
    at = float(sums[k]) if k < len(sums) else 0.0
    out.append(float(t[k]) * (right * at + wrong * max(1.0 - at, 0.0)) / z)
    return out
