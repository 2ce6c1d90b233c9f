"""Score boxes are put back inside their printed frames when a sheet that does not lie flat moved them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fixtures.captures import blot
from fixtures.scans import random_record, rasterise
from formsvc import layout
from formsvc.extract.align import align
from formsvc.extract.identify import identify
from formsvc.extract.read import zone_px
from formsvc.extract.snap import snapped
from formsvc.render import get_form, render_document
from formsvc.zonedata import load_zones
from formsvc.zones import Zone

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]

DPI = 200


@pytest.fixture(scope="module")
def page() -> tuple[np.ndarray, list[Zone]]:
    [first, _] = rasterise(render_document("cdht-self-assessment", random_record(5)), DPI)
    ident = identify(first)
    aligned = align(first, DPI, [], None)
    assert ident is not None and aligned is not None
    zones = load_zones(get_form("cdht-self-assessment"), ident.payload.template_version,
                       ident.payload.criteria_set).on_page(1)
    return aligned.image, zones


def _moves(before: list[Zone], after: list[Zone]) -> dict[str, tuple[float, float]]:
    return {a.name: (b.box.left - a.box.left, b.box.top - a.box.top) for a, b in zip(before, after, strict=True)
            if a.name.startswith("scores.")}


def test_boxes_on_a_flat_page_stay(page: Any) -> None:
    image, zones = page
    moves = _moves(zones, snapped(zones, image, DPI))
    assert len(moves) == 8
    assert set(moves.values()) == {(0.0, 0.0)}  # within a pixel of their cells: left where they are
    # Only score boxes are looked at.
    assert [z for z in snapped(zones, image, DPI) if not z.name.startswith(("scores.", "committee."))] == \
        [z for z in zones if not z.name.startswith(("scores.", "committee."))]


def test_a_box_moved_off_its_frame_is_put_back(page: Any) -> None:
    image, zones = page
    box = next(z for z in zones if z.name == "scores.ct3")
    x0, y0, x1, y1 = zone_px(box, DPI)
    # The cell and its surroundings as a bent sheet shows them: 1.3 mm right and 1.0 mm up of where the plane says.
    dx, dy = round(layout.mm_to_px(1.3, DPI)), -round(layout.mm_to_px(1.0, DPI))
    moved = image.copy()
    pad = 60
    region = image[y0 - pad:y1 + pad, x0 - pad:x1 + pad]
    moved[y0 - pad + dy:y1 + pad + dy, x0 - pad + dx:x1 + pad + dx] = region
    got = _moves(zones, snapped(zones, moved, DPI))["scores.ct3"]
    assert got == pytest.approx((1.3, -1.0), abs=0.2)


def test_a_cell_not_found_whole_leaves_its_box_where_it_was(page: Any) -> None:
    image, zones = page
    box = next(z for z in zones if z.name == "scores.ct4")
    x0, y0, x1, y1 = zone_px(box, DPI)
    moved = image.copy()  # the cell 1 mm lower than the plane says
    dy, pad = round(layout.mm_to_px(1.0, DPI)), 60
    moved[y0 - pad + dy:y1 + pad + dy, x0 - pad:x1 + pad] = image[y0 - pad:y1 + pad, x0 - pad:x1 + pad]
    assert _moves(zones, snapped(zones, moved, DPI))["scores.ct4"] == pytest.approx((0.0, 1.0), abs=0.2)
    # Glare over the cell's bottom line: one line of the pair is missing, so nothing says where the cell is.
    b = box.box
    glared = blot(moved, layout.Box(b.left - 3, b.top + b.height - 0.5 + 1.0, b.width + 6, 2.5), shade=255)
    assert _moves(zones, snapped(zones, glared, DPI))["scores.ct4"] == (0.0, 0.0)
