"""Extraction quality and speed on formsvc's own forms, scanned and degraded, against bare Tesseract.

Usage: .venv/bin/python bench/bench_extract.py [--people 12] [--jobs 2]
Quality: every degradation of fixtures/scans.py over N people's self-assessments (typed values), field
accuracy per degradation and field type, and silent errors (a wrong value not flagged for review).
Speed: the same pages end to end (2 worker processes) vs bare full-page `tesseract -l vie` per page,
run one after the other in this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["OMP_THREAD_LIMIT"] = "1"

from fixtures.scans import (
    DEGRADATIONS,
    degrade,
    handwritten_record,
    random_record,
    rasterise,
    save_scan,
    write_by_hand,
)
from formsvc.extract.pipeline import extract_files
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.settings import get_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0,
                    help="Another set of people, writers and degradations (the readers were tuned on seed 0)")
    args = ap.parse_args()
    threshold = get_settings().review_confidence
    o = args.seed
    truth = [random_record(1000 + o + n) for n in range(args.people)]
    renders = [rasterise(render_document("cdht-self-assessment", t)) for t in truth]
    hand = [handwritten_record(2000 + o + n) for n in range(args.people)]
    hand_truth = [t for _, t in hand]
    hand_renders = [write_by_hand(rasterise(render_document("cdht-self-assessment", p)), t, seed=o + n)
                    for n, (p, t) in enumerate(hand)]
    get_converter().close()
    stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # total, correct, silent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        speed_files: list[Path] = []
        for kind in DEGRADATIONS:
            files = [save_scan(degrade(pages, kind, seed=o + n), work / f"{kind}-{n}.tif")
                     for n, pages in enumerate(renders)]
            hand_files = [save_scan(degrade(pages, kind, seed=o + n), work / f"{kind}-h{n}.tif")
                          for n, pages in enumerate(hand_renders)]
            if kind in ("rotate", "noise", "jpeg"):
                speed_files += files
            result = extract_files(files + hand_files, jobs=args.jobs)
            docs = {d.subject.id: d for d in result.documents}
            for t, ftype in [(t, "score (typed)") for t in truth] + [(t, "score (handwritten)") for t in hand_truth]:
                doc = docs.get(t["subject"]["id"])
                low = {f.name for f in doc.fields if f.confidence < threshold} if doc else set()
                for ind, value in t["scores"].items():
                    s = stats[(kind, ftype)]
                    got = doc.scores.get(ind) if doc else None
                    s[0] += 1
                    s[1] += got == value
                    s[2] += got != value and doc is not None and f"scores.{ind}" not in low
                for field, value in (("subject.full_name", t["subject"]["full_name"]),
                                     ("subject.birth_year", t["subject"]["birth_year"])):
                    s = stats[(kind, "printed text")]
                    got = getattr(doc.subject, field.split(".")[1]) if doc else None
                    s[0] += 1
                    s[1] += got == value
                    s[2] += got != value and doc is not None and field not in low
        pages = sum(len(r) for r in renders) * 3
        started = time.perf_counter()
        extract_files(speed_files, jobs=args.jobs)
        ours = time.perf_counter() - started
        # The service's way: `args.jobs` rq workers already running (models loaded), each taking whole files.
        with ProcessPoolExecutor(max_workers=args.jobs, initializer=_warm, initargs=(speed_files[0],)) as pool:
            list(pool.map(_noop, range(4 * args.jobs)))
            started = time.perf_counter()
            shares = [speed_files[i::args.jobs] for i in range(args.jobs)]
            list(pool.map(_extract_share, shares))
            warm = time.perf_counter() - started
        started = time.perf_counter()
        for f in speed_files:
            subprocess.run(["tesseract", str(f), "-", "-l", "vie"], capture_output=True, check=True)
        bare = time.perf_counter() - started
        get_converter().close()
    print(f"date: {dt.date.today().isoformat()}  people: {args.people}  jobs: {args.jobs}  seed: {args.seed}")
    print(f"{'degradation':<12} {'field type':<15} {'fields':>6} {'accuracy':>9} {'silent':>6}")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (kind, ftype), (n, ok, silent) in stats.items():
        print(f"{kind:<12} {ftype:<15} {n:>6} {ok / n:>9.1%} {silent:>6}")
        for i, v in enumerate((n, ok, silent)):
            totals[ftype][i] += v
    for ftype, (n, ok, silent) in totals.items():
        print(f"{'ALL':<12} {ftype:<15} {n:>6} {ok / n:>9.1%} {silent:>6}")
    print(f"speed: {pages} scanned pages end to end in {ours:.1f} s = {pages / ours * 60:.0f} pages/min "
          f"(jobs={args.jobs}, a new process pool for the call); bare `tesseract -l vie` full page: {bare:.1f} s = "
          f"{pages / bare * 60:.0f} pages/min; ratio ours/bare time = {ours / bare:.2f} (target <= 0.4, >= 240 "
          f"pages/min)")
    print(f"speed, warm workers as in the service ({args.jobs} started processes, files shared out): {warm:.1f} s = "
          f"{pages / warm * 60:.0f} pages/min; ratio to bare = {warm / bare:.2f}")


def _warm(sample: Path) -> None:
    """A worker that has already done a job: modules imported, models and zone caches loaded."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    extract_files([sample], jobs=1)


def _noop(_: int) -> None:
    return None


def _extract_share(files: list[Path]) -> int:
    return len(extract_files(files, jobs=1).documents)


if __name__ == "__main__":
    main()
