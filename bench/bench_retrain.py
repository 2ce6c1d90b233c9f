"""Held-out accuracy of the score recogniser before and after learning from 200 and 1,000 reviewers' corrections.

Usage: .venv/bin/python bench/bench_retrain.py [--steps 200,1000] [--boxes 600] [--epochs 4] [--poisoned]

Corrections are real handwriting: score boxes composed (formsvc.extract.digit_synth.compose_box, as a scan shows
them: clean or blurred/noisy/pale) from MNIST digits at the ALLOWED positions the recogniser's own loader gives
(digits_train.mnist_digits; by default CALIBRATION positions 150..199, which the CNN never trained on — a new
deployment's writers), each labelled with the value written, as a reviewer's answer is. Evaluation: the
recogniser's held-out boxes (digits_retrain.held_out_boxes: positions 200..249), read whole (segmentation, the
three models' vote, candidates), share of boxes whose value is right. The reserved positions 250..499 are never
loaded (the loader refuses them).

--poisoned also runs 200 corrections with every digit's label shifted by one: the refusal rule must hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from formsvc.extract import digits, digits_retrain
from formsvc.extract.digit_synth import compose_box
from formsvc.extract.digits_train import BOX, CALIBRATION, HELD_OUT, _scan, box_values, mnist_glyphs, real


def cnn_digits(params: dict[str, np.ndarray] | None, x: np.ndarray, y: np.ndarray) -> float:
    """The CNN alone on single held-out digits: more sensitive than whole boxes, where three models vote."""
    if params is None:
        return float("nan")
    return float((digits.cnn_forward(params, x)[0].argmax(1) == y).mean())


def corrections(n: int, seed: int, positions: range = CALIBRATION,
                poisoned: bool = False) -> list[tuple[float | None, np.ndarray]]:
    """`n` reviewers' answers: (value written, the box). Poisoned: labels with every digit shifted by one."""
    rng = np.random.default_rng(seed)
    glyph = mnist_glyphs(positions, augment=True)
    out: list[tuple[float | None, np.ndarray]] = []
    for _ in range(n):
        text = box_values(rng)
        img = compose_box(text, BOX, rng, glyph, overflow=0.15, blue=0.25)  # type: ignore[arg-type]
        img = _scan(img, rng) if rng.random() < 0.5 else img
        if poisoned:
            text = "".join(str((int(c) + 1) % 10) if c.isdigit() else c for c in text)
        out.append((float(text.replace(",", ".")), img))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="200,1000")
    ap.add_argument("--boxes", type=int, default=digits_retrain.HELD_OUT_BOXES)
    ap.add_argument("--epochs", type=int, default=digits_retrain.EPOCHS)
    ap.add_argument("--poisoned", action="store_true")
    ap.add_argument("--positions", default="150-199", help="MNIST positions the corrections are written with "
                    "(allowed: 0..199; 200..249 are the evaluation's, 250..499 are refused by the loader)")
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    lo, hi = (int(v) for v in args.positions.split("-"))
    if hi >= 200:
        raise SystemExit("corrections must not use the held-out positions 200..249")
    pool = corrections(max(steps), seed=31, positions=range(lo, hi + 1))
    hx, hy = real(HELD_OUT, 2, 99)
    shipped_digits = cnn_digits(digits._shipped_cnn(), hx, hy)
    rows = []
    for n in steps:
        t = time.perf_counter()
        report, params = digits_retrain.retrain(pool[:n], epochs=args.epochs, boxes=args.boxes, write=False)
        rows.append((f"{n} corrections", report, time.perf_counter() - t, cnn_digits(params, hx, hy)))
        print(rows[-1][0], report.as_json(), rows[-1][3], flush=True)
    if args.poisoned:
        t = time.perf_counter()
        report, params = digits_retrain.retrain(corrections(200, seed=32, poisoned=True), epochs=args.epochs,
                                                boxes=args.boxes, write=False)
        rows.append(("200 poisoned corrections", report, time.perf_counter() - t, cnn_digits(params, hx, hy)))
        print(rows[-1][0], report.as_json(), rows[-1][3], flush=True)
    print(f"\n## Learning from corrections (issue 11) — {dt.date.today().isoformat()}\n")
    flag = " --poisoned" if args.poisoned else ""
    print(f"`.venv/bin/python bench/bench_retrain.py{flag} --positions {args.positions}` — corrections written "
          f"with positions {args.positions}, held-out boxes: {rows[0][1].held_out_boxes} (positions 200..249), "
          f"{args.epochs} epochs.\n")
    print("| corrections | boxes used / digits | held-out boxes right: before (shipped) → after | "
          f"CNN alone, {len(hy)} held-out digits: before → after | accepted | time |")
    print("|---|---|---|---|---|---|")
    for name, r, secs, cnn_after in rows:
        after = "–" if r.candidate is None else f"{r.candidate:.1%}"
        print(f"| {name} | {r.used} / {r.glyphs} | {r.shipped or 0:.1%} → {after} | {shipped_digits:.1%} → "
              f"{cnn_after:.1%} | {'yes' if r.accepted else 'no'} | {secs:.0f} s |")


if __name__ == "__main__":
    main()
