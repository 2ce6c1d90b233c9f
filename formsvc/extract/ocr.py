"""Tesseract, batched: all of a page's crops of one kind go through ONE recognition.

Crops are pasted one under another with wide white gaps; each recognised word is mapped back to the crop it came
from by position. Tesseract runs in this process
through its C++ API (tesserocr), one engine per language kept for the life of the process: starting the
`tesseract` program and loading its model for every call cost more than the recognition itself.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

# For any `tesseract` program started from this process: OpenMP makes it ~4x slower on 2 cores.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import cv2
import numpy as np
import tesserocr

from formsvc.errors import ExternalToolError
from formsvc.settings import get_settings

GAP = 40
PSM_OSD, PSM_AUTO, PSM_BLOCK, PSM_LINE, PSM_SPARSE = 0, 3, 6, 7, 11  # Tesseract page segmentation: orientation
# only / layout / one block / one line / words wherever they are
OSD_MIN_CONFIDENCE = 2.0  # Tesseract's orientation confidence (a margin, not a probability); below it, keep as is
DIGITS = "0123456789,."
# Tesseract falls back to 70 dpi for images without a resolution (as crops are); the engines were tuned with
# it, and the page dpi would make it discard small glyphs as noise.
SOURCE_DPI = 70
PAPER_PERCENTILE = 90  # a crop's paper level: most of a text line's or a number's crop is paper
MIN_PAPER = 96  # a "paper" darker than this is ink or a black border: left as it is


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float  # 0..1
    # Its words left to right, each as sure as Tesseract is of it: a line is as sure as its least sure word, and a
    # speck read as a word beside a clear one need not make that one unsure.
    words: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class OcrWord:
    text: str
    confidence: float  # 0..1
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image given


@dataclass
class _Engine:
    api: tesserocr.PyTessBaseAPI
    lock: threading.Lock = field(default_factory=threading.Lock)


_ENGINES: dict[tuple[str, int, str], _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(lang: str, psm: int, whitelist: str) -> _Engine:
    key = (lang, psm, whitelist)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            path = get_settings().tessdata_dir
            try:
                api = tesserocr.PyTessBaseAPI(path=path, lang=lang, psm=psm)
            except RuntimeError as exc:
                raise ExternalToolError(f"Không khởi động được Tesseract (ngôn ngữ {lang}, dữ liệu {path}).",
                                        code="tesseract_unavailable") from exc
            if whitelist:
                api.SetVariable("tessedit_char_whitelist", whitelist)
            engine = _ENGINES[key] = _Engine(api)
    return engine


def read_words(image: np.ndarray, lang: str, psm: int, whitelist: str = "", dpi: int = SOURCE_DPI) -> list[OcrWord]:
    """Words Tesseract finds in a grayscale image, with their boxes."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape
    engine = _engine(lang, psm, whitelist)
    words = []
    with engine.lock:
        api = engine.api
        try:
            api.SetImageBytes(img.tobytes(), w, h, 1, w)
            api.SetSourceResolution(dpi)
            api.Recognize()
            it = api.GetIterator()
            level = tesserocr.RIL.WORD
            for r in tesserocr.iterate_level(it, level) if it is not None else ():
                try:
                    text = (r.GetUTF8Text(level) or "").strip()
                except RuntimeError:  # an element with no text (tesserocr raises rather than returning "")
                    continue
                box = r.BoundingBox(level)
                if text and box is not None:
                    words.append(OcrWord(text, max(0.0, r.Confidence(level)) / 100, tuple(box)))
        finally:
            api.Clear()  # the next page must never see this one's image or results
    return words


