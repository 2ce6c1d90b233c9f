"""Stage 2, identify: which formsvc page is this? Its codes first, then the other copies of its identity.

Every own page carries its identity three times (formsvc.payload): the primary code, a second code in the
opposite corner and a printed id line. The codes are read from the page as it came; when neither decodes but the
page's markers are found, the page is certainly formsvc's, and the code boxes are cut from the source at a finer
resolution than the page raster (a small, blurred or half-stained code often decodes there), then the id line is
read by OCR and accepted only when its check digits agree. A page with formsvc's markers is never handed to the
readers of other layouts: it is identified, or it is reported as an own page that could not be identified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import zxingcpp

from formsvc import layout
from formsvc.errors import InputError
from formsvc.extract.align import PageMatrix, best_matrix, mended, warp_box
from formsvc.extract.ocr import PSM_LINE, PSM_SPARSE, read_words
from formsvc.payload import PagePayload, is_second, parse_id_line, unchecked_fields, unchecked_payload

QR_FORMATS = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
STREAK_PX = (3, 5)  # px at CODE_PX_PER_MM: white streaks closed in a code's crop, each thinner than a module (6 px)
CODE_PX_PER_MM = 16.0  # ~400 dpi: 6 px a module for the primary code, 6 for the second
ID_LINE_UNCHECKED = "id_line_unchecked"
# Readings (of the 16 or more an unreadable line gets: 2 layouts x 4 variants x 2 heights) that must agree on every
# field before an id line whose check digits are unreadable is offered to the batch for confirmation.
UNCHECKED_AGREE = 3
LINE_PX_PER_MM = 12.0  # ~300 dpi for the id line's 8 pt monospace


@dataclass(frozen=True)
class Identified:
    payload: PagePayload
    # Each of the page's codes read: its 4x2 corners (top-left, top-right, bottom-right, bottom-left in the code's
    # own orientation) in image pixels, and the box it has on the page; none when identified by the id line.
    codes: tuple[tuple[np.ndarray, layout.Box], ...]
    how: str  # qr | qr2 | qr_fine | qr2_fine | id_line | id_line_unchecked (for the batch to confirm)


@dataclass(frozen=True)
class Code:
    payload: PagePayload
    corners: np.ndarray
    second: bool

    @property
    def centre(self) -> np.ndarray:
        return self.corners.mean(axis=0)


def _corners(result: zxingcpp.Barcode) -> np.ndarray:
    pos = result.position
    return np.array([[pos.top_left.x, pos.top_left.y], [pos.top_right.x, pos.top_right.y],
                     [pos.bottom_right.x, pos.bottom_right.y], [pos.bottom_left.x, pos.bottom_left.y]],
                    dtype=np.float32)


def read_codes(image: np.ndarray, *, binarize: bool = False) -> list[Code]:
    """Every formsvc code zxing finds in `image` (codes of other kinds are ignored)."""
    found = []
    binarizer = zxingcpp.Binarizer.GlobalHistogram if binarize else zxingcpp.Binarizer.LocalAverage
    for result in zxingcpp.read_barcodes(image, formats=QR_FORMATS, try_rotate=True, try_downscale=True,
                                         binarizer=binarizer):
        try:
            payload = PagePayload.decode(result.text)
        except InputError:
            continue
        found.append(Code(payload, _corners(result), is_second(result.text)))
    return found


def _box(code: Code) -> layout.Box:
    return layout.qr2_box() if code.second else layout.qr_box()


def identify(image: np.ndarray) -> Identified | None:
    """From the codes as they are on the page (the primary preferred); both codes' corners when both are read,
    as anchors far apart for the page's alignment."""
    codes = read_codes(image)
    if not codes:
        return None
    code = next((c for c in codes if not c.second), codes[0])
    # Only this page's: an image holding two pages (an open booklet) has the other page's codes too.
    same = [c for c in codes if c.payload == code.payload]
    return Identified(code.payload, tuple((c.corners, _box(c)) for c in same), "qr2" if code.second else "qr")


