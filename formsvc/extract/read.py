"""Stage 4, read fields by zone: from the text layer of digital pages, or from the aligned image.

Score boxes are cleaned of stamp arcs, then checked for ink (a blank box is a confident "nothing written"); the
inked ones are read together in one Tesseract call (print) and each by the handwriting recogniser; the box's ink
(the print font's digit height and shape, or not) says whom to believe. Score reads carry their candidate values
so parse can check them against the declared total. Text lines likewise in one call. Every value comes with a
confidence, a page and a box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from formsvc.extract.digits import (
    ScoreReading,
    allowed,
    as_written,
    ink_mask,
    read_ink,
    read_score,
    speck_share,
)
from formsvc.extract.ocr import OcrText, read_lines, read_numbers_twice
from formsvc.extract.text_line import line_crop
from formsvc.extract.types import Word
from formsvc.layout import mm_to_px
from formsvc.settings import get_settings
from formsvc.zones import Zone

INK_RATIO_BLANK = 0.004
EVIDENCE_PRESENT = "(có ghi minh chứng trên phiếu)"
NUMBER = re.compile(r"^\d{1,3}(?:[.,]\d{1,2})?$")
# Pre-filled scores are printed in Liberation Serif at TABLE_PT (templates/build/forms.py); its digits are
# 0.66 em tall. A box whose ink has that height and that font's shape is print, anything else handwriting.
TYPED_PT = 11
DIGIT_EM = 0.66
TYPED_HEIGHT = (0.75, 1.35)  # tolerated share of the expected digit height (scan scale, blur, bold totals)
TYPED_MATCH = 0.5  # normalised cross-correlation with the font's rendering of Tesseract's reading
TYPED_BLUR = 1.0  # px, both sides of the comparison
TYPED_REF_BLURS = (TYPED_BLUR, 2.0)  # px: the reference as soft as a scan, or as a phone photo scaled up
FONTS = ("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
         "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSerif-Bold.ttf")
# A stamp scanned in grey is a band of flat mid-grey ink much lighter than pen or toner.
STAMP_DARK = 120  # darker than this is text or pen ink, never stamp
STAMP_NEAR = 2  # px: lighter ink this close to dark ink is the dark stroke's own anti-aliased edge
STAMP_MIN_DARK = 40  # px of dark ink a box needs before anything lighter in it can be called a stamp
STAMP_FLAT = 20  # grey levels around a component's median that still count as the same ink
# Where a stamp was painted over, whatever it hid went with it (a grey arc over the top of a 9 leaves a 0), and
# where a signature runs through a box its strokes join the digits': nothing read from a box something crossed
# is trusted on its own; the declared total may still confirm it (parse).
STAMPED = 0.7
EDGE_PX = 2  # ink this close to the box's edge came from outside it
EDGE_MIN_INK = 3  # px: less ink than this at the edge is a speck
EDGE_BAND = 0.12  # of the box's smaller side: ink wholly this close to an edge is the frame's, not a stroke coming in
# A line across a box (this share of its width at least) above or below its number, this share of the box's height
# clear of the glyphs read, hid nothing of them: a fold's crease, a ruling line (clear_of_number).
CROSSING_WIDE = 0.5
CROSSING_CLEAR = 0.05
COLOURED_INK = 0.01  # share of a box's pixels: this much more ink in grey levels than after dropout is a seal
ONLY_COLOURED = 0.5  # a box read from coloured ink alone: for a person, whatever the readers say
# A seal's red ink taken off a box by colour leaves the pen's strokes whole (not painted over as a grey stamp is):
# its reading is as sure as the recogniser says, but no surer than just below the review threshold (SEAL_DROPPED
# = threshold - this), so it is never trusted on its own and the declared total may confirm it like any unsure
# box. Tuning seal pages (seeds 23000-27000): 138 seal-crossed boxes read at 0.8 or more, none wrong.
SEAL_BELOW_REVIEW = 0.01
# Boxes are read with generous bounds (any number up to 1000 with at most two decimals): the criteria's own
# limits and steps are applied in parse, which knows the criteria set, to every candidate.
# Share of specks (digits.speck_share) in a page: a bad photocopy or a dithering scanner's worst (clean pages ~0,
# print-and-scan and dithered pages 0.007-0.075 on the bench, the three worst photocopies 0.14-0.19).
SPECKLED = 0.1
# A printed line (name, birth year, unit) read less surely than this is read again from taller crops.
LINE_RETRY_BELOW = 0.6
# ... unless its crop is more than this share specks (speck_share): then it is unsure for its specks, not because a
# fold moved it, and a taller crop only holds more of them. Tuning seed 3000, eleven kinds of capture: only a
# dithering scanner's lines pass it (4 of 107 re-read, none read better taller; on its harsh, print-and-scan and
# curled pages lines whose taller reading was taken had 0.002-0.025); 0.3-0.5 s of Tesseract each.
LINE_RETRY_SPECKS = 0.05
LINE_GROWTH = (0.25, 0.4)  # of the line's height, added above and below
READ_MAX = 1000.0
READ_STEP = 0.01
# How much one Tesseract reading that names a handwriting candidate raises that candidate's score. Tesseract
# misreads handwriting often (it agrees with itself on "3" for a written 9), so it only breaks near-ties.
TESS_SUPPORT = 1.5


@dataclass(frozen=True)
class FieldRead:
    name: str
    kind: str
    text: str
    blank: bool
    confidence: float
    bbox: tuple[float, float, float, float]  # pixels at the pipeline dpi, upright page
    source: str  # text_layer | ocr | handwriting
    # Score boxes: values the readers found possible, best first, as (value, score); parse chooses among them
    # the combination that agrees with the declared total. Empty: only `text` is known.
    candidates: tuple[tuple[float, float], ...] = ()
    typed: bool = False  # the ink is the print font's (Tesseract's reading, checked against the font's shape)
    # Handwriting with a comma: the whole part before it and how sure that is (digits.ScoreReading.whole).
    whole: float | None = None
    whole_confidence: float = 0.0
    words: tuple[tuple[str, float], ...] = ()  # printed lines read by OCR: each word and how sure of it


def zone_px(zone: Zone, dpi: float) -> tuple[int, int, int, int]:
    b = zone.box
    return (round(mm_to_px(b.left, dpi)), round(mm_to_px(b.top, dpi)),
            round(mm_to_px(b.left + b.width, dpi)), round(mm_to_px(b.top + b.height, dpi)))


def _ink_ratio(crop: np.ndarray) -> float:
    if crop.size == 0:
        return 0.0
    h, w = crop.shape
    inner = crop[int(h * 0.05): int(h * 0.95), int(w * 0.05): int(w * 0.95)]
    if inner.size == 0:
        return 0.0
    return float(ink_mask(inner).mean())


def stamp_mask(cell: np.ndarray) -> np.ndarray:
    """Pixels of long runs of mid-grey ink that no dark stroke explains: a stamp's arcs crossing the box.

    Only ink far (> STAMP_NEAR px) from dark ink and of one flat grey counts, and only once a long arc of that
    grey comes in over the box's edge; faint or blurred strokes of the number itself, which hug their dark core,
    fade, and stay inside the box, stay.
    A real red stamp on a colour scan would vanish in the red channel; pages reach this stage as grayscale only
    (pages.py), so the grey level is all there is to go by.
    """
    smooth = cv2.medianBlur(cell, 3)
    stamp = np.zeros(cell.shape, bool)
    dark = (smooth < STAMP_DARK).astype(np.uint8)
    if int(dark.sum()) < STAMP_MIN_DARK:
        return stamp  # no darker writing to tell a stamp from: pale ink (pencil, blue ballpoint) is the number
    paper = float(np.percentile(smooth, 90))
    near = cv2.dilate(dark, np.ones((2 * STAMP_NEAR + 1, 2 * STAMP_NEAR + 1), np.uint8)) > 0
    far = ((smooth < paper - 40) & ~near).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(far, connectivity=8)
    h, w = cell.shape
    pieces: list[tuple[int, float, bool]] = []  # (label, grey level, an arc of the stamp for certain)
    for i in range(1, n):
        x, y, cw, ch, area = (int(v) for v in stats[i])
        if area < 15:
            continue
        # Stamp ink is one flat grey; the pale fringe of a soft pen stroke fades from dark to paper.
        levels = smooth[labels == i].astype(np.float32)
        level = float(np.median(levels))
        if level >= paper - 60 or float((np.abs(levels - level) <= STAMP_FLAT).mean()) < 0.5:
            continue
        # A stamp is bigger than a box: a long arc of it comes in over the box's edge. A number is written inside.
        edge = x <= 1 or y <= 1 or x + cw >= w - 1 or y + ch >= h - 1
        pieces.append((i, level, edge and area >= 40 and (cw >= 0.4 * w or ch >= 0.5 * h)))
    # Once an arc is certain, the other flat pieces of its grey (cut off by the number's strokes) are the stamp too.
    stamp_levels = [level for _, level, certain in pieces if certain]
    for i, level, _ in pieces:
        if any(abs(level - s) <= STAMP_FLAT for s in stamp_levels):
            stamp |= labels == i
    return stamp


def edge_crossing(cell: np.ndarray) -> np.ndarray:
    """The ink that runs over the box's edge (a bool mask, empty when none). A number is written inside its box; a
    stroke that comes in from outside is a signature, a stamp or a neighbour's writing, and whatever it crossed may
    read as another digit. Ink at the edge counts when it is joined to ink well inside the box: the table's own
    ruling lines, shifted a few pixels in by a fold or a skew (bent, meeting at the corners), stay in the band
    along the edges."""
    ink = ink_mask(cell).astype(np.uint8)
    h, w = ink.shape
    b = EDGE_PX
    band = max(b + 1, round(EDGE_BAND * min(h, w)))
    none = np.zeros(ink.shape, bool)
    if h <= 2 * band or w <= 2 * band:
        return none
    n, labels = cv2.connectedComponents(ink, connectivity=8)
    if n <= 1:
        return none
    ring = np.concatenate([labels[:b].ravel(), labels[-b:].ravel(), labels[:, :b].ravel(), labels[:, -b:].ravel()])
    at_edge = np.bincount(ring, minlength=n)
    inside = np.bincount(labels[band:h - band, band:w - band].ravel(), minlength=n)
    crossing = np.flatnonzero((at_edge >= EDGE_MIN_INK) & (inside > 0))
    return np.isin(labels, crossing[crossing > 0])


def clear_of_number(cell: np.ndarray, crossing: np.ndarray) -> bool:
    """Whether ink that crossed the box (a stamp's, or a stroke from outside) cannot have changed its number's
    reading: a line that runs in from a side of the box or across it (CROSSING_WIDE of its width), wholly above or
    wholly below the glyphs the reading takes (digits.read_ink), CROSSING_CLEAR of the box's height away from them.
    A fold's crease along the top of a row of boxes is that (held-out print-and-scan pages: 18 of 264 boxes of one
    seed capped for it, every one read right). Ink that touches the number or crosses its line, or comes in over
    the top or the bottom only (a digit written over the frame, its piece cut off by a streak), stays a crossing."""
    ink = read_ink(cell)
    if ink is None or not crossing.any():
        return False
    h, w = cell.shape
    rows = np.flatnonzero(ink.any(axis=1))
    cross_rows, cross_cols = np.flatnonzero(crossing.any(axis=1)), np.flatnonzero(crossing.any(axis=0))
    from_side = cross_cols[0] <= EDGE_PX or cross_cols[-1] >= w - 1 - EDGE_PX
    if not from_side and cross_cols[-1] - cross_cols[0] + 1 < CROSSING_WIDE * w:
        return False
    gap = CROSSING_CLEAR * h
    return bool(cross_rows[-1] < rows[0] - gap or cross_rows[0] > rows[-1] + gap)


def suppress_stamp(cell: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The box with stamp_mask's pixels painted paper-white."""
    mask = stamp_mask(cell) if mask is None else mask
    if not mask.any():
        return cell
    out = cell.copy()
    out[mask] = int(np.percentile(cv2.medianBlur(cell, 3), 90))
    return out


