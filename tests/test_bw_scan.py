"""An office copier's "black & white" scan (one threshold, 1 bit a pixel, CCITT G4 in a TIFF or a PDF), the default
of many copiers and the smallest file a unit can send: its pages are identified and its handwritten boxes read, and
whatever may be wrong is flagged on its own field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from fixtures.captures import black_and_white_scan
from fixtures.scans import handwritten_record, rasterise, save_scan, write_by_hand
from formsvc.criteria import default_registry
from formsvc.extract.pages import Page, iter_pages
from formsvc.extract.parse import NAME_SURE, UNCHECKED, PageFields, build_record
from formsvc.extract.pipeline import extract_files
from formsvc.extract.read import FieldRead
from formsvc.payload import PagePayload
from formsvc.render import render_document
from formsvc.roster import Person
from formsvc.service.known_values import apply_roster
from formsvc.settings import get_settings

DPI = 200
P1 = PagePayload("cdht-self-assessment", 1, "cdht-324-pl4", "nv-001", 2024, 1, 2, "90913a2cc9")


def _page(path: Path) -> Page:
    [page] = [p for p in iter_pages(path, dpi=DPI, max_pages=5, max_pixels=10**8) if isinstance(p, Page)]
    return page


def test_a_page_scanned_in_black_and_white_is_known_as_such(tmp_path: Path) -> None:
    """1-bit TIFF (G4) and PDF (CCITT), 8-bit PNG of only black and white: bilevel. Grey and colour scans, and a
    bilevel scan saved as JPEG (its grey artefacts are grey levels Tesseract reads as such): not."""
    rng = np.random.default_rng(3)
    grey = np.clip(rng.normal(235, 12, (1169, 827)), 0, 255).astype(np.uint8)
    grey[300:340, 100:700] = 30
    bw = np.where(grey > 128, 255, 0).astype(np.uint8)
    one = Image.fromarray(bw).convert("1")
    one.save(tmp_path / "g4.tif", compression="group4", dpi=(100, 100))
    one.save(tmp_path / "ccitt.pdf", resolution=100)
    Image.fromarray(bw).save(tmp_path / "bw.png", dpi=(100, 100))
    Image.fromarray(grey).save(tmp_path / "grey.tif", dpi=(100, 100))
    Image.fromarray(grey).save(tmp_path / "grey.pdf", resolution=100)
    Image.fromarray(grey).convert("RGB").save(tmp_path / "colour.png", dpi=(100, 100))
    Image.fromarray(bw).save(tmp_path / "bw.jpg", quality=80, dpi=(100, 100))
    assert b"CCITTFaxDecode" in (tmp_path / "ccitt.pdf").read_bytes()
    for name in ("g4.tif", "ccitt.pdf", "bw.png"):
        assert _page(tmp_path / name).bilevel, name
    for name in ("grey.tif", "grey.pdf", "colour.png", "bw.jpg"):
        assert not _page(tmp_path / name).bilevel, name


def _reads(name: str, conf: float) -> list[FieldRead]:
    hand = [FieldRead(f"scores.ct{i}", "score", "7", False, 0.99, (0, 0, 1, 1), "handwriting", ((7.0, 0.99),))
            for i in range(1, 11)]
    return [FieldRead("subject.full_name", "text", name, False, conf, (0, 0, 1, 1), "ocr"), *hand,
            FieldRead("total_declared", "score", "70", False, 0.99, (0, 0, 1, 1), "handwriting", ((70.0, 0.99),))]


def test_a_name_read_from_a_black_and_white_page_goes_to_a_person_unless_the_roster_knows_it() -> None:
    threshold = get_settings().review_confidence
    reads = _reads("Trần Quốc Dùng", 0.95)
    for bilevel_page in (None, 1, 2):
        pages = [PageFields(P1, reads[:6], bilevel=bilevel_page == 1),
                 PageFields(replace(P1, page=2), reads[6:], bilevel=bilevel_page == 2)]
        record, reasons = build_record(pages, missing_pages=[], registry=default_registry())
        conf = {f.name: f.confidence for f in record.fields}
        assert min(c for n, c in conf.items() if n.startswith("scores.")) >= threshold  # the sum still confirms
        if bilevel_page != 1:  # the name is on page 1: a black-and-white page 2 takes nothing from it
            assert conf["subject.full_name"] >= threshold and not reasons, reasons
            continue
        assert record.subject.full_name == "Trần Quốc Dùng" and conf["subject.full_name"] <= UNCHECKED
        [reason] = reasons
        assert reason.code == "name_bilevel" and reason.field == "subject.full_name" and "đen trắng" in reason.message
        # Printed from a roster: the name is the roster's, and the doubt about reading it goes with it.
        person = Person(row=2, full_name="Trần Quốc Dũng", birth_year=None, unit=None, group=None, id="nv-001",
                        criteria_set=None)
        known, found = apply_roster(record.model_copy(update={"subject": record.subject.model_copy(
            update={"id": "nv-001"})}), reasons, {"nv-001": person})
        assert known.subject.full_name == "Trần Quốc Dũng" and found == []


def test_a_name_tesseract_is_only_fairly_sure_of_goes_to_a_person() -> None:
    """On grey pages too: a name read at 0.80-0.90 was often a misread tone mark (tuning seeds: 7 of 16)."""
    threshold = get_settings().review_confidence
    for conf, sure in ((0.85, False), (NAME_SURE - 0.001, False), (NAME_SURE, True), (0.96, True)):
        reads = _reads("Lê Thu Dùng", conf)
        record, reasons = build_record([PageFields(P1, reads[:6]), PageFields(replace(P1, page=2), reads[6:])],
                                       missing_pages=[], registry=default_registry())
        name_conf = next(f.confidence for f in record.fields if f.name == "subject.full_name")
        assert (name_conf >= threshold) == sure and not reasons, (conf, name_conf, reasons)


@pytest.fixture(scope="module")
def scanned(_converter: None) -> tuple[dict[str, Any], list[np.ndarray]]:
    printed, truth = handwritten_record(523)
    pages = write_by_hand(rasterise(render_document("cdht-self-assessment", printed), DPI), truth, 11, style="mnist")
    rng = np.random.default_rng(523)
    return truth, [black_and_white_scan(p, rng) for p in pages]


@pytest.mark.slow  # a form rendered, written in, scanned in black and white and read back, twice
@pytest.mark.parametrize("suffix", [".tif", ".pdf"])
def test_a_black_and_white_scan_is_read_and_nothing_unsure_passes(
        scanned: tuple[dict[str, Any], list[np.ndarray]], suffix: str, tmp_path: Path) -> None:
    truth, pages = scanned
    assert all(set(np.unique(p)) <= {0, 255} for p in pages)
    path = save_scan(pages, tmp_path / f"bw{suffix}", DPI, bilevel=True)
    if suffix == ".tif":
        with Image.open(path) as im:
            assert im.mode == "1" and getattr(im, "n_frames", 1) == 2 and im.info["compression"] == "group4"
    else:
        assert b"CCITTFaxDecode" in path.read_bytes()

    result = extract_files([path])
    assert not result.errors and len(result.documents) == 1, result.errors
    record = result.documents[0]
    threshold = get_settings().review_confidence
    conf = {f.name: f.confidence for f in record.fields}
    # The printed name: Tesseract reads "Dùng" for "Dũng" here (the threshold shaved the tilde) and is sure of it
    # (0.94); the check in the code finds the one reading of its marks that was printed.
    assert record.subject.full_name == truth["subject"]["full_name"] and conf["subject.full_name"] >= threshold, \
        (record.subject.full_name, conf)
    read = {**{f"scores.{k}": v for k, v in record.scores.items()}, "total_declared": record.total_declared}
    want = {**{f"scores.{k}": v for k, v in truth["scores"].items()}, "total_declared": truth["total_declared"]}
    right = [name for name in want if read.get(name) == want[name]]
    assert len(right) >= len(want) - 2, (read, want)
    # Zero silent errors: a box read wrong is never passed as sure.
    assert all(conf[name] < threshold for name in want if read.get(name) != want[name]), (read, want, conf)
    assert sum(conf[name] >= threshold for name in want) >= len(want) // 2, conf
