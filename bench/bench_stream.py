"""A 1,000-page scanned stack of filled-in forms in ONE file: memory over time, speed and accuracy.

Usage: .venv/bin/python bench/bench_stream.py [--forms 500] [--jobs 1]

500 people's self-assessments are printed by formsvc (one print pack), every page is rasterised at 200 dpi,
scores and total are written into the boxes "by hand" (fixtures/handwriting.py, held-out styles), the page is
turned by up to ±3° and JPEG-compressed, and all pages go into one PDF, written page by page. Then
`formsvc extract` (the CLI, the same code as the worker) reads the file while this script samples its memory
(RSS of the process and its children) twice a second. Memory must stay flat: pages are streamed, never held.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pypdfium2 as pdfium

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures.roster_gen import write_roster
from fixtures.scans import random_record, rotate, write_by_hand
from formsvc.render.converter import get_converter
from formsvc.render.pack import print_pack

SET_ID = "cdht-324-pl4"
DPI = 200


def _rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants, MB."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (OSError, StopIteration):
            continue
    return total


def build_stack(pack: Path, out: Path) -> list[dict[str, Any]]:
    """The pack's pages, filled in by hand and scanned, into one PDF; returns each form's truth in order."""
    src = pdfium.PdfDocument(str(pack))
    dst = pdfium.PdfDocument.new()
    truths = []
    rng = np.random.default_rng(3)
    scale = DPI / 72
    for first in range(0, len(src), 2):
        pages = []
        for i in (first, first + 1):
            bitmap = src[i].render(scale=scale, grayscale=True)
            pages.append(np.array(bitmap.to_pil().convert("L")))
        truth = random_record(5000 + first // 2, SET_ID)
        truths.append(truth)
        for page in write_by_hand(pages, truth, seed=first):
            scanned = rotate(page, rng, max_deg=3.0)
            ok, jpeg = cv2.imencode(".jpg", scanned, [cv2.IMWRITE_JPEG_QUALITY, 75])
            assert ok
            h, w = scanned.shape
            pdf_page = dst.new_page(w / scale, h / scale)
            image = pdfium.PdfImage.new(dst)
            image.load_jpeg(io.BytesIO(jpeg.tobytes()), inline=True)
            image.set_matrix(pdfium.PdfMatrix().scale(w / scale, h / scale))
            pdf_page.insert_obj(image)
            pdf_page.gen_content()
    dst.save(str(out))
    return truths


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forms", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # Staff only: everyone's form uses the one criteria set the handwriting is written for.
        roster = write_roster(work / "roster.csv", args.forms, seed=21, groups=["Cán bộ", "Giáo viên", "Nhân viên"])
        started = time.perf_counter()
        report = print_pack("cdht-self-assessment", roster, work / "pack.pdf", 2024, criteria_set=SET_ID)
        print(f"print pack: {report.forms} forms, {report.pages} pages, {len(report.errors)} roster errors")
        get_converter().close()
        stack = work / "stack.pdf"
        truths = build_stack(work / "pack.pdf", stack)
        n_pages = 2 * len(truths)
        print(f"built {n_pages} scanned pages ({stack.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.0f} s")

        out = work / "result.json"
        env = dict(os.environ, OMP_THREAD_LIMIT="1")
        cmd = [str(Path(sys.executable).parent / "formsvc"), "extract", str(stack), "--out", str(out),
               "--jobs", str(args.jobs)]
        samples: list[tuple[float, float]] = []
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)

        def sample() -> None:
            while proc.poll() is None:
                samples.append((time.perf_counter() - started, _rss_mb(proc.pid)))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate()
        elapsed = time.perf_counter() - started
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"formsvc extract failed: {err}")
        result = json.loads(out.read_text(encoding="utf-8"))

    docs = {d["subject"]["id"]: d for d in result["documents"]}
    n = ok = 0
    for i, truth in enumerate(truths):
        doc = docs.get(f"nv-{i + 1:04d}")
        for ind, value in truth["scores"].items():
            n += 1
            ok += doc is not None and doc["scores"].get(ind) == value
    rss = [r for _, r in samples if r > 0]
    tenth = max(1, len(rss) // 10)
    # The first tenth is start-up (imports, models); compare the second tenth, at work, with the last.
    first, last = float(np.median(rss[tenth:2 * tenth])), float(np.median(rss[-tenth:]))
    print(f"date: {dt.date.today().isoformat()}  pages: {n_pages}  jobs: {args.jobs}")
    print(f"extract: {elapsed:.0f} s = {n_pages / elapsed * 60:.0f} pages/min; documents {len(result['documents'])}"
          f"/{len(truths)}, page errors {len(result['errors'])}; handwritten scores right {ok / max(n, 1):.1%}")
    print(f"RSS MB (process + children): second tenth {first:.0f}, last tenth {last:.0f}, peak {max(rss):.0f}; "
          f"growth {last - first:+.0f} MB over {n_pages} pages")
    for t, r in samples[:: max(1, len(samples) // 12)]:
        print(f"  t={t:6.0f} s  rss={r:6.0f} MB")


if __name__ == "__main__":
    main()
