"""Print pack of N pre-filled self-assessments vs one LibreOffice invocation per form, in the same run.

Usage: .venv/bin/python bench/bench_print_pack.py [--forms 500] [--baseline-sample 12]
The baseline (docxtpl render + `soffice --headless --convert-to pdf` per form, a fresh process each time)
is timed on a sample of forms and expressed per form; running it 500 times would take ~15 minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures.roster_gen import write_roster
from formsvc.criteria import default_registry
from formsvc.render.context import build_context
from formsvc.render.converter import get_converter
from formsvc.render.docx import render_docx
from formsvc.render.pack import print_pack
from formsvc.render.registry import get_form
from formsvc.render.roster import read_roster


def baseline(roster: Path, sample: int, work: Path) -> float:
    form = get_form("cdht-self-assessment")
    registry = default_registry()
    people = read_roster(roster).people[:sample]
    profile = work / "lo-profile"
    started = time.perf_counter()
    for n, p in enumerate(people):
        data = {"year": 2024, "subject": {"full_name": p.full_name, "birth_year": p.birth_year, "unit": p.unit,
                                          "group": p.group, "id": p.id}}
        src = work / f"f{n}.docx"
        src.write_bytes(render_docx(form, build_context(form, data, registry)))
        subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{profile}", "--convert-to", "pdf",
                        "--outdir", str(work), str(src)], check=True, capture_output=True, timeout=300)
    return (time.perf_counter() - started) / len(people)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forms", type=int, default=500)
    ap.add_argument("--baseline-sample", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        roster = write_roster(work / "roster.csv", args.forms, seed=11)
        # Warm-up: start the long-lived converter so the pack measures steady state, as in the service.
        get_converter().docx_to_pdf(render_docx(get_form("cdht-registration-progress"), build_context(
            get_form("cdht-registration-progress"), None, default_registry())))
        report = print_pack("cdht-self-assessment", roster, work / "pack.pdf", 2024)
        pack_rate = report.forms / report.seconds
        per_form = baseline(roster, args.baseline_sample, work)
        get_converter().close()
    base_rate = 1 / per_form
    print(f"date: {dt.date.today().isoformat()}")
    print(f"print pack: {report.forms} forms, {report.pages} pages in {report.seconds:.2f} s = {pack_rate:.1f} forms/s")
    print(f"baseline (one soffice per form, {args.baseline_sample} sampled): {per_form:.2f} s/form = "
          f"{base_rate:.2f} forms/s")
    print(f"ratio pack/baseline: {pack_rate / base_rate:.1f}x  (targets: >= 25 forms/s, >= 5x)")


if __name__ == "__main__":
    main()