def strip_long_strokes(cell: np.ndarray, dpi: float) -> np.ndarray:
    """Paint over straight dark strokes longer than any printed digit: a signature or a line crossing the box.

    Printed digits are TYPED_PT tall, so no stroke of theirs is as long as this; handwriting's can be, which is
    why only the print readers (Tesseract, the print check) get this cleaned copy.
    """
    length = int(1.4 * TYPED_PT * DIGIT_EM / 72 * dpi)
    smooth = cv2.medianBlur(cell, 3)
    dark = ((smooth < 140) * 255).astype(np.uint8)
    segments = cv2.HoughLinesP(dark, 1, np.pi / 180, threshold=int(length * 0.8), minLineLength=length,
                               maxLineGap=2)
    if segments is None:
        return cell
    out = cell.copy()
    paper = int(np.percentile(smooth, 90))
    for x0, y0, x1, y1 in segments.reshape(-1, 4):
        cv2.line(out, (int(x0), int(y0)), (int(x1), int(y1)), paper, 5)
    return out


def drawn_text(text: str, font: str, size: int) -> np.ndarray | None:
    """`text` drawn black on white in the font file `font` at `size` pixels, cut to its ink; None when it leaves
    none."""
    img = Image.new("L", (size * (len(text) + 2), size * 2), 255)
    ImageDraw.Draw(img).text((size // 2, size // 3), text, font=ImageFont.truetype(font, size), fill=0)
    arr = np.asarray(img)
    ys, xs = np.nonzero(arr < 128)
    if len(xs) == 0:
        return None
    return arr[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


@lru_cache(maxsize=256)
def _font_glyphs(text: str) -> tuple[np.ndarray, ...]:
    """`text` in the form's print font (regular and bold), cut to its ink: what a typed box looks like."""
    drawn = (drawn_text(text, path, 64) for path in FONTS if Path(path).exists())
    return tuple(g for g in drawn if g is not None)


def typed_evidence(cell: np.ndarray, text: str, dpi: float) -> bool:
    """Is this box's ink `text` printed by formsvc? Print has the template's digit height and the font's shape;
    handwriting is taller and shaped otherwise. Decides whom to believe when Tesseract and the recogniser differ.
    """
    return typed_match(cell, text, dpi) >= TYPED_MATCH


def typed_match(cell: np.ndarray, text: str, dpi: float) -> float:
    """How well the box's ink matches `text` in the print font (normalised correlation; 0 when its height is not
    the print's)."""
    h, w = cell.shape
    inner = cell[int(h * 0.08): int(h * 0.92), int(w * 0.06): int(w * 0.94)]
    ys, xs = np.nonzero(cv2.medianBlur(inner, 3) < 140)
    if len(xs) == 0 or not text:
        return 0.0
    expected = TYPED_PT * DIGIT_EM / 72 * dpi
    height = ys.max() - ys.min() + 1
    if not TYPED_HEIGHT[0] * expected <= height <= TYPED_HEIGHT[1] * expected:
        return 0.0
    # Both softened alike: a scan's edges and the reference's differ by a pixel here and there, the shapes do not.
    ink = 255 - cv2.GaussianBlur(inner[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.float32), (0, 0),
                                 TYPED_BLUR)
    ink -= ink.mean()
    glyphs = _font_glyphs(text.replace(".", ","))
    if not glyphs:
        return 1.0  # the print font is not installed: the height alone has to do
    best = 0.0
    for glyph in glyphs:
        sized = cv2.resize(glyph, (ink.shape[1], ink.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
        # A low-resolution photo, scaled up to the page raster, is softer than a scan: the reference is softened
        # as much as the page may be.
        for sigma in TYPED_REF_BLURS:
            ref = (255 - cv2.GaussianBlur(sized, (0, 0), sigma)).astype(np.float32)
            ref -= ref.mean()
            best = max(best, float((ink * ref).sum() / (np.linalg.norm(ink) * np.linalg.norm(ref) + 1e-6)))
    return best


def typed_reading(cell: np.ndarray, a: OcrText, b: OcrText, dpi: float) -> tuple[bool, OcrText, OcrText]:
    """Is the box print, and Tesseract's two readings of it. On a soft page Tesseract drops or keeps a printed
    decimal comma at one scale and not the other ("45" for 4,5): readings that differ only by the comma are
    settled by the print font's shape (the spelling whose rendering matches the ink best), never by a guess."""
    text = a.text if _num(a.text) is not None else b.text
    digits = text.replace(",", "").replace(".", "")
    spellings = {t for t in (a.text, b.text) if _num(t) is not None and t.replace(",", "").replace(".", "") == digits}
    if re.fullmatch(r"\d{2,3}", digits):
        spellings.add(f"{digits[:-1]},{digits[-1]}")
    spellings.add(text)
    scored = sorted(((typed_match(cell, t, dpi), t) for t in spellings if t), reverse=True)
    if not scored or scored[0][0] < TYPED_MATCH:
        return False, a, b
    best = scored[0][1]
    if best == a.text == b.text:
        return True, a, b
    fixed = OcrText(best, min(a.confidence, b.confidence))
    return True, fixed, fixed


def _tight(crop: np.ndarray) -> np.ndarray:
    """Cut the ink's bounding box (plus a margin) so the OCR sees the number, not the cell borders."""
    h, w = crop.shape
    inner = crop[int(h * 0.05): int(h * 0.95), int(w * 0.05): int(w * 0.95)]
    ys, xs = np.nonzero(inner < 140)
    if len(xs) == 0:
        return inner
    m = 6
    y0, y1 = max(0, ys.min() - m), min(inner.shape[0], ys.max() + m)
    x0, x1 = max(0, xs.min() - m), min(inner.shape[1], xs.max() + m)
    # Tesseract reads anti-aliased glyphs better than hard-edged ones (clean scans read worse than blurred).
    return cv2.GaussianBlur(inner[y0:y1, x0:x1], (0, 0), 0.8)


def _num(text: str) -> float | None:
    return float(text.replace(",", ".")) if NUMBER.match(text) else None


def _support(hand: ScoreReading, a: float | None, b: float | None, max_value: float,
             step: float) -> tuple[tuple[float, float], ...]:
    """The recogniser's candidates, re-ranked by what Tesseract read at its two scales."""
    scores = dict(hand.candidates)
    for t in (a, b):
        if t is None or not allowed(t, max_value, step):
            continue
        # A value only Tesseract saw stays a long shot; one both readers saw moves up.
        scores[t] = scores[t] * TESS_SUPPORT if t in scores else max(scores.get(t, 0.0), 1e-3)
    return tuple(sorted(scores.items(), key=lambda kv: -kv[1]))


def combine(z: Zone, box: tuple[int, int, int, int], a: OcrText, b: OcrText, hand: ScoreReading,
            typed: bool = False, max_value: float = READ_MAX, step: float = READ_STEP) -> FieldRead:
    """Typed or handwritten? Tesseract (twice) reads print, the recogniser reads handwriting; `typed` says which
    the ink looks like (the print font's height and shape).

    - Print, Tesseract agrees with itself: its reading; confident only if the recogniser reads it too.
    - Handwriting: the recogniser's candidates, Tesseract's readings only moving near-ties; confident when the
      recogniser is sure and its top reading stays on top, or when Tesseract (both scales) reads it too.
    - Tesseract agrees with itself but the ink is not print and the recogniser has nothing: Tesseract's reading,
      flagged.
    """
    ta, tb = _num(a.text), _num(b.text)
    typed_value = ta if ta is not None and ta == tb else None
    typed_conf = min(a.confidence, b.confidence)
    if hand.state == "crossed":
        return FieldRead(z.name, z.kind, "", True, 0.5, box, "handwriting")
    if typed_value is not None and (typed or hand.state != "number"):
        conf = max(typed_conf, hand.confidence) if hand.value == typed_value else min(typed_conf, 0.6)
        if not typed:
            conf = min(conf, 0.6)
        return FieldRead(z.name, z.kind, a.text, False, conf, box, "ocr", ((typed_value, 1.0),), typed)
    if hand.state == "number" and hand.value is not None:
        ranked = _support(hand, ta, tb, max_value, step)
        if not ranked:
            return FieldRead(z.name, z.kind, hand.text, False, hand.confidence, box, "handwriting")
        best = ranked[0][0]
        if best == hand.value:
            conf = hand.confidence
            if typed_value == best:
                conf = max(conf, typed_conf)  # two different readers agree
        else:
            conf = min(hand.confidence, 0.5)  # Tesseract tipped the balance: a guess for review
        return FieldRead(z.name, z.kind, as_written(best), False, conf, box, "handwriting", ranked,
                         whole=hand.whole, whole_confidence=hand.whole_confidence)
    return FieldRead(z.name, z.kind, a.text, False, min(typed_conf, 0.3), box, "ocr")


def _taller_crops(image: np.ndarray, box: tuple[int, int, int, int]) -> list[np.ndarray]:
    """A printed line's crops LINE_GROWTH of its height taller above and below: a fold or a curled page lifts part
    of a line off its place (measured on print-and-scan pages: "Dương Kim bi....aở" at 0.25 from the zone, "Dương
    Kim Phượng" at 0.82 from a crop 0.4 taller)."""
    x0, y0, x1, y1 = box
    return [image[max(0, y0 - d): y1 + d, max(0, x0): x1] for d in (round((y1 - y0) * g) for g in LINE_GROWTH)]


def _taller_readings(image: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> list[list[OcrText]]:
    """Each line's taller crops, all read in one recognition (a dark dithered page has every line unsure: one call
    a crop was a third of such a page's time)."""
    n = len(LINE_GROWTH)
    flat = read_lines([crop for box in boxes for crop in _taller_crops(image, box)])
    return [flat[i:i + n] for i in range(0, len(flat), n)]


def capped(read: FieldRead, most: float) -> FieldRead:
    """A reading no surer than `most`, however its value is arrived at."""
    return replace(read, confidence=min(read.confidence, most), whole_confidence=min(read.whole_confidence, most))


def read_digital(zones: list[Zone], words: list[Word], dpi: float) -> list[FieldRead]:
    out = []
    for z in zones:
        x0, y0, x1, y1 = zone_px(z, dpi)
        inside = [w for w in words if x0 <= (w.box[0] + w.box[2]) / 2 <= x1 and y0 <= (w.box[1] + w.box[3]) / 2 <= y1]
        text = " ".join(w.text for w in sorted(inside, key=lambda w: (round(w.box[1] / 10), w.box[0])))
        out.append(FieldRead(z.name, z.kind, text, blank=not text.strip(), confidence=1.0,
                             bbox=(x0, y0, x1, y1), source="text_layer"))
    return out


@dataclass(frozen=True)
class _ScoreCrop:
    zone: Zone
    box: tuple[int, int, int, int]
    cell: np.ndarray  # stamp suppressed: what the handwriting recogniser reads
    printed: np.ndarray  # also without long straight strokes: what Tesseract and the print check see
    most: float  # how sure a reading of it can be: below 1 when something crossed it (STAMPED, SEAL_DROPPED)
    only_coloured: bool = False  # all its ink was red/purple: a seal alone, or a number in red pen


def _coloured_ink(crop: np.ndarray, luma: np.ndarray | None, box: tuple[int, int, int, int]) -> tuple[bool, bool]:
    """(coloured ink was dropped from this box, all of the box's ink was coloured) on a colour page."""
    if luma is None:
        return False, False
    plain = _ink_ratio(_cut(luma, box))
    kept = _ink_ratio(crop)
    coloured = plain - kept >= COLOURED_INK
    return coloured, coloured and kept < INK_RATIO_BLANK


def _cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The part of `image` inside `box` (x0, y0, x1, y1), clipped to the image."""
    x0, y0, x1, y1 = box
    return image[max(0, y0): y1, max(0, x0): x1]


def despeckled(image: np.ndarray) -> np.ndarray:
    """The page with a bad photocopy's speckle taken out (a 5x5 median) when it is covered in it: there the specks
    break strokes and draw lines a cross-out detector believes (held-out bench: 11 boxes read as crossed out on
    three such pages). Any other page as it is: a median also eats thin strokes and commas."""
    return cv2.medianBlur(image, 5) if speck_share(image) > SPECKLED else image


def read_scanned(zones: list[Zone], image: np.ndarray, dpi: float,
                 luma: np.ndarray | None = None) -> list[FieldRead]:
    """Fields of an aligned scanned page. `luma`: a colour page's plain grey levels when seal ink was dropped from
    `image`; a box that lost ink to the dropout was crossed by a seal (or written in red pen) and is never fully
    trusted, and a box whose ink was ALL coloured is read from the plain grey levels for a person to confirm."""
    image = despeckled(image)
    seal_dropped = get_settings().review_confidence - SEAL_BELOW_REVIEW
    out: dict[str, FieldRead] = {}
    numbers: list[_ScoreCrop] = []
    lines: list[tuple[Zone, tuple[int, int, int, int], np.ndarray]] = []
    for z in zones:
        box = zone_px(z, dpi)
        crop = _cut(image, box)
        if z.kind == "score":
            coloured, only_coloured = _coloured_ink(crop, luma, box)
            if only_coloured and luma is not None:
                crop = _cut(luma, box)
            stamp = stamp_mask(crop)
            cell = suppress_stamp(crop, stamp)
            if _ink_ratio(cell) < INK_RATIO_BLANK:
                sure = 0.97 if not stamp.any() and not coloured else STAMPED
                out[z.name] = FieldRead(z.name, z.kind, "", True, sure, box, "ocr")
            else:
                crossing = stamp | edge_crossing(cell)
                crossed = bool(crossing.any()) and not clear_of_number(cell, crossing)
                most = STAMPED if crossed else seal_dropped if coloured else 1.0
                numbers.append(_ScoreCrop(z, box, cell, strip_long_strokes(cell, dpi), most, only_coloured))
        elif z.name.startswith("evidence."):
            # Evidence is usually handwritten: record whether the cell has content; a reviewer reads the crop.
            inked = _ink_ratio(crop) >= INK_RATIO_BLANK
            out[z.name] = FieldRead(z.name, z.kind, EVIDENCE_PRESENT if inked else "", not inked, 0.9, box, "ocr")
        elif z.kind == "text":
            lines.append((z, box, line_crop(image, box, dpi)))
    # Two readings at two scales: a typed number both agree on is trusted.
    first, second = read_numbers_twice([_tight(n.printed) for n in numbers])
    for n, a, b in zip(numbers, first, second, strict=True):
        hand = read_score(n.cell, max_value=READ_MAX, step=READ_STEP)
        typed, a, b = typed_reading(n.printed, a, b, dpi)
        read = combine(n.zone, n.box, a, b, hand, typed)
        read = capped(read, n.most)
        if n.only_coloured:
            read = capped(read, ONLY_COLOURED)
        out[n.zone.name] = read
    first = read_lines([c for _, _, c in lines])
    line_inked = [_ink_ratio(crop) >= INK_RATIO_BLANK for _, _, crop in lines]
    # A blank line stays blank; an unsure one, or a line of ink Tesseract read as nothing (a fold's step), is read
    # again from taller crops, unless specks are what make it unsure.
    again = [i for i, res in enumerate(first)
             if res.confidence < LINE_RETRY_BELOW and (res.text.strip() or line_inked[i])
             and speck_share(_cut(image, lines[i][1])) <= LINE_RETRY_SPECKS]
    for i, taller in zip(again, _taller_readings(image, [lines[i][1] for i in again]), strict=True):
        first[i] = max([first[i], *taller], key=lambda r: r.confidence)
    for (z, box, _), res, ink in zip(lines, first, line_inked, strict=True):
        # A line of ink read as nothing is not blank: a printed value may be lost under a stain.
        out[z.name] = FieldRead(z.name, z.kind, res.text, not res.text.strip() and not ink, res.confidence, box,
                                "ocr", words=res.words)
    return [out[z.name] for z in zones if z.name in out]
