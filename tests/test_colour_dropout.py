"""Colour scans and photos: a red seal over score boxes and over the code is dropped by its hue, blue pen stays,
and a box whose only ink is red is sent to a person, never read as blank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest

from fixtures.scans import random_record
from fixtures.seals import RED, seal
from formsvc import layout
from formsvc.extract.colour import drop_colour, seal_mask
from formsvc.extract.pipeline import extract_files
from formsvc.render import render_document
from formsvc.render.zones import form_zones
from formsvc.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]  # forms rendered, stamped and read back

DPI = 200
PURPLE = (120, 40, 150)


def _colour_pages(pdf: bytes) -> list[np.ndarray]:
    doc = pdfium.PdfDocument(pdf)
    try:
        return [np.asarray(doc[i].render(scale=DPI / 72).to_pil().convert("RGB")) for i in range(len(doc))]
    finally:
        doc.close()


def _px(mm: float) -> int:
    return round(layout.mm_to_px(mm, DPI))


def _save(pages: list[np.ndarray], path: Path) -> Path:
    first, *rest = [p for p in pages]
    from PIL import Image

    Image.fromarray(first).save(path, save_all=True, append_images=[Image.fromarray(p) for p in rest],
                                dpi=(DPI, DPI), compression="jpeg")
    return path


def test_seal_mask_keeps_blue_pen_and_black_print() -> None:
    img = np.full((60, 120, 3), 245, np.uint8)
    img[10:20, 10:30] = (25, 60, 170)  # blue ballpoint
    img[10:20, 40:60] = (20, 20, 20)  # black print
    img[10:20, 70:90] = RED
    img[30:40, 70:90] = PURPLE
    mask = seal_mask(img)
    assert not mask[10:20, 10:30].any() and not mask[10:20, 40:60].any()
    assert mask[10:20, 70:90].all() and mask[30:40, 70:90].all()
    dropped = drop_colour(img)
    assert dropped.luma is not None
    assert dropped.image[15, 80] == 255 and dropped.image[15, 20] < 120 and dropped.image[15, 50] < 60


def test_dropout_is_the_hue_saturation_and_value_rule_on_every_colour() -> None:
    """The dropout made with OpenCV's range tests is the rule as written (colour.py): red to purple hue, saturated,
    not dark; its ring taken with it; a pixel dark in every channel kept. Every colour a page can hold, each with a
    random neighbour inside its ring, on paper."""
    from formsvc.extract.colour import MIN_SATURATION, MIN_VALUE, RED_PURPLE

    rng = np.random.default_rng(3)
    colours = np.concatenate([rng.integers(0, 256, (146 * 138 - 100, 3)), np.full((100, 3), 255)]).astype(np.uint8)
    img = np.full((4 * 146, 4 * 138, 3), 255, np.uint8)
    img[1::4, 1::4] = colours.reshape(146, 138, 3)
    img[2::4, 1::4] = rng.permutation(colours).reshape(146, 138, 3)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(int)
    hue = np.zeros(img.shape[:2], bool)
    for lo, hi in RED_PURPLE:
        hue |= (hsv[..., 0] >= lo) & (hsv[..., 0] < hi)
    rule = hue & (hsv[..., 1] >= MIN_SATURATION) & (hsv[..., 2] >= MIN_VALUE)
    assert np.array_equal(seal_mask(img), rule) and 0 < rule.sum() < rule[1::4, 1::4].size
    ring = cv2.dilate(rule.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    want = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    want[ring & (img.max(axis=2) >= MIN_VALUE)] = 255
    dropped = drop_colour(img)
    assert dropped.luma is not None and np.array_equal(dropped.image, want)


def test_red_seal_over_boxes_and_code_is_dropped(tmp_path: Path) -> None:
    data: dict[str, Any] = random_record(421)
    pages = _colour_pages(render_document("cdht-self-assessment", data))
    zones = {z.name: z for z in form_zones("cdht-self-assessment", data["criteria_set"]).zones}
    box = zones["scores.ct2"].box
    pages[0] = seal(pages[0], (box.left + box.width / 2, box.top + box.height))  # over two score boxes
    q = layout.qr_box()
    pages[1] = seal(pages[1], (q.left + q.width / 2, q.top + q.height / 2), radius_mm=14)  # over the code
    result = extract_files([_save(pages, tmp_path / "sealed.tif")])
    assert result.errors == []
    [doc] = result.documents
    assert doc.scores == data["scores"]
    assert doc.subject.full_name == data["subject"]["full_name"]


def test_box_with_only_red_ink_is_never_blank(tmp_path: Path) -> None:
    data: dict[str, Any] = random_record(422, blanks=2)
    empty = [k for k, v in data["scores"].items() if v is None]
    pages = _colour_pages(render_document("cdht-self-assessment", data))
    zones = {z.name: z for z in form_zones("cdht-self-assessment", data["criteria_set"]).zones}
    z = zones[f"scores.{empty[0]}"]
    page = pages[z.page - 1].copy()
    # "8" written in red pen in a box the printed form left empty.
    cv2.putText(page, "8", (_px(z.box.left + z.box.width * 0.35), _px(z.box.top + z.box.height * 0.8)),
                cv2.FONT_HERSHEY_SIMPLEX, 1.6, RED, 4)
    pages[z.page - 1] = page
    [doc] = extract_files([_save(pages, tmp_path / "red_pen.tif")]).documents
    field = next(f for f in doc.fields if f.name == f"scores.{empty[0]}")
    assert field.confidence < get_settings().review_confidence
    assert doc.status == "needs_review"


def test_a_box_a_red_seal_crossed_is_unsure_on_its_own_and_the_sum_may_confirm_it() -> None:
    """The seal's ink goes by its colour and the pen's strokes stay whole, so the box is read as the recogniser
    reads it, but never surer than just below the review threshold: a person or the sheet's total must confirm it.
    A grey stamp, which paints over what it hides, keeps its lower cap."""
    from fixtures.handwriting import render_handwritten
    from formsvc.extract.read import SEAL_BELOW_REVIEW, STAMPED, read_scanned, zone_px
    from formsvc.layout import Box
    from formsvc.zones import Zone

    threshold = get_settings().review_confidence
    cell = render_handwritten("9", (105, 160), np.random.default_rng(4), style="test")
    zone = Zone("scores.ct1", "score", 1, Box(left=10, top=10, width=160 * 25.4 / DPI, height=105 * 25.4 / DPI))
    x0, y0, x1, y1 = zone_px(zone, DPI)
    grey = np.full((500, 500), 255, np.uint8)
    grey[y0:y1, x0:x1] = cv2.resize(cell, (x1 - x0, y1 - y0))
    [plain] = read_scanned([zone], grey, DPI)
    assert plain.text == "9" and plain.confidence >= threshold
    page = seal(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), (10 + 160 * 25.4 / DPI, 10 + 105 * 25.4 / DPI / 2),
                radius_mm=12)
    dropped = drop_colour(page)
    assert dropped.luma is not None
    [sealed] = read_scanned([zone], dropped.image, DPI, dropped.luma)
    assert sealed.text == "9"
    assert sealed.confidence == pytest.approx(threshold - SEAL_BELOW_REVIEW)
    stamped = cv2.cvtColor(page, cv2.COLOR_RGB2GRAY)  # the same seal in a grey scan: a stamp over the box
    [over] = read_scanned([zone], stamped, DPI)
    assert over.confidence <= STAMPED