@lru_cache(maxsize=1)
def known_ids() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Ids of every known form and criteria set: what an OCR'd id line's form and set fields may be."""
    from formsvc.criteria import default_registry
    from formsvc.forms import list_forms

    return tuple(f.id for f in list_forms()), tuple(s.id for s in default_registry())


def read_smoothed(crop: np.ndarray) -> list[Code]:
    """The codes in a crop cut at CODE_PX_PER_MM, smoothed more and more until one decodes: blur, then a
    dithering scanner's dots merged back into modules; a printer's white streaks closed along either direction,
    which blurring spreads over the modules; a median for a bad photocopy's speckle, which blurring only spreads;
    last the same after evening out the light (glare and dark patches across the code)."""
    for candidate in _smoothings(crop):
        codes = read_codes(candidate) or read_codes(candidate, binarize=True)
        if codes:
            return codes
    return []


def _smoothings(crop: np.ndarray) -> Iterator[np.ndarray]:
    # Made one at a time: most codes decode from the first, and the light evened out costs most.
    yield crop
    for sigma in (1.2, 2.0, 3.0):
        yield cv2.GaussianBlur(crop, (0, 0), sigma)
    for px in STREAK_PX:
        for vertical in (True, False):
            yield mended(crop, vertical, px)
    for k in (5, 7):
        yield cv2.medianBlur(crop, k)
    even = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(crop)
    for k in (5, 7):
        yield cv2.medianBlur(even, k)


def _fine_codes(image: np.ndarray, pm: PageMatrix) -> Identified | None:
    for box, how in ((layout.qr_box(), "qr_fine"), (layout.qr2_box(), "qr2_fine")):
        crop, back = warp_box(image, pm, box, CODE_PX_PER_MM, pad_mm=3.0)
        codes = read_smoothed(crop)
        if codes:
            corners = cv2.perspectiveTransform(codes[0].corners.reshape(-1, 1, 2), back).reshape(-1, 2)
            return Identified(codes[0].payload, ((corners.astype(np.float32), box),), how)
    return None


def _line_variants(crop: np.ndarray) -> Iterator[np.ndarray]:
    """The id line as cut, contrast-stretched, binarised and at half size: Tesseract's slips differ between them
    (5/S, 0/O, a speck read as 'i'), and only a reading that passes the check is taken."""
    yield crop
    lo, hi = float(crop.min()), float(crop.max())
    yield ((crop.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0))).astype(np.uint8)
    yield cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]
    yield cv2.resize(crop, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


def read_id_line(crop: np.ndarray, forms: Iterable[str], criteria_sets: Iterable[str],
                 seen: list[str] | None = None) -> PagePayload | None:
    """The payload printed in the id line of `crop`, when its check digits agree. Every reading is added to
    `seen`."""
    forms, criteria_sets = list(forms), list(criteria_sets)
    variants = list(_line_variants(crop))
    # A crop already spanning black to white is its own contrast stretch: the same pixels read the same, so such a
    # twin is not read again, but its reading still counts (agreed_fields votes over every variant).
    twin = [next((j for j in range(i) if np.array_equal(variants[j], v)), i) for i, v in enumerate(variants)]
    # As one line first; then word by word, for a line a fold has bent off its baseline.
    for psm in (PSM_LINE, PSM_SPARSE):
        texts: list[str] = []
        for i, img in enumerate(variants):
            text = texts[twin[i]] if twin[i] < i else _line_text(img, psm)
            texts.append(text)
            if seen is not None:
                seen.append(text)
            payload = parse_id_line(text, forms, criteria_sets)
            if payload is not None:
                return payload
    return None


def _line_text(img: np.ndarray, psm: int) -> str:
    # No character whitelist: with one, Tesseract drops the spaces that separate the fields.
    words = read_words(img, "eng", psm, dpi=int(LINE_PX_PER_MM * layout.MM_PER_INCH))
    words.sort(key=lambda w: w.box[0])
    return " ".join(w.text for w in words)


def agreed_unchecked(readings: Iterable[str], forms: Iterable[str], criteria_sets: Iterable[str]
                     ) -> PagePayload | None:
    """The payload of the id line's agreed fields (agreed_fields), when they make one. Still unconfirmed
    (payload.unchecked_payload)."""
    return unchecked_payload(agreed_fields(readings, forms, criteria_sets))


def agreed_fields(readings: Iterable[str], forms: Iterable[str], criteria_sets: Iterable[str]) -> list[str | None]:
    """The id line's seven fields as most readings read them, the check digits left aside (a fold or a stain over
    them): field by field, the value UNCHECKED_AGREE readings or more agree on and more than every other reading of
    that field together (the same slip recurs across variants of one crop: a 0 read 9 three times in sixteen);
    None where no value is agreed."""
    forms, criteria_sets = list(forms), list(criteria_sets)
    votes: list[Counter[str]] = [Counter() for _ in range(7)]
    for text in readings:
        for counter, value in zip(votes, unchecked_fields(text, forms, criteria_sets) or (), strict=False):
            if value is not None:
                counter[value] += 1
    agreed: list[str | None] = []
    for counter in votes:
        best = counter.most_common(1)
        n = best[0][1] if best else 0
        agreed.append(best[0][0] if n >= UNCHECKED_AGREE and n > counter.total() - n else None)
    return agreed


def identify_own_page(image: np.ndarray, dpi: float, seen: list[str] | None = None
                      ) -> tuple[Identified | None, PageMatrix | None]:
    """For a page whose codes did not decode: its markers (on the page as it is or on a mended copy, whichever
    shows most of them) say whether it is formsvc's at all (the matrix, or None); if so, the codes at a finer
    resolution, then the printed id line. Every reading of the id line is added to `seen`."""
    best = best_matrix(image, dpi, min_markers=2)
    if best is None:
        return None, None
    pm, view = best
    views = [image] if view is image else [image, view]
    forms, sets = known_ids()
    for v in views:
        found = _fine_codes(v, pm)
        if found is not None:
            return found, pm
    # Tight first; then taller, for a line a fold or a curl has lifted off its place.
    seen = [] if seen is None else seen
    for pad in (0.0, 2.5):
        for v in views:
            crop, _ = warp_box(v, pm, layout.id_line_box(), LINE_PX_PER_MM, pad_mm=pad)
            payload = read_id_line(crop, forms, sets, seen)
            if payload is not None:
                return Identified(payload, (), "id_line"), pm
    unchecked = agreed_unchecked(seen, forms, sets)
    return (None if unchecked is None else Identified(unchecked, (), ID_LINE_UNCHECKED)), pm
