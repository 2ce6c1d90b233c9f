"""Re-decide kept page reads: a change to how readings become a record measured on real captures in seconds.

Usage:
  bash scripts/dev.sh bench bench/replay_decisions.py keep OUT.pkl [bench_capture arguments]
  .venv/bin/python bench/replay_decisions.py decide OUT.pkl [MORE.pkl ...]

`keep` runs bench_capture as usual and also writes, per condition, every document's page reads (what
parse.build_record is given), the people's truths and the rest of the extraction. `decide` builds every record
again from those reads with the code as it is now, applies the roster and validates as bench_capture does, and
prints per condition the sheets needing no person and the sheets with a silent error (a wrong value on a field not
flagged), with the sheets' ids. Replaying the code that made the reads gives the run's own figures exactly, so two
checkouts compared on one file differ only by their decisions (parse, joint, validation). A change to reading itself
needs a bench run. The files are pickles: replay only files you made.
"""

from __future__ import annotations

import pickle
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench_capture as capture

from formsvc.criteria import default_registry
from formsvc.extract import pipeline
from formsvc.extract.parse import build_record
from formsvc.extract.pipeline import ExtractionResult


def keep(out: Path, args: list[str]) -> None:
    kept: list[dict[str, Any]] = []
    built: list[tuple[Any, list[int]]] = []
    real_build, real_read, real_service, real_score = (pipeline.build_record, capture.read_files,
                                                       capture.as_service, capture.score)

    def build(pages: Any, *, missing_pages: list[int], registry: Any = None) -> Any:
        built.append((pages, missing_pages))
        return real_build(pages, missing_pages=missing_pages, registry=registry)

    def read(files: list[Path], jobs: int) -> ExtractionResult:
        built.clear()
        result = real_read(files, jobs=jobs)
        # As read: as_service replaces the documents with the roster's known values applied and validated.
        kept.append({"condition": files[0].parent.name if files else "", "built": list(built),
                     "out": replace(result, documents=list(result.documents), findings=list(result.findings))})
        return result

    def service(result: ExtractionResult, roster: list[dict[str, Any]] | None) -> Any:
        kept[-1]["roster"] = roster is not None
        return real_service(result, roster)

    def score(stats: Any, truths: list[dict[str, Any]], docs: list[Any], threshold: float, read_docs: Any) -> None:
        kept[-1].update(truths=truths, threshold=threshold)
        real_score(stats, truths, docs, threshold, read_docs)

    pipeline.build_record = build
    capture.read_files, capture.as_service, capture.score = read, service, score  # type: ignore[assignment]
    sys.argv = ["bench_capture.py", *args]
    try:
        capture.main()
    finally:
        out.write_bytes(pickle.dumps(kept))


def decide(paths: list[Path]) -> None:
    registry = default_registry()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for path in paths:
        for entry in pickle.loads(path.read_bytes()):  # the caller's own file (see the usage)
            result, built = entry["out"], entry["built"]
            made = [build_record(pages, missing_pages=missing, registry=registry) for pages, missing in built]
            result.documents = [r for r, _ in made] + result.documents[len(built):]
            result.findings = [f for _, f in made] + result.findings[len(built):]
            stored, read = capture.as_service(result, entry["truths"] if entry["roster"] else None)
            for truth in entry["truths"]:
                stats = capture.Stats()
                capture.score(stats, [truth], stored.documents, entry["threshold"], read)
                row = totals[entry["condition"]]
                row[0] += 1
                row[1] += stats.accepted
                row[2] += stats.silent > 0
                if stats.silent:
                    print(f"silent: {path.name} {entry['condition']} {truth['subject']['id']}: "
                          + "; ".join(n for n in stats.notes if n.startswith("silent")))
    print(f"{'condition':<20} {'no person':>10} {'silent sheets':>14}")
    for name, (sheets, accepted, silent) in totals.items():
        print(f"{name:<20} {accepted:>4}/{sheets:<5} {silent:>14}")


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "keep":
        keep(Path(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "decide":
        decide([Path(p) for p in sys.argv[2:]])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
