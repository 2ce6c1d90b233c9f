"""Real captures: people's handwriting, print-and-scan and phone degradations, colour seals, open booklets, a
copier's black-and-white scan.

Usage: .venv/bin/python bench/bench_capture.py [--people 12] [--jobs 2] [--seed 0] [--only hw_clean,seal]
                                               [--no-roster] [--keep DIR]

Run it as `bash scripts/dev.sh bench bench/bench_capture.py ...`: that installs augraphy once, without the second
OpenCV build it asks for (which would change every reading).

Each condition prints N people's self-assessments (formsvc's own form, pre-filled with the person as a clerk prints
them from a roster), fills the score boxes and the total by hand with REAL handwriting (MNIST digits from the
recogniser's own held-out positions, never trained on) or leaves them typed, degrades the pages, and reads them
back as the service stores them (known values from the roster the forms were printed from, then one validation;
--no-roster reads as the CLI does). Document degradations come from augraphy (a library made to simulate
printing, scanning and photographing paper), besides the project's own perspective / seal / spread effects. Per
condition: score boxes exact, records accepted with no review, pages identified, names exact (as OCR read them,
before the roster), silent errors (a wrong value on a field not flagged for review), pages per minute, and the
time ratio to bare `tesseract -l vie` on the same pages in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["OMP_THREAD_LIMIT"] = "1"
# augraphy draws some of its noise (a fold's edges) with random.random() inside numba's parallel loops: numba's own
# generator, one per thread, which Python's seed never reaches. One thread, seeded before every page
# (_seed_numba), makes a seed's pages the same in every run; before, two runs of one seed differed by a sheet or two.
os.environ["NUMBA_NUM_THREADS"] = "1"

from fixtures.captures import black_and_white_scan, booklet, colour_with_seals, curled, phone_photo, skewed
from fixtures.scans import handwritten_record, jpeg, random_record, rasterise, save_scan, write_by_hand
from formsvc.extract.pipeline import ExtractionResult, read_files
from formsvc.records import Record
from formsvc.render import api as render_api
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.roster import Person
from formsvc.service.ingest import with_known_values
from formsvc.settings import get_settings

DPI = 200


@dataclass
class Stats:
    boxes: int = 0
    boxes_ok: int = 0
    records: int = 0
    accepted: int = 0
    pages: int = 0
    pages_identified: int = 0
    pages_placed: int = 0  # of those, placed by the pages around them (no identity readable on the page itself)
    names: int = 0
    names_ok: int = 0
    silent: int = 0
    seconds: float = 0.0
    bare_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# ---- degradations ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _numba_seeder() -> Callable[[int], None]:
    """Seeds the generator numba-compiled code draws from (Python's and numpy's seeds do not reach it); compiled
    once."""
    import random

    from numba import njit

    @njit  # type: ignore[misc]
    def seed_inside(s: int) -> None:
        random.seed(s)
        np.random.seed(s)

    return seed_inside  # type: ignore[no-any-return]


def _seed_numba(seed: int) -> None:
    _numba_seeder()(seed)


def _augraphy(phases: dict[str, list[Any]], seed: int) -> Callable[[np.ndarray], np.ndarray]:
    from augraphy import AugraphyPipeline

    pipe = AugraphyPipeline(**phases, random_seed=seed)

    def run(img: np.ndarray) -> np.ndarray:
        _seed_numba(seed)
        # BleedThrough shows a random image of augraphy's cache (the last 30 pages it saw, listed in the file system's
        # order, which differs from one fresh folder to the next): emptied, the cache holds this page only.
        shutil.rmtree(Path.cwd() / "augraphy_cache", ignore_errors=True)
        out = pipe(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img)
        out = out if isinstance(out, np.ndarray) else np.asarray(out)
        return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY) if out.ndim == 3 and img.ndim == 2 else out

    return run


def print_scan(seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A realistic office print-and-scan: ink bleed, low-ink streaks, lighting gradient, noise, JPEG, a slight
    rotation and a fold."""
    from augraphy import Folding, InkBleed, Jpeg, LightingGradient, LowInkPeriodicLines, SubtleNoise

    aug = _augraphy({
        "ink_phase": [InkBleed(intensity_range=(0.3, 0.5), p=0.8), LowInkPeriodicLines(p=0.7)],
        "paper_phase": [],
        "post_phase": [Folding(fold_count=1, fold_noise=0.05, gradient_width=(0.1, 0.15),
                               gradient_height=(0.005, 0.01), p=1.0),
                       LightingGradient(max_brightness=255, min_brightness=170, p=1.0),
                       SubtleNoise(p=1.0), Jpeg(quality_range=(45, 70), p=1.0)],
    }, seed)
    rng = np.random.default_rng(seed)

    def run(img: np.ndarray) -> np.ndarray:
        return skewed(aug(img), float(rng.uniform(-2.0, 2.0)))

    return run


