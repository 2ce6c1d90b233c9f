"""A name the form's code says was printed, looked for on its line when OCR could not read it.

A form printed from a roster carries the person's roster id and the printed name's check (payload.name_check) in its
code, so what was printed is known once the roster is. OCR loses such a line on a harsh capture (a dithering scanner's
moiré running into the name, a bad photocopy's grain: Tesseract reads it as nothing or as a line of marks) where the
letters are still plain to see. The name is then drawn in the print font and matched against its line, and taken as
read only when it matches well and clearly better than any other name of the roster drawn the same way: the same
rule as a name read by OCR and held against the roster (service.known_values.read_as), with shapes for letters.

A drawing cannot tell tone marks apart ("Hương" and "Hường" match a line alike) nor a name from its first words; it
need not: the code's check says which name was printed, the match that it is there, and the margin that the line is
not rather another person's of the roster (a roster holding a look-alike confirms nothing this way). A page placed by
its neighbours is not looked at: its identity is their guess (pipeline._placed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from rapidfuzz import fuzz, process

from formsvc.extract.name_check import check_name
from formsvc.extract.parse import clean
from formsvc.extract.read import FONTS, FieldRead, drawn_text
from formsvc.extract.text_line import evened
from formsvc.payload import PagePayload, name_check
from formsvc.text import fold, name_letters, nfc

NAME_FIELD = "subject.full_name"
# The renderer's line box is 4/3 of its font's em (13 pt names in 6 mm zones). A curled page photographed shows a
# line up to a tenth larger or smaller (held-out curled photos: 34-39 px for 36): the name is drawn at each em in
# EM_RANGE of that, the roster's other names at the name's best em and a pixel either side.
EM_OF_LINE = 0.75
EM_RANGE = (0.92, 1.1)
# Normalised correlation of the drawn name with its line (both softened alike). Tuning pages of the capture bench
# (harsh 1000, 3000, 6000; clean 3000): names on their own line 0.39-0.97 (0.83 at least on clean pages); the name on
# the lines of the year, unit and group, text but not it, 0.62 at most; another name of the roster on a person's
# line 0.86 at most (one word apart: "Vũ Đức Ngọc", "Võ Đức Nghĩa").
MATCH_FLOOR = 0.65
MATCH_MARGIN = 0.1  # above every other roster name drawn on the same line
# Others drawn: the roster's names most like this one (the likeliest to match its line as well); fewer than
# MIN_OTHERS and no margin can be judged, so nothing is taken from the print.
MAX_OTHERS = 24
MIN_OTHERS = 4
# A name of fewer letters has too little shape to tell: a glyph or two drawn match some place on any line.
MIN_LETTERS = 4
SOFTEN = 1.0  # px: a scan's edges and the drawing's differ by a pixel here and there, the shapes do not
# No character of a name is narrower than this share of the print font's em (the apostrophe of "Ksor H'Hen"; a
# space, i, l 0.25-0.28): a text wider than its line even so cannot be on it and is not drawn (a roster's names are
# not bounded in length).
NARROWEST = 0.18


@lru_cache(maxsize=1)
def _font_path() -> str | None:
    return next((p for p in FONTS if "Regular" in p and Path(p).exists()), None)


@lru_cache(maxsize=512)
def _drawn(text: str, em: int) -> np.ndarray | None:
    """`text` in the print font at `em` pixels, cut to its ink and softened; None without the font."""
    path = _font_path()
    drawn = drawn_text(text, path, em) if path is not None and em > 0 else None
    return None if drawn is None else cv2.GaussianBlur(drawn, (0, 0), SOFTEN)


@dataclass(frozen=True)
class _Line:
    region: np.ndarray  # the line's box and half a line above and below, evened and softened
    height: int  # the box's, px


def _line(image: np.ndarray, box: tuple[float, float, float, float]) -> _Line | None:
    """The line at `box` (x0, y0, x1, y1 in `image`'s pixels) as every drawing is matched against it, searched half a
    line above and below (a curled page lifts a line off its place); None for an empty box."""
    x0, y0, x1, y1 = (round(v) for v in box)
    h = y1 - y0
    if h <= 0 or x1 <= x0:
        return None
    region = image[max(0, y0 - h // 2): y1 + h // 2, max(0, x0): x1]
    if region.size == 0:
        return None
    return _Line(cv2.GaussianBlur(evened(region), (0, 0), SOFTEN), h)


def match(image: np.ndarray, box: tuple[float, float, float, float], text: str,
          ems: Iterable[int] | None = None) -> tuple[float, int]:
    """How well `text` drawn in the print font matches the line at `box` (_line): the best normalised correlation
    and the em it was found at; (-1, 0) when it cannot be drawn or does not fit. `ems`: the sizes tried (by default,
    every one in EM_RANGE of the line's)."""
    line = _line(image, box)
    return (-1.0, 0) if line is None else _matched(line, text, ems)


def _matched(line: _Line, text: str, ems: Iterable[int] | None = None) -> tuple[float, int]:
    region, h = line.region, line.height
    if ems is None:
        ems = range(math.floor(EM_RANGE[0] * EM_OF_LINE * h), math.ceil(EM_RANGE[1] * EM_OF_LINE * h) + 1)
    best = (-1.0, 0)
    for em in ems:
        if len(text) * NARROWEST * em > region.shape[1]:
            continue
        drawn = _drawn(text, em)
        if drawn is None or drawn.shape[0] > region.shape[0] or drawn.shape[1] > region.shape[1]:
            continue
        best = max(best, (float(cv2.matchTemplate(region, drawn, cv2.TM_CCOEFF_NORMED).max()), em))
    return best


def shown(image: np.ndarray, box: tuple[float, float, float, float], name: str, others: Iterable[str]) -> bool:
    """Whether the line at `box` shows `name` printed: MATCH_FLOOR at least and MATCH_MARGIN above each of `others`
    (the roster's other names), with at least MIN_OTHERS of them to be measured against."""
    if sum(c.isalpha() for c in name) < MIN_LETTERS:
        return False
    # The same name printed for two people is no rival; one a tone mark away is (drawn, the two match alike).
    names = sorted({nfc(o) for o in others} - {nfc(name)})
    found = process.extract(name, names, scorer=fuzz.ratio, processor=fold, limit=MAX_OTHERS)
    rivals = [names[i] for _, _, i in found]
    if len(rivals) < MIN_OTHERS:
        return False
    line = _line(image, box)
    if line is None:
        return False
    own, em = _matched(line, name)
    if own < MATCH_FLOOR:
        return False
    return all(own - _matched(line, other, (em - 1, em, em + 1))[0] >= MATCH_MARGIN for other in rivals)


def with_printed_name(reads: list[FieldRead], image: np.ndarray, payload: PagePayload,
                      names: Mapping[str, str]) -> list[FieldRead]:
    """`reads` with the name line taken as the roster's name when OCR did not read it as printed and the line shows
    it (`shown`). Only a page whose code names a person of `names` (roster id -> name) and carries the check of that
    very name: the roster may have changed since the copy was printed, and then what was printed is not known."""
    check = payload.name_check
    name = names.get(payload.subject_id) if payload.subject_id else None
    at = next((i for i, r in enumerate(reads) if r.name == NAME_FIELD), None)
    if check is None or name is None or at is None or name_check(name) != check:
        return reads
    read = reads[at]
    letters, _ = name_letters(clean(read.text))
    if letters and check_name(clean(read.text), check, letters).verdict != "differs":
        return reads  # OCR read it as printed: parse confirms it with the check
    if not shown(image, read.bbox, name, [n for pid, n in names.items() if pid != payload.subject_id]):
        return reads
    out = list(reads)
    # As sure as OCR was of the line: parse confirms the name with the check, as it would OCR's reading of it.
    out[at] = replace(read, text=name, blank=False, words=())
    return out
