"""Handwritten score boxes: the recogniser vs Tesseract on the same held-out crops, in one run.

Usage: .venv/bin/python bench/bench_digits.py [--boxes 600]
Crops are score boxes (160x110 px, ~20x14 mm at 200 dpi) written in held-out styles (fixtures/handwriting.py),
per degradation. "Silent" = wrong value with confidence >= 0.80 (not flagged for review). "Top 3" = the right
value is among the recogniser's first three allowed candidates (what the declared-total decoding chooses from).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytesseract

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["OMP_THREAD_LIMIT"] = "1"

from fixtures.handwriting import render_handwritten, score_text
from fixtures.scans import blur, jpeg, noise
from formsvc.extract.digits import read_score

DEGRADE = {"clean": [], "blur": [blur], "noise": [noise], "jpeg": [jpeg],
           "thick": [lambda im, rng: cv2.erode(im, np.ones((3, 3), np.uint8))]}


def tesseract(img: np.ndarray) -> tuple[float | None, float]:
    d = pytesseract.image_to_data(img, lang="eng", config="--psm 7 -c tessedit_char_whitelist=0123456789,.",
                                  output_type=pytesseract.Output.DICT)
    words = [(t, float(c)) for t, c in zip(d["text"], d["conf"], strict=True) if t.strip()]
    text = "".join(t for t, _ in words).replace(",", ".")
    try:
        return float(text), min(c for _, c in words) / 100
    except ValueError:
        return None, 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boxes", type=int, default=600)
    args = ap.parse_args()
    values = [x / 2 for x in range(21)]
    print(f"date: {dt.date.today().isoformat()}  boxes per degradation: {args.boxes}")
    print(f"{'degradation':<10} {'ours acc':>9} {'top 3':>6} {'silent':>7} {'flagged':>8} {'ms/box':>7} | "
          f"{'tess acc':>9} {'silent':>7} {'ms/box':>7}")
    for kind, steps in DEGRADE.items():
        rng = np.random.default_rng(2024)
        ours = [0, 0, 0, 0]
        tess = [0, 0]
        t_ours = t_tess = 0.0
        for _ in range(args.boxes):
            v = values[int(rng.integers(0, len(values)))]
            img = render_handwritten(score_text(v), (110, 160), rng)
            for step in steps:
                img = step(img, rng)
            started = time.perf_counter()
            r = read_score(img)
            t_ours += time.perf_counter() - started
            ours[0] += r.value == v
            ours[1] += r.value != v and r.confidence >= 0.8
            ours[2] += r.confidence < 0.8
            ours[3] += v in [c for c, _ in r.candidates[:3]]
            started = time.perf_counter()
            tv, tc = tesseract(img)
            t_tess += time.perf_counter() - started
            tess[0] += tv == v
            tess[1] += tv != v and tc >= 0.8
        n = args.boxes
        print(f"{kind:<10} {ours[0] / n:>9.1%} {ours[3] / n:>6.1%} {ours[1]:>7} {ours[2] / n:>8.1%} "
              f"{t_ours / n * 1000:>7.1f} | "
              f"{tess[0] / n:>9.1%} {tess[1]:>7} {t_tess / n * 1000:>7.1f}")


if __name__ == "__main__":
    main()