def harsh(seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Harsher document damage: dithering, bleed-through from the other side, glare, a bad photocopy."""
    from augraphy import BadPhotoCopy, BleedThrough, Dithering, ReflectedLight

    aug = _augraphy({
        "ink_phase": [BleedThrough(alpha=0.15, p=1.0)],
        "paper_phase": [],
        "post_phase": [Dithering(p=1.0), BadPhotoCopy(noise_iteration=(1, 2), p=0.7),
                       ReflectedLight(reflected_light_internal_radius_range=(0.0, 0.05),
                                      reflected_light_external_radius_range=(0.1, 0.25), p=1.0)],
    }, seed)
    return aug


# ---- one condition --------------------------------------------------------------------------------------------

def _save(images: list[np.ndarray], path: Path, bilevel: bool = False) -> Path:
    if bilevel:
        return save_scan(images, path, DPI, bilevel=True)
    ims = [Image.fromarray(i) for i in images]
    if path.suffix == ".jpg":
        ims[0].save(path, quality=85)
    else:
        ims[0].save(path, save_all=True, append_images=ims[1:], compression="tiff_deflate")
    return path


def _flagged(doc: Record, name: str, threshold: float) -> bool:
    low = any(f.name == name and f.confidence < threshold for f in doc.fields)
    reasons = doc.result.reasons if doc.result else []
    # A value left empty because its page is missing is reported with the missing page, not passed as read.
    missing = any(r.code == "pages_missing" for r in reasons)
    return low or missing or any(r.field == name and r.severity in ("review", "error") for r in reasons)


def read_as_service(files: list[Path], jobs: int, roster: list[dict[str, Any]] | None) -> tuple[ExtractionResult,
                                                                                                list[Record]]:
    """What the service stores (formsvc.service.ingest): the pages read, the known values of the roster the forms
    were printed from applied (a printed form's QR carries the person's roster id), each document validated once.
    Also the documents as read, before the roster (names as OCR read them). No roster: the CLI's path."""
    names = {t["subject"]["id"]: t["subject"]["full_name"] for t in roster or []}
    return as_service(read_files(files, jobs=jobs, names=names), roster)


def as_service(out: ExtractionResult, roster: list[dict[str, Any]] | None) -> tuple[ExtractionResult, list[Record]]:
    """read_as_service once the pages are read (bench/replay_decisions.py re-decides kept reads through it)."""
    read = list(out.documents)
    people = {t["subject"]["id"]: Person(row=n + 2, full_name=t["subject"]["full_name"],
                                         birth_year=t["subject"].get("birth_year"), unit=t["subject"].get("unit"),
                                         group=t["subject"].get("group"), id=t["subject"]["id"], criteria_set=None)
              for n, t in enumerate(roster or [])}
    out.documents, out.findings = with_known_values(out.documents, out.findings, people)
    return out, read


def score(stats: Stats, truths: list[dict[str, Any]], docs: list[Record], threshold: float,
          read: list[Record]) -> None:
    by_id = {d.subject.id: d for d in docs if d.subject.id}
    read_names = {d.subject.id: d.subject.full_name for d in read if d.subject.id}
    for t in truths:
        doc = by_id.get(t["subject"]["id"])
        stats.records += 1
        stats.names += 1
        if doc is None:
            stats.boxes += len(t["scores"]) + 1
            continue
        stats.accepted += doc.status == "valid"
        if doc.status != "valid" and doc.result:
            why = sorted({f"{r.code}:{r.field}" for r in doc.result.reasons if r.severity in ("review", "error")})
            stats.notes.append(f"review {t['subject']['id']}: {', '.join(why)[:300]}")
        got_name = doc.subject.full_name
        stats.names_ok += read_names.get(t["subject"]["id"]) == t["subject"]["full_name"]
        subject = [("subject.full_name", t["subject"]["full_name"], got_name)]
        if t["subject"].get("birth_year") is not None:  # printed, so read back (and checked) too
            subject.append(("subject.birth_year", t["subject"]["birth_year"], doc.subject.birth_year))
        for name, want, got in subject:
            if got != want and not _flagged(doc, name, threshold):
                stats.silent += 1
                stats.notes.append(f"silent: {t['subject']['id']} {name} {want} -> {got}")
        pairs = [(f"scores.{k}", v, doc.scores.get(k)) for k, v in t["scores"].items()]
        pairs.append(("total_declared", t["total_declared"], doc.total_declared))
        for name, want, got in pairs:
            stats.boxes += 1
            stats.boxes_ok += got == want
            if got != want and not _flagged(doc, name, threshold):
                stats.silent += 1
                stats.notes.append(f"silent: {t['subject']['id']} {name} {want} -> {got}")


def _one_opencv() -> None:
    """Refuse to measure with opencv-python written over the locked headless build (`pip install augraphy` brings
    it): the figures would be another cv2's, not the service's."""
    from importlib import metadata

    try:
        metadata.version("opencv-python")
    except metadata.PackageNotFoundError:
        return
    sys.exit("opencv-python is installed beside opencv-python-headless: uninstall it, reinstall the locked headless "
             "build, and run this bench with `bash scripts/dev.sh bench bench/bench_capture.py`")


def main() -> None:
    _one_opencv()
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=12)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="another set of people, writers and degradation seeds")
    ap.add_argument("--only", default="", help="comma-separated conditions")
    ap.add_argument("--keep", default="", help="a folder to keep the degraded files in, to look at")
    ap.add_argument("--no-roster", action="store_true", help="read as the CLI does, without the roster the forms "
                    "were printed from (the service applies it: names and birth years become known values)")
    args = ap.parse_args()
    keep = Path(args.keep).resolve() if args.keep else None
    threshold = get_settings().review_confidence
    o = args.seed
    hand = [handwritten_record(7000 + o + n) for n in range(args.people)]
    typed = [random_record(8000 + o + n) for n in range(args.people)]
    # Every printed copy gets a random key (payload.new_doc_id), printed in both codes and the id line: a damaged
    # copy's fate depends on which pixels they are, so two runs of one seed differed by a sheet or two (harsh). The
    # bench's copies take their keys from the seed instead.
    keys = np.random.default_rng(o + 3)
    render_api.new_doc_id = lambda: keys.bytes(5).hex()
    hand_blank = [rasterise(render_document("cdht-self-assessment", p), DPI) for p, _ in hand]
    hand_pages = [write_by_hand(b, t, seed=o + n, dpi=DPI, style="mnist")
                  for n, (b, (_, t)) in enumerate(zip(hand_blank, hand, strict=True))]
    # The same writers leaving the total blank: no checksum, so no sheet may pass without a person.
    no_total = [dict(t, total_declared=None) for _, t in hand]
    no_total_pages = [write_by_hand(b, t, seed=o + n, dpi=DPI, style="mnist")
                      for n, (b, t) in enumerate(zip(hand_blank, no_total, strict=True))]
    typed_pages = [rasterise(render_document("cdht-self-assessment", t), DPI) for t in typed]
    get_converter().close()
    hand_truth = [t for _, t in hand]
    rng = np.random.default_rng(o)

    conditions: dict[str, tuple[list[dict[str, Any]], Callable[[Path], list[Path]]]] = {}

    def files_of(pages_of: list[list[np.ndarray]], fn: Callable[[int, list[np.ndarray]], list[np.ndarray]],
                 suffix: str = ".tif", bilevel: bool = False) -> Callable[[Path], list[Path]]:
        return lambda work: [_save(fn(n, p), work / f"{n}{suffix}", bilevel) for n, p in enumerate(pages_of)]

    conditions["hw_clean"] = (hand_truth, files_of(hand_pages, lambda n, p: p))
    conditions["hw_clean_no_total"] = (no_total, files_of(no_total_pages, lambda n, p: p))
    conditions["hw_print_scan"] = (hand_truth, files_of(hand_pages, lambda n, p: [print_scan(o + 31 * n + k)(x)
                                                                                   for k, x in enumerate(p)]))
    conditions["hw_harsh"] = (hand_truth, files_of(hand_pages, lambda n, p: [harsh(o + 57 * n + k)(x)
                                                                              for k, x in enumerate(p)]))
    conditions["hw_booklet_photo"] = (hand_truth, files_of(hand_pages, lambda n, p: [booklet(p)], ".jpg"))
    conditions["typed_phone_lowres"] = (typed, files_of(typed_pages, lambda n, p: [phone_photo(x, rng) for x in p]))
    # A sheet laid askew on a flatbed, 2-6 degrees either way: from ~4 degrees the glass cuts the corner markers off.
    skew = np.random.default_rng(o + 2)
    conditions["hw_skewed_scan"] = (hand_truth, files_of(hand_pages, lambda n, p: [
        skewed(x, float(skew.choice([-1, 1]) * skew.uniform(2, 6))) for x in p]))
    # Handwriting as a messaging app forwards a phone photo of it (the commonest capture a unit sends): ~100 dpi.
    hw_rng = np.random.default_rng(o + 1)
    conditions["hw_phone_lowres"] = (hand_truth, files_of(hand_pages, lambda n, p: [phone_photo(x, hw_rng) for x in p]))
    conditions["hw_colour_seals"] = (hand_truth, files_of(hand_pages, lambda n, p: colour_with_seals(p, o + n)))
    # An office copier's "black & white" scan: one threshold, 1 bit a pixel, CCITT G4 (its own generator, so the
    # conditions above keep their pages).
    bw_rng = np.random.default_rng(o + 3)
    conditions["hw_bw_scan"] = (hand_truth, files_of(hand_pages, lambda n, p: [black_and_white_scan(x, bw_rng)
                                                                                for x in p], bilevel=True))
    # A sheet that will not lie flat (one edge lifting, or bowed), photographed from above at the page's resolution
    # and saved as the phone's JPEG: no straight map takes such a page flat.
    curl_rng = np.random.default_rng(o + 4)
    conditions["hw_curled_photo"] = (hand_truth, files_of(hand_pages, lambda n, p: [
        jpeg(curled(x, curl_rng), curl_rng, 80) for x in p]))
    only = [c for c in args.only.split(",") if c]
    results: dict[str, Stats] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # augraphy keeps a cache folder in the working directory
        for name, (truths, make) in conditions.items():
            if only and name not in only:
                continue
            work = Path(tmp) / name
            work.mkdir()
            files = make(work)
            stats = results[name] = Stats()
            stats.pages = 2 * len(truths)
            if keep is not None:
                (keep / name).mkdir(parents=True, exist_ok=True)
                for f in files:
                    (keep / name / f.name).write_bytes(f.read_bytes())
            started = time.perf_counter()
            result, read = read_as_service(files, args.jobs, None if args.no_roster else truths)
            stats.seconds = time.perf_counter() - started
            own = [d for d in result.documents if "doc" in d.extra]
            listed = {code: sum(len(r.message.split("/")[0].split(",")) for d in own
                                for r in (d.result.reasons if d.result else []) if r.code == code)
                      for code in ("pages_missing", "pages_placed")}
            stats.pages_identified = sum(int(d.extra.get("pages", 0)) for d in own) - listed["pages_missing"]
            stats.pages_placed = listed["pages_placed"]
            stats.notes += [f"{e.code}: {e.message}" for e in result.errors]
            score(stats, truths, result.documents, threshold, read)
            # Bare Tesseract on the same pages, one page after the other (the baseline the issue names).
            pngs = []
            for f in files:
                with Image.open(f) as im:
                    for k in range(getattr(im, "n_frames", 1)):
                        im.seek(k)
                        pngs.append(work / f"{f.stem}-{k}.png")
                        im.convert("L").save(pngs[-1])
            started = time.perf_counter()
            for p in pngs:
                subprocess.run(["tesseract", str(p), "-", "-l", "vie"], capture_output=True, check=True)
            stats.bare_seconds = time.perf_counter() - started
    print(f"date: {dt.date.today().isoformat()}  people: {args.people}  jobs: {args.jobs}  seed: {args.seed}  "
          f"review threshold: {threshold}")
    head = (f"{'condition':<20} {'boxes exact':>12} {'accepted':>9} {'pages id.':>10} {'names':>7} {'silent':>6} "
            f"{'pages/min':>9} {'vs bare':>7}")
    print(head)
    for name, s in results.items():
        print(f"{name:<20} {s.boxes_ok / s.boxes:>12.1%} {s.accepted:>4}/{s.records:<4} "
              f"{s.pages_identified:>5}/{s.pages:<4} {s.names_ok / s.names:>7.0%} {s.silent:>6} "
              f"{s.pages / s.seconds * 60:>9.0f} {s.seconds / s.bare_seconds:>7.2f}")
    for name, s in results.items():
        if s.pages_placed:
            print(f"  {name}: {s.pages_placed} of the pages identified were placed by the pages around them "
                  "(codes and id line unreadable; every value on them for a person)")
    for name, s in results.items():
        for note in s.notes[:12]:
            print(f"  {name}: {note}")


if __name__ == "__main__":
    main()
