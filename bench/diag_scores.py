"""Per score box diagnosis of scanned own forms: what each reader saw and what the record ended up with.

Usage: .venv/bin/python bench/diag_scores.py [--people 4] [--kinds clean stamp] [--all]
Same people, seeds and degradations as bench/bench_extract.py. For every score box prints the truth, Tesseract's
two readings, the handwriting recogniser's reading (text, confidence, state), what `combine` made of them and the
record's final value and confidence; by default only boxes whose final value is wrong or flagged. Ends with a
breakdown of the misses by cause. Renders are cached in /tmp so a second run skips LibreOffice.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["OMP_THREAD_LIMIT"] = "1"

import formsvc.extract.read as read_mod
from fixtures.scans import degrade, handwritten_record, random_record, rasterise, save_scan, write_by_hand
from formsvc.extract.digits import ScoreReading
from formsvc.extract.ocr import OcrText
from formsvc.extract.pipeline import extract_files
from formsvc.settings import get_settings

CACHE = Path(tempfile.gettempdir()) / "formsvc-diag-renders.pkl"


@dataclass
class Seen:
    name: str
    a: OcrText
    b: OcrText
    hand: ScoreReading
    combined: read_mod.FieldRead
    typed: bool = False


def renders(people: int) -> tuple[list[dict[str, Any]], list[list[np.ndarray]], list[dict[str, Any]],
                                  list[list[np.ndarray]]]:
    cached: dict[str, Any] = pickle.loads(CACHE.read_bytes()) if CACHE.exists() else {}
    if cached.get("people", 0) < people:
        from formsvc.render import render_document
        from formsvc.render.converter import get_converter

        typed = [random_record(1000 + n) for n in range(people)]
        hand = [handwritten_record(2000 + n) for n in range(people)]
        cached = {
            "people": people, "typed": typed,
            "typed_pages": [rasterise(render_document("cdht-self-assessment", t)) for t in typed],
            "hand": [t for _, t in hand],
            "hand_pages": [write_by_hand(rasterise(render_document("cdht-self-assessment", p)), t, seed=n)
                           for n, (p, t) in enumerate(hand)],
        }
        get_converter().close()
        CACHE.write_bytes(pickle.dumps(cached))
    return (cached["typed"][:people], cached["typed_pages"][:people], cached["hand"][:people],
            cached["hand_pages"][:people])


def cause(truth: float | None, s: Seen, final: object) -> str:
    """A short label for why a box came out wrong (first matching rule)."""
    num = read_mod._num
    ta, tb = num(s.a.text), num(s.b.text)
    if s.hand.state == "crossed":
        return "recogniser: crossed-out (false)"
    if s.hand.state in ("blank", "unreadable") and ta is None:
        return f"recogniser {s.hand.state}, tesseract no number"
    if ta is not None and ta == tb and ta != truth:
        if s.hand.value == truth:
            return "tesseract agrees with itself on a wrong value (recogniser right)"
        return "tesseract agrees with itself on a wrong value (recogniser wrong too)"
    if s.hand.value != truth:
        if ta == truth or tb == truth:
            return "recogniser wrong, one tesseract reading right"
        if truth is not None and not float(truth).is_integer() and s.hand.value is not None \
                and "," not in s.hand.text:
            return "recogniser lost the decimal comma"
        return "recogniser wrong, tesseract no help"
    if final != truth:
        return "readers right, arbitration/parse wrong"
    return "right but flagged"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=4)
    ap.add_argument("--kinds", nargs="+", default=["clean", "stamp"])
    ap.add_argument("--all", action="store_true", help="print every box, not only wrong or flagged ones")
    ap.add_argument("--only", choices=["typed", "hand"], default=None)
    args = ap.parse_args()
    threshold = get_settings().review_confidence
    typed, typed_pages, hand, hand_pages = renders(args.people)
    seen: list[Seen] = []
    original = read_mod.combine

    def spy(z: Any, box: Any, a: OcrText, b: OcrText, h: ScoreReading, *rest: Any) -> read_mod.FieldRead:
        out = original(z, box, a, b, h, *rest)
        seen.append(Seen(z.name, a, b, h, out, bool(rest and rest[0])))
        return out

    read_mod.combine = spy  # type: ignore[assignment]
    causes: Counter[tuple[str, str, str]] = Counter()
    totals: Counter[tuple[str, str]] = Counter()
    groups = [("typed", typed, typed_pages), ("hand", hand, hand_pages)]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for label, truths, pages_list in groups:
                if args.only and label != args.only:
                    continue
                for n, (truth, pages) in enumerate(zip(truths, pages_list, strict=True)):
                    path = save_scan(degrade(pages, kind, seed=n), Path(tmp) / f"{kind}-{label}{n}.tif")
                    seen.clear()
                    [doc] = extract_files([path]).documents
                    by_name = {s.name: s for s in seen}
                    conf = {f.name: f.confidence for f in doc.fields}
                    want = {f"scores.{k}": v for k, v in truth["scores"].items()}
                    want["total_declared"] = truth["total_declared"]
                    for name, value in want.items():
                        final = doc.total_declared if name == "total_declared" else doc.scores.get(name[7:])
                        c = conf.get(name, 1.0)
                        ok = final == value
                        if name != "total_declared":
                            totals[(kind, label)] += 1
                        s = by_name.get(name)
                        if not ok and name != "total_declared":
                            why = cause(value, s, final) if s else "blank by ink ratio"
                            silent = c >= threshold
                            causes[(kind, label, why + (" [SILENT]" if silent else ""))] += 1
                        if args.all or not ok or c < threshold:
                            if s is None:
                                detail = "(no combine: blank by ink ratio)"
                            else:
                                detail = (f"tess {s.a.text!r:>7}/{s.b.text!r:<7} {s.a.confidence:.2f}/"
                                          f"{s.b.confidence:.2f}  hand {s.hand.text!r:>6} {s.hand.confidence:.2f} "
                                          f"{s.hand.state:<10} -> {s.combined.text!r} {s.combined.confidence:.2f} "
                                          f"{s.combined.source} {'typed' if s.typed else 'hand'} "
                                          f"cands {[v for v, _ in s.combined.candidates[:4]]}")
                            mark = "OK " if ok else "BAD"
                            print(f"{kind:<6} {label:<5} p{n} {name:<15} truth {value!s:>5} final {final!s:>5} "
                                  f"{c:.2f} {mark} {detail}")
    print("\nmisses by cause (score boxes only, total_declared excluded):")
    for (kind, label), n in sorted(totals.items()):
        bad = sum(v for (k, lab, _), v in causes.items() if k == kind and lab == label)
        print(f"  {kind} {label}: {n - bad}/{n} right")
        for (k, lab, why), v in causes.most_common():
            if k == kind and lab == label:
                print(f"      {v:>3}  {why}")


if __name__ == "__main__":
    main()
