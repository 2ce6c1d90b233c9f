"""Year-end dossier of one unit of N people from stored records: time and peak memory.

Usage: .venv/bin/python bench/bench_dossier.py [--people 1000]
Stores N self-assessments (≈65 % approved and recognised, ≈15 % approved and not, ≈15 % not approved, one person
twice: the extra record is excluded, as a clerk would) in a throwaway SQLite store, then runs what
`formsvc dossier` runs: read and plan from the store, render every document as DOCX and PDF, ZIP them.
Memory: peak RSS of this process (Python, docxtpl, pypdf) and, separately, of LibreOffice (the converter's
child processes, measured after they exit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FORMSVC_DATA_DIR"] = tmp
        os.environ.pop("FORMSVC_DATABASE_URL", None)
        from fixtures.dossier_unit import store_unit_year, unit_year
        from formsvc.db import session_scope, upgrade
        from formsvc.render.api import render_document
        from formsvc.render.converter import get_converter
        from formsvc.render.dossier import render_dossier
        from formsvc.service.dossier import SYSTEM, plan_from_store

        upgrade()
        data = unit_year("Trường THCS Hòa Bình", 2024, n=args.people, seed=1000)
        started = time.perf_counter()
        ids = store_unit_year(data)
        store_s = time.perf_counter() - started
        # Warm-up: the service keeps one LibreOffice per worker; measure steady state, not its start.
        get_converter().docx_to_pdf(render_document("cdht-registration-progress", None, "docx"))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with session_scope() as s:
            plan = plan_from_store(s, SYSTEM, unit=data.unit, year=data.year, exclude=[ids[data.duplicate_id][1]])
        plan_s = time.perf_counter() - started
        marks: list[float] = []
        files = render_dossier(plan, {"staff": args.people + 20}, progress=lambda d, t: marks.append(
            time.perf_counter()))
        zipped = files.zip_bytes()
        total_s = time.perf_counter() - started
        get_converter().close()
        rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_lo = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    steps = ["cover", "minutes", "decision", "unit report", "progress report", "dvht self-assessment"]
    prev = started + plan_s
    per_doc = []
    for name, mark in zip(steps, marks, strict=False):
        per_doc.append(f"{name} {mark - prev:.2f} s")
        prev = mark
    pdf_pages = {}
    for name in ("01-bien-ban-hop-xet.pdf", "02-quyet-dinh-cong-nhan.pdf"):
        pdf_pages[name] = len(PdfReader(io.BytesIO(files.files[name])).pages)
    print(f"date: {dt.date.today().isoformat()}")
    print(f"people: {args.people} records stored in {store_s:.1f} s; reviewed {len(plan.reviewed)}, recognised "
          f"{len(plan.recognised)}, not approved {len(plan.pending)}, excluded {len(plan.excluded)}")
    print(f"dossier: {total_s:.2f} s in all (read + plan {plan_s:.2f} s; {'; '.join(per_doc)}); "
          f"ZIP {len(zipped) / 1e6:.1f} MB, {len(files.files)} files; pages {pdf_pages}")
    print(f"peak RSS: this process {rss_self / 1024:.0f} MiB (before the dossier {rss_before / 1024:.0f} MiB); "
          f"LibreOffice {rss_lo / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
