"""A page whose corner markers do not lie on one plane (folded near an edge, the strip past the fold bent away; a
sheet curled) is read for a person, but for the boxes found in their own ruled cells where the table's lines put
them: the page's matrix follows some of the markers, and a box may then be read from the wrong row (a held-out
print-and-scan page read 4,5 as 10 and 10 as 7,5, both at 1.0, a row off)."""

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
from formsvc.payload import PagePayload, name_check
from formsvc.render import get_form, render_document
from formsvc.roster import Person
from formsvc.service.known_values import apply_roster
from formsvc.settings import get_settings
from formsvc.zonedata import load_zones
from formsvc.zones import Zone

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


def test_boxes_a_bent_page_holds_in_their_own_cells_are_trusted() -> None:
    """The boxes placed by the table's lines (snap.framed) are read as on a flat page; what else the page holds is
    not, and the record says so only while something is held."""
    threshold = get_settings().review_confidence
    first = [*(_hand(f"scores.ct{i}", 7.0) for i in range(1, 9)),
             FieldRead("subject.full_name", "text", "Ngô Đức Hạnh", False, 0.95, (0, 0, 1, 1), "ocr")]
    second = [_hand("scores.ct9", 7.5), _hand("scores.ct10", 7.5), _hand("total_declared", 71.0)]
    all_first = frozenset(f"scores.ct{i}" for i in range(1, 9))
    pages = [PageFields(P1, first, bent=True, framed=all_first - {"scores.ct8"}),  # ct8's cell not found
             PageFields(replace(P1, page=2), second)]
    record, reasons = build_record(pages, missing_pages=[], registry=default_registry())
    conf = {f.name: f.confidence for f in record.fields}
    # ct8 is held, so the sum confirms no box: every handwritten box goes to a person, and so does the name.
    assert all(c <= UNCHECKED for name, c in conf.items() if name.startswith("scores.")), conf
    assert conf["subject.full_name"] <= UNCHECKED
    assert [r.code for r in reasons] == ["page_bent"]

    # Page 2 bent, all its boxes found in their cells: nothing on it is held.
    pages = [PageFields(P1, first), PageFields(replace(P1, page=2), second, bent=True,
                                               framed=frozenset({"scores.ct9", "scores.ct10", "total_declared"}))]
    record, reasons = build_record(pages, missing_pages=[], registry=default_registry())
    assert reasons == [] and min(f.confidence for f in record.fields) >= threshold
    # A name on a bent page is the printed one only if its check in the code says so.
    checked = replace(P1, name_check=name_check("Ngô Đức Hạnh"))
    for payload, held in ((checked, False), (P1, True)):
        pages = [PageFields(payload, first, bent=True, framed=all_first), PageFields(replace(payload, page=2), second)]
        record, reasons = build_record(pages, missing_pages=[], registry=default_registry())
        conf = {f.name: f.confidence for f in record.fields}
        assert (conf["subject.full_name"] < threshold) == held, conf
        assert ([r.code for r in reasons] == ["page_bent"]) == held
        assert min(c for name, c in conf.items() if name.startswith("scores.")) >= threshold


def test_a_bent_page_holds_nothing_more_once_the_roster_gave_what_it_held() -> None:
    """A curled photo: every box found in its cell, the name confirmed by its check, the birth year's line not read
    (and the year unchecked): the year alone held the page. The roster the form was printed from gives the year, and
    then nothing is held; a roster without the year leaves it, and the page's finding, for a person."""
    first = [*(_hand(f"scores.ct{i}", 7.0) for i in range(1, 9)),
             FieldRead("subject.full_name", "text", "Ngô Đức Hạnh", False, 0.95, (0, 0, 1, 1), "ocr"),
             FieldRead("subject.birth_year", "text", "", False, 0.0, (0, 0, 1, 1), "ocr")]
    second = [_hand("scores.ct9", 7.5), _hand("scores.ct10", 7.5), _hand("total_declared", 71.0)]
    payload = replace(P1, name_check=name_check("Ngô Đức Hạnh"))
    pages = [PageFields(payload, first, bent=True, framed=frozenset(f"scores.ct{i}" for i in range(1, 9))),
             PageFields(replace(payload, page=2), second)]
    record, reasons = build_record(pages, missing_pages=[], registry=default_registry())
    assert [r.code for r in reasons] == ["page_bent"]
    person = Person(row=2, full_name="Ngô Đức Hạnh", birth_year=1990, unit=None, group=None, id="nv-001",
                    criteria_set=None)
    known, found = apply_roster(record, reasons, {"nv-001": person})
    assert found == [] and known.subject.birth_year == 1990
    assert min(f.confidence for f in known.fields) >= get_settings().review_confidence
    known, found = apply_roster(record, reasons, {"nv-001": replace(person, birth_year=None)})
    assert [r.code for r in found] == ["page_bent"]
    # A name the roster does not hold as read: nothing of the roster's is taken, the finding stays.
    known, found = apply_roster(record, reasons, {"nv-001": replace(person, full_name="Trần Văn Bình")})
    assert "page_bent" in [r.code for r in found]


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


def zones_of(page: int) -> list[Zone]:
    form = get_form("cdht-self-assessment")
    return load_zones(form, max(form.released_versions()), "cdht-324-pl4").on_page(page)


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

    # The strip right of the score column bent away: the matrix cannot follow both planes, and puts the boxes 2-5 mm
    # off their cells. The column's row lines and each row's column lines put them back: read as on a flat page.
    bent = _bent_strip(stained)
    pm = page_matrix(bent, DPI)
    assert pm is not None and pm.markers == 3 and pm.bent
    assert 0 < pm.outlying < pm.markers, f"{pm.outlying} markers more than {OUTLYING_MM} mm off"
    fields, reasons = _read([bent, pages[1]], tmp_path / "bent.tif")
    assert "page_bent" not in reasons
    assert all(fields[f"scores.{k}"][0] == v for k, v in truth["scores"].items()), fields
    assert sum(fields[f"scores.{k}"][1] >= threshold for k in truth["scores"]) >= 6, fields

    # Glare across the score column where a row line is: the column's lines are not found whole, so its boxes are
    # placed by nothing.
    line = next(z.box.top for z in zones_of(1) if z.name == "scores.ct6") - 0.8
    glared = _bent_strip(blot(stained, layout.Box(120.0, line - 1.2, 80.0, 2.4), shade=255))
    fields, reasons = _read([glared, pages[1]], tmp_path / "glared.tif")
    assert "page_bent" in reasons
    # Every box of the sheet: the sum holds boxes that may be a row off, so it confirms none. The name and birth year
    # are trusted only as their checks in the code confirm them: the ones printed.
    flagged = [name for name in fields if name.startswith("scores.")]
    assert len(flagged) == 10 and all(fields[name][1] < threshold for name in flagged), fields
    for name in ("full_name", "birth_year"):
        value, confidence = fields[f"subject.{name}"]
        assert confidence < threshold or value == truth["subject"][name], fields
    assert fields["total_declared"][0] == truth["total_declared"]  # read on the flat second page
