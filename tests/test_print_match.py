"""A name the form's code says was printed is looked for on its line, as the roster spells it, when OCR cannot read
it; it is taken only when the line shows it clearly better than any other name of the roster."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from fixtures.captures import blot
from fixtures.scans import handwritten_record, rasterise, save_scan, write_by_hand
from formsvc import layout
from formsvc.extract import print_match
from formsvc.extract.name_check import check_name
from formsvc.extract.ocr import read_lines
from formsvc.extract.parse import CHECKED_NAME
from formsvc.extract.pipeline import read_files
from formsvc.extract.print_match import MATCH_FLOOR, MIN_OTHERS, shown, with_printed_name
from formsvc.extract.read import FieldRead, zone_px
from formsvc.extract.text_line import line_crop
from formsvc.payload import PagePayload, name_check
from formsvc.render import render_document
from formsvc.render.zones import form_zones
from formsvc.settings import get_settings

CUT = Path(__file__).resolve().parents[1] / "fixtures" / "cuts" / "harsh_name_lines.png"
# Tuning harsh pages of the capture bench (seed 1000, files 9 and 8: persons 8009 and 8008), the name line of each
# with half a line above and below, from 40 px left of its zone (200 dpi, aligned page); their zones in the cut.
LINES = {8009: 0, 8008: 144}
HEIGHT = 144
BOX = (40, 48, 800, 96)
ROSTER = {handwritten_record(8000 + n)[1]["subject"]["id"]: handwritten_record(8000 + n)[1]["subject"]["full_name"]
          for n in range(24)}  # the people the bench printed those pages for


def _cut() -> np.ndarray:
    image = cv2.imread(str(CUT), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    return image


def _line(person: int) -> np.ndarray:
    top = LINES[person]
    return _cut()[top: top + HEIGHT]


def _person(person: int) -> tuple[str, str]:
    subject = handwritten_record(person)[1]["subject"]
    return subject["id"], subject["full_name"]


def test_a_printed_name_ocr_loses_in_a_harsh_capture_is_found_on_its_line_and_no_other_name_is() -> None:
    """A dithering scanner's moiré runs into the name: Tesseract reads the line as nothing or as a line of marks,
    where "Bùi Xuân Hương" and "Đỗ Minh Hạnh" are plain to see. Drawn in the print font, each is found on its own
    line; no other roster name is, when the name printed is among the rivals it must beat."""
    for person in LINES:
        pid, name = _person(person)
        line = _line(person)
        ocr = read_lines([line_crop(line, BOX, 200)])[0].text
        assert check_name(ocr, name_check(name) or "").verdict == "differs", ocr
        others = [n for i, n in ROSTER.items() if i != pid]
        assert shown(line, BOX, name, others)
        for other in others:
            assert not shown(line, BOX, other, [name, *(n for n in others if n != other)]), other
    # A roster holding a name one tone mark away: drawn, the two match the line alike, so the print tells nothing.
    pid, name = _person(8009)
    assert not shown(_line(8009), BOX, name, ["Bùi Xuân Hường", *(n for i, n in ROSTER.items() if i != pid)])


def test_a_line_that_does_not_show_the_name_or_too_few_rivals_confirm_nothing(monkeypatch: pytest.MonkeyPatch
                                                                               ) -> None:
    (pid, name), (_, neighbour) = _person(8009), _person(8008)
    others = [n for i, n in ROSTER.items() if i != pid]
    assert not shown(_line(8008), BOX, name, others)  # another person's line
    assert not shown(np.full((HEIGHT, 800), 235, np.uint8), BOX, name, others)  # paper: the name stained away
    assert not shown(_line(8009), BOX, name, [neighbour] * 24 + others[:MIN_OTHERS - 2])  # no margin to judge
    # A name of a letter or two matches some place on any line: not looked for.
    assert print_match.match(_line(8009), BOX, "Hà")[0] > MATCH_FLOOR
    assert not shown(_line(8009), BOX, "Hà", others)
    # A roster's name too long to be on the line is never drawn (a hostile roster's 100,000 letters).
    drawn: list[str] = []
    monkeypatch.setattr(print_match, "_drawn", lambda text, em: drawn.append(text))
    assert print_match.match(_line(8009), BOX, "Nguyễn " * 20_000) == (-1.0, 0) and not drawn


def _reads(text: str) -> list[FieldRead]:
    return [FieldRead("subject.full_name", "text", text, not text, 0.0, (40.0, 48.0, 800.0, 96.0), "ocr"),
            FieldRead("subject.birth_year", "text", "1984", False, 0.95, (40.0, 110.0, 800.0, 140.0), "ocr")]


def test_only_a_page_whose_code_checks_the_rosters_name_takes_it_from_the_print(monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    pid, name = _person(8009)
    payload = PagePayload("cdht-self-assessment", 1, "cdht-324-pl4", pid, 2024, 1, 2, "90913a2cc9",
                          name_check=name_check(name))
    line = _line(8009)
    [got, year] = with_printed_name(_reads(""), line, payload, ROSTER)
    assert got.text == name and not got.blank and year == _reads("")[1]
    # The roster renamed the person after the copy was printed: what was printed is not known.
    renamed = {**ROSTER, pid: "Bùi Xuân Hường"}
    assert with_printed_name(_reads(""), line, payload, renamed) == _reads("")
    # No check in the code (a page identified by its id line), or a person the roster does not know.
    assert with_printed_name(_reads(""), line, replace(payload, name_check=None), ROSTER) == _reads("")
    assert with_printed_name(_reads(""), line, replace(payload, subject_id="nv-99999"), ROSTER) == _reads("")
    # OCR read the name as printed (its check agrees): nothing is drawn, parse confirms OCR's reading.
    drawn: list[str] = []
    monkeypatch.setattr(print_match, "_drawn", lambda text, em: drawn.append(text))
    read = _reads(f"{name} 7 //:")
    assert with_printed_name(read, line, payload, ROSTER) == read and not drawn


@pytest.mark.slow  # a form rendered, written in, read three times
def test_the_service_reads_a_name_lost_to_moire_from_the_roster_it_printed_from(_converter: None,
                                                                                 tmp_path: Path) -> None:
    """The person's own form, its name line replaced by the harsh capture's: read with the roster the form was
    printed from (two processes, as the service reads), the name is confirmed; without it, a person looks."""
    printed, truth = handwritten_record(8009)
    pages = write_by_hand(rasterise(render_document("cdht-self-assessment", printed), 200), truth, 5, style="mnist")
    zone = next(z for z in form_zones("cdht-self-assessment", truth["criteria_set"]).zones
                if z.name == "subject.full_name")
    x0, y0, x1, y1 = zone_px(zone, 200)
    assert (x1 - x0, y1 - y0) == (1144, 48)  # the zone the cut was taken from
    pages[0][y0 - 48: y0 - 48 + HEIGHT, x0 - 40: x0 + 760] = _line(8009)
    path = save_scan(pages, tmp_path / "sheet.tif")
    threshold = get_settings().review_confidence
    for names, jobs in ((ROSTER, 2), (ROSTER, 1), (None, 1)):
        [doc] = read_files([path], jobs=jobs, names=names).documents
        got = next(f for f in doc.fields if f.name == "subject.full_name")
        if names is None:
            assert got.confidence < threshold, got
        else:
            assert (doc.subject.full_name, got.confidence) == (truth["subject"]["full_name"], CHECKED_NAME)
    # The command line, given the roster as a unit keeps it: the name comes back from it, as the service gives it.
    roster = tmp_path / "roster.csv"
    roster.write_text("Mã,Họ và tên\n" + "".join(f"{pid},{name}\n" for pid, name in ROSTER.items()) + "nv-x,\n",
                      encoding="utf-8")  # and a row without a name
    exe = Path(sys.executable).with_name("formsvc")
    run = subprocess.run([str(exe), "extract", str(path), "--roster", str(roster)], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    [record] = json.loads(run.stdout)["documents"]
    [field] = [f for f in record["fields"] if f["name"] == "subject.full_name"]
    assert record["subject"]["full_name"] == truth["subject"]["full_name"] and field["source"] == "known_value"
    assert "Dòng 26: thiếu họ và tên" in run.stderr  # the row left out, said so
    (tmp_path / "no_ids.csv").write_text("Họ và tên,Năm sinh\n" + "".join(f"{n},1990\n" for n in ROSTER.values()),
                                         encoding="utf-8")
    run = subprocess.run([str(exe), "extract", str(path), "--roster", str(tmp_path / "no_ids.csv")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0 and "không có cột «Mã»" in run.stderr, run.stderr
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    run = subprocess.run([str(exe), "extract", str(path), "--roster", str(tmp_path / "empty.csv")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode != 0 and "[roster_empty]" in run.stderr and run.stdout == ""
    # Page 1's codes and id line stained away: placed by page 2 after it, its identity is a guess, and a guess does
    # not say what was printed on it.
    lost = pages[0]
    for box in (layout.qr_box(), layout.qr2_box(), layout.id_line_box()):
        lost = blot(lost, box, grow_mm=0.5)
    result = read_files([save_scan([lost, pages[1]], tmp_path / "placed.tif")], names=ROSTER)
    [doc] = result.documents
    got = next(f for f in doc.fields if f.name == "subject.full_name")
    assert result.errors == [] and got.page == 1 and got.confidence < threshold, got
    assert doc.subject.full_name != truth["subject"]["full_name"]  # OCR's reading of the line, not the roster's name
