"""Handwritten score boxes: today's recogniser vs the one before real handwriting (baseline), same boxes, one run.

Usage: .venv/bin/python bench/bench_digits.py [--boxes 1000] [--baseline 02906a4] [--records 24]
Boxes are 160x105 px (a score box at 200 dpi) with their printed frame, written with REAL human handwriting the
recogniser never saw (MNIST digits at digits_train.HELD_OUT positions, drawn as written), values 0..10 on a
0.5 step ("9", "10", "7,5"), a fifth of them over the frame's edge, a quarter in blue ballpoint scanned grey;
"synthetic" rows use digit_synth's held-out "test" pen style instead. Degraded = blur, noise and JPEG q50 as a
mid-range scanner leaves them. "Accepted" = confidence >= settings.review_confidence (no person looks at it);
"silent" = accepted and wrong. "Top 3" = the right value among the first three candidates (what the declared-
total decoding in parse chooses from). The baseline is the recogniser (code and weights) at git commit
--baseline, loaded from history into a temp dir.
--records N: N self-assessments printed by formsvc, every score and the total written in real held-out handwriting
(fixtures.handwriting with MNIST_SHARE = 1), scanned at 200 dpi clean / turned / JPEG, read by the whole pipeline
(extract_files: the declared-total decoding in parse included): scores exact, records valid with nothing to review,
silent errors (a wrong score not flagged), for today's recogniser only.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["OMP_THREAD_LIMIT"] = "1"

from fixtures.handwriting import render_handwritten, score_text  # noqa: E402
from fixtures.scans import blur, jpeg  # noqa: E402
from formsvc.extract import digits  # noqa: E402
from formsvc.settings import get_settings  # noqa: E402

BOX = (105, 160)
BUCKETS = (0.0, 0.3, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0001)


def _mild_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img.astype(np.float32) + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def degraded(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return jpeg(_mild_noise(blur(img, rng), rng), rng, quality=50)


def baseline(commit: str, into: Path) -> ModuleType:
    """digits.py and its weights as they were at `commit`, importable from `into`."""
    (into / "models").mkdir(parents=True, exist_ok=True)
    files = ["formsvc/extract/digits.py", "formsvc/extract/models/digits.npz", "formsvc/extract/models/digits_hog.npz",
             "formsvc/extract/models/digits_cnn.npz", "formsvc/extract/models/digits_calibration.npz"]
    for f in files:
        # The CNN and the calibration came later: a commit before them has none, and its recogniser did without.
        shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{f}"], capture_output=True)
        if shown.returncode == 0:
            (into / f.removeprefix("formsvc/extract/")).write_bytes(shown.stdout)
    spec = importlib.util.spec_from_file_location("baseline_digits", into / "digits.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def boxes(n: int, style: str, degrade: bool, seed: int) -> list[tuple[float, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        v = int(rng.integers(0, 21)) / 2
        img = render_handwritten(score_text(v), BOX, rng, style, overflow=0.2, blue=0.25, frame=True)
        out.append((v, degraded(img, rng) if degrade else img))
    return out


def measure(read: Callable[..., object], data: list[tuple[float, np.ndarray]], threshold: float) -> dict[str, object]:
    conf, right, top3 = [], [], []
    started = time.perf_counter()
    for v, img in data:
        r = read(img, max_value=10, step=0.5)
        # A crossed-out box goes to review in the pipeline (read.combine); blank and numbers keep their confidence.
        conf.append(0.5 if r.state == "crossed" else float(r.confidence))  # type: ignore[attr-defined]
        right.append(r.value == v)  # type: ignore[attr-defined]
        top3.append(v in [c for c, _ in r.candidates[:3]])  # type: ignore[attr-defined]
    ms = (time.perf_counter() - started) / len(data) * 1000
    c, ok = np.array(conf), np.array(right)
    accepted = c >= threshold
    return {"exact": ok.mean(), "top3": np.mean(top3), "accepted": accepted.mean(),
            "silent": int((accepted & ~ok).sum()), "ms": ms, "conf": c, "right": ok}


def reliability(c: np.ndarray, ok: np.ndarray) -> list[str]:
    rows = []
    for lo, hi in itertools.pairwise(BUCKETS):
        sel = (c >= lo) & (c < hi)
        n = int(sel.sum())
        acc = f"{ok[sel].mean():.1%}" if n else "–"
        rows.append(f"| {lo:.2f}–{min(hi, 1.0):.2f} | {n} | {acc} |")
    return rows


def records(n: int, threshold: float) -> None:
    import fixtures.handwriting as handwriting
    from fixtures.scans import degrade, handwritten_record, rasterise, save_scan, write_by_hand
    from formsvc.extract.pipeline import extract_files
    from formsvc.render import render_document
    from formsvc.render.converter import get_converter

    handwriting.MNIST_SHARE = 1.0  # every box in real handwriting
    sheets = [handwritten_record(7000 + i) for i in range(n)]
    pages = [write_by_hand(rasterise(render_document("cdht-self-assessment", printed)), truth, seed=7000 + i)
             for i, (printed, truth) in enumerate(sheets)]
    get_converter().close()
    print(f"\nWhole sheets, real handwriting, {n} people ({sum(len(t['scores']) for _, t in sheets)} scores each "
          "condition):\n")
    print("| scan | scores exact | records valid, no review | silent | pages/min (2 jobs) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("clean", "rotate", "jpeg"):
            files = [save_scan(degrade(pg, kind, seed=i), Path(tmp) / f"{kind}-{i}.tif") for i, pg in enumerate(pages)]
            started = time.perf_counter()
            docs = {d.subject.id: d for d in extract_files(files, jobs=2).documents}
            took = time.perf_counter() - started
            total = exact = silent = valid = 0
            for _, truth in sheets:
                doc = docs.get(truth["subject"]["id"])
                low = {f.name for f in doc.fields if f.confidence < threshold} if doc else set()
                valid += bool(doc and doc.status == "valid")
                for ind, value in truth["scores"].items():
                    got = doc.scores.get(ind) if doc else None
                    total += 1
                    exact += got == value
                    silent += bool(doc and got != value and f"scores.{ind}" not in low)
            n_pages = sum(len(pg) for pg in pages)
            print(f"| {kind} | {exact / total:.1%} | {valid}/{n} | {silent} | {n_pages / took * 60:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boxes", type=int, default=1000)
    ap.add_argument("--baseline", default="02906a4")
    ap.add_argument("--records", type=int, default=0)
    args = ap.parse_args()
    threshold = get_settings().review_confidence
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline(args.baseline, Path(tmp))
        models = {"new": digits.read_score, f"baseline {args.baseline}": old.read_score}
        print(f"boxes per condition: {args.boxes}; accepted = confidence >= review_confidence {threshold}\n")
        print("| condition | recogniser | boxes exact | top 3 | accepted | silent | ms/box |")
        print("|---|---|---|---|---|---|---|")
        pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in models}
        for style, degrade in (("mnist", False), ("mnist", True), ("test", False), ("test", True)):
            data = boxes(args.boxes, style, degrade, seed=2026)
            label = f"{'real' if style == 'mnist' else 'synthetic'}, {'degraded' if degrade else 'clean'}"
            for name, read in models.items():
                m = measure(read, data, threshold)
                if style == "mnist":
                    pooled[name].append((m["conf"], m["right"]))  # type: ignore[arg-type]
                print(f"| {label} | {name} | {m['exact']:.1%} | {m['top3']:.1%} | {m['accepted']:.1%} | "
                      f"{m['silent']} | {m['ms']:.1f} |")
        for name, parts in pooled.items():
            c = np.concatenate([p[0] for p in parts])
            ok = np.concatenate([p[1] for p in parts])
            print(f"\nReliability, {name}, real handwriting clean + degraded ({len(c)} boxes):\n")
            print("| confidence | boxes | read right |\n|---|---|---|")
            print("\n".join(reliability(c, ok)))
    if args.records:
        records(args.records, threshold)


if __name__ == "__main__":
    main()