def upright_turns(image: np.ndarray, dpi: float) -> int:
    """Quarter turns counter-clockwise (as numpy.rot90 counts them) that set a page's text upright; 0 when it
    already is or Tesseract is unsure. Needs the page at its scanning resolution: at half, 180° is missed."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape
    engine = _engine("osd", PSM_OSD, "")
    with engine.lock:
        api = engine.api
        try:
            api.SetImageBytes(img.tobytes(), w, h, 1, w)
            api.SetSourceResolution(round(dpi))
            found = api.DetectOrientationScript()
        except RuntimeError:  # too little text to tell
            found = None
        finally:
            api.Clear()
    if not found or found["orient_conf"] < OSD_MIN_CONFIDENCE:
        return 0
    return int(found["orient_deg"]) // 90 % 4


def read_numbers_twice(crops: list[np.ndarray], height: int = 48) -> tuple[list[OcrText], list[OcrText]]:
    """Typed/printed numbers, one per crop, read twice in ONE recognition: once rescaled to `height`
    pixels and once at the scan's own scale, all stacked as separate lines. Two scales disagree when a
    reading is shaky, which is what the caller checks."""
    scaled = []
    for c in crops:
        h, w = c.shape
        s = height / max(h, 1)
        scaled.append(_resize(c, max(1, round(w * s)), height))
    both = _stacked(scaled + list(crops), "eng", DIGITS, joiner="")
    return both[: len(crops)], both[len(crops):]


def read_lines(crops: list[np.ndarray]) -> list[OcrText]:
    """Printed Vietnamese text, one line per crop, read in one recognition with crops stacked vertically."""
    return _stacked([paper_white(c) for c in crops], "vie", "", joiner=" ")


def read_line(crop: np.ndarray, psm: int) -> OcrText:
    """Printed Vietnamese text in one crop, read with page segmentation `psm`."""
    return _as_text(read_words(paper_white(crop), "vie", psm), " ")


def paper_white(crop: np.ndarray) -> np.ndarray:
    """The crop with its paper brought to white. Pasted grey (a photo's shadow, a scanner's lighting gradient) on
    the white canvas, a crop is a dark block to Tesseract's global threshold, and the words on it are lost."""
    if crop.size == 0:
        return crop
    paper = float(np.percentile(crop, PAPER_PERCENTILE))
    if paper >= 250 or paper < MIN_PAPER:  # already white, or no paper to see (a crop of ink only)
        return crop
    return cv2.convertScaleAbs(crop, alpha=255.0 / paper)


def stacked_words(crops: list[np.ndarray], lang: str, whitelist: str = "") -> list[list[OcrWord]]:
    """Words of each crop in Tesseract's reading order (a crop may hold several lines), with all crops stacked one
    under another and read at once."""
    if not crops:
        return []
    width = max(c.shape[1] for c in crops) + 2 * GAP
    height = sum(c.shape[0] for c in crops) + GAP * (len(crops) + 1)
    canvas = np.full((height, width), 255, np.uint8)
    spans = []
    y = GAP
    for c in crops:
        canvas[y:y + c.shape[0], GAP:GAP + c.shape[1]] = c
        spans.append((y, y + c.shape[0]))
        y += c.shape[0] + GAP
    out: list[list[OcrWord]] = [[] for _ in crops]
    for word in read_words(canvas, lang, PSM_BLOCK, whitelist):
        cy = (word.box[1] + word.box[3]) / 2
        for i, (a, b) in enumerate(spans):
            if a - GAP / 2 <= cy <= b + GAP / 2:
                out[i].append(word)
                break
    return out


def _stacked(crops: list[np.ndarray], lang: str, whitelist: str, joiner: str) -> list[OcrText]:
    return [_as_text(ws, joiner) for ws in stacked_words(crops, lang, whitelist)]


def _as_text(words: list[OcrWord], joiner: str) -> OcrText:
    """Words as one text, left to right by their centres, as sure as the least sure of them."""
    ordered = sorted(words, key=lambda w: w.box[0] + w.box[2])
    return OcrText(joiner.join(w.text for w in ordered), min((w.confidence for w in words), default=0.0),
                   tuple((w.text, w.confidence) for w in ordered))


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < img.shape[1] else cv2.INTER_CUBIC)
