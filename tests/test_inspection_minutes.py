"""The ĐVHT inspection minutes (Phụ lục 03) come back on paper too: printed with the unit's own scores, the team
writes its scores by hand, and the scan becomes a record whose scores are the team's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures.handwriting import render_handwritten, score_text
from fixtures.scans import degrade, random_record, rasterise, save_scan
from formsvc.extract.pipeline import extract_files
from formsvc.extract.read import zone_px
from formsvc.render import render_document
from formsvc.render.zones import form_zones
from formsvc.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]  # minutes rendered, filled by hand and read back

DPI = 200
FORM = "dvht-inspection-minutes"


def _team_writes(pages: list[np.ndarray], team: dict[str, float], total: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [p.copy() for p in pages]
    values = {f"committee.{k}": v for k, v in team.items()} | {"committee_total": total}
    for z in form_zones(FORM, "dvht-tt22-2020").zones:
        if z.name in values:
            x0, y0, x1, y1 = zone_px(z, DPI)
            ink = render_handwritten(score_text(values[z.name]), (y1 - y0, x1 - x0), rng, "test")
            out[z.page - 1][y0:y1, x0:x1] = np.minimum(out[z.page - 1][y0:y1, x0:x1], ink)
    return out


@pytest.mark.parametrize("kind", ["clean", "rotate"])
def test_inspection_minutes_scan_gives_the_teams_scores(kind: str, tmp_path: Path) -> None:
    unit: dict[str, Any] = random_record(611, "dvht-tt22-2020")
    unit["subject"] = {"id": "dv-611", "full_name": "Trường THCS Hòa Bình"}
    team = {k: max(0.0, v - 1) if v is not None else 0.0 for k, v in unit["scores"].items()}
    total = sum(team.values())
    pages = rasterise(render_document(FORM, unit), DPI)
    written = _team_writes(pages, team, total, seed=3)
    [doc] = extract_files([save_scan(degrade(written, kind, 7), tmp_path / "insp.tif", DPI)]).documents
    assert doc.form == FORM and doc.criteria_set == "dvht-tt22-2020"
    assert doc.subject.id == "dv-611"
    # The unit's printed column is kept aside, read exactly; the team's handwriting is the record's scores.
    assert doc.extra["unit_self_scores"] == unit["scores"]
    threshold = get_settings().review_confidence
    low = {f.name for f in doc.fields if f.confidence < threshold}
    wrong = [k for k, v in team.items() if doc.scores.get(k) != v]
    assert not [k for k in wrong if f"scores.{k}" not in low], "silent misreads"
    assert len(wrong) <= 2
    assert doc.total_declared == total or "total_declared" in low
