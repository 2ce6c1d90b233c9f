"""A page whose corner markers do not lie on one plane (folded near an edge, the strip past the fold bent away) is
read for a person: every box on it is flagged and the record says why, because the page's matrix follows some of
the markers and a box may then be read from the wrong row (a held-out print-and-scan page read 4,5 as 10 and 10 as
7,5, both at 1.0, a row off)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fixtures.captures import blot
from fixtures.scans import handwritten_record, rasterise, save_scan, write_by_hand
from formsvc import layout
from formsvc.criteria import default_registry
from formsvc.extract.align import OUTLYING_MM, page_matrix
from formsvc.extract.parse import UNCHECKED, PageFields, build_record
from formsvc.extract.pipeline import extract_files
from formsvc.extract.read import FieldRead
from formsvc.payload import PagePayload
from formsvc.render import render_document
from formsvc.settings import get_settings

DPI = 200
P1 = PagePayload("cdht-self-assessment", 1, "cdht-324-pl4", "nv-001", 2024, 1, 2, "90913a2cc9")


def _hand(name: str, value: float) -> FieldRead:
    return FieldRead(name, "score", f"{value:g}".replace(".", ","), False, 0.99, (0, 0, 1, 1), "handwriting",
                     ((value, 0.99),))


def test_nothing_a_bent_page_holds_or_confirms_is_trusted() -> None:
    """Ten boxes read surely that add up: one bent page puts every box and its own fields before a person."""
    threshold = get_settings().review_confidence
    first = [*(_hand(f"scores.ct{i}", 7.0) for i in range(1, 9)),
             FieldRead("subject.full_name", "text", "Ngô Đức Hạnh", False, 0.95, (0, 0, 1, 1), "ocr")]
    second = [_hand("scores.ct9", 7.5), _hand("scores.ct10", 7.5), _hand("total_declared", 71.0)]
    for bent_page in (None, 1, 2):
        pages = [PageFields(P1, first, bent=bent_page == 1), PageFields(replace(P1, page=2), second,
                                                                       bent=bent_page == 2)]
        record, reasons = build_record(pages, missing_pages=[], registry=default_registry())
        conf = {f.name: f.confidence for f in record.fields}
        if bent_page is None:
            assert reasons == [] and min(conf.values()) >= threshold, conf
            continue
        assert record.scores["ct1"] == 7.0 and record.total_declared == 71.0  # as read, for a person to confirm
        assert all(c <= UNCHECKED for name, c in conf.items() if name.startswith("scores.")), conf
        assert (conf["subject.full_name"] <= UNCHECKED) == (bent_page == 1)
        [reason] = reasons
        assert reason.code == "page_bent" and reason.severity == "review" and f"Trang {bent_page} / 2" in reason.message


@pytest.fixture(scope="module")
def written(_converter: None) -> tuple[dict[str, Any], list[np.ndarray]]:
    printed, truth = handwritten_record(311)
    return truth, write_by_hand(rasterise(render_document("cdht-self-assessment", printed), DPI), truth, 5)


def _bent_strip(img: np.ndarray, fold_mm: float = 190.0, slope: float = 0.4) -> np.ndarray:
    """The strip right of a fold at `fold_mm` bent away from the glass: it slides down the further from the fold."""
    h, w = img.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dy = np.clip(xs - layout.mm_to_px(fold_mm, DPI), 0, None) * slope
    return cv2.remap(img, xs, ys - dy, cv2.INTER_LINEAR, borderValue=255)


def _read(pages: list[np.ndarray], path: Path) -> tuple[dict[str, tuple[Any, float]], list[str]]:
    result = extract_files([save_scan(pages, path)])
    assert not result.errors and len(result.documents) == 1, result.errors
    record = result.documents[0]
    return {f.name: (f.value, f.confidence) for f in record.fields}, [r.code for r in result.findings[0]]


@pytest.mark.slow  # a form rendered, written in and read back
def test_a_page_whose_markers_lie_on_two_planes_is_read_for_a_person(
        written: tuple[dict[str, Any], list[np.ndarray]], tmp_path: Path) -> None:
    truth, pages = written
    threshold = get_settings().review_confidence
    stained = blot(pages[0], layout.marker_boxes()[0], shade=0)  # the page rests on three markers

    # Three markers on one plane: a page like any other.
    flat = page_matrix(stained, DPI)
    assert flat is not None and flat.markers == 3 and not flat.bent
    fields, reasons = _read([stained, pages[1]], tmp_path / "flat.tif")
    assert "page_bent" not in reasons
    sure = [k for k in truth["scores"] if fields[f"scores.{k}"][1] >= threshold]
    assert len(sure) >= 6, fields  # the recogniser is sure of most boxes of a flat page
    assert all(fields[f"scores.{k}"][0] == truth["scores"][k] for k in sure)

    # The strip with the right-hand markers bent away: the matrix cannot follow both planes.
    bent = _bent_strip(stained)
    pm = page_matrix(bent, DPI)
    assert pm is not None and pm.markers == 3 and pm.bent
    assert 0 < pm.outlying < pm.markers, f"{pm.outlying} markers more than {OUTLYING_MM} mm off"
    fields, reasons = _read([bent, pages[1]], tmp_path / "bent.tif")
    assert "page_bent" in reasons
    # Every field of the bent page, and every box of the sheet: the sum holds boxes that may be a row off, so it
    # confirms none.
    flagged = [name for name in fields if name.startswith(("scores.", "subject."))]
    assert len(flagged) >= 12 and all(fields[name][1] < threshold for name in flagged), fields
    assert fields["total_declared"][0] == truth["total_declared"]  # read on the flat second page
