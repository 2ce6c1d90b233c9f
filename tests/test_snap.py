"""Score boxes are put back inside their printed frames when a sheet that does not lie flat moved them; on a bent
page, each column by its row lines together, never into a neighbouring row."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from fixtures.captures import blot
from fixtures.scans import random_record, rasterise
from formsvc import layout
from formsvc.extract.align import align
from formsvc.extract.identify import identify
from formsvc.extract.read import zone_px
from formsvc.extract.snap import BEND_MAX_MM, framed, snapped
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


def _warped(image: np.ndarray, dx_mm: float, dy_mm: float, stretch: float = 0.0) -> np.ndarray:
    """The page as a bent sheet shows it: moved by (dx, dy) mm, and further down by `stretch` mm per 100 mm down
    the page (rows a little taller as they go)."""
    h, w = image.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    px = layout.mm_to_px(1.0, DPI)
    down = dy_mm * px + ys * stretch / 100
    return cv2.remap(image, xs - dx_mm * px, ys - down, cv2.INTER_LINEAR, borderValue=255)


def _framed_moves(image: np.ndarray, zones: list[Zone], bend_mm: float = 8.0
                  ) -> tuple[frozenset[str], dict[str, tuple[float, float]]]:
    placed = framed(zones, image, DPI, bend_mm)
    return placed.boxes, _moves(zones, placed.zones)


def test_a_bent_page_s_boxes_are_placed_by_the_table_s_lines(page: Any) -> None:
    image, zones = page
    # 3.5 mm left and 4 mm down at the top of the page, rows 2 % taller: more than the 5 mm around a box that
    # snapped() looks in, towards the bottom of the column.
    boxes, moves = _framed_moves(_warped(image, -3.5, 4.0, 2.0), zones)
    assert {f"scores.ct{i}" for i in range(1, 9)} <= boxes
    for name, (dx, dy) in moves.items():
        top = next(z.box for z in zones if z.name == name)
        assert dx == pytest.approx(-3.5, abs=0.3)
        assert dy == pytest.approx(4.0 + (top.top + top.height / 2) * 0.02, abs=0.3), name


def test_a_column_a_heading_row_off_is_placed_in_its_own_row(page: Any) -> None:
    """10 mm down: each box's neighbour's cell is nearer than its own, and as whole; the column's lines still fit
    only one way, its own."""
    image, zones = page
    boxes, moves = _framed_moves(_warped(image, 0.0, 10.0), zones)
    assert {f"scores.ct{i}" for i in range(1, 9)} <= boxes
    assert all(m == pytest.approx((0.0, 10.0), abs=0.3) for m in moves.values()), moves


def test_a_column_a_whole_row_off_is_placed_by_nothing(page: Any) -> None:
    """15 mm down, a score row's height: the column's lines seen where the printed ones are, but for its heading
    rows. No box is placed, none may be taken as placed, and none moves a row."""
    image, zones = page
    boxes, moves = _framed_moves(_warped(image, 0.0, 15.0), zones)
    assert not boxes
    assert all(abs(dy) < 6.0 for _, dy in moves.values()), moves


def test_what_cannot_be_placed_surely_is_not(page: Any) -> None:
    image, zones = page
    bent = _warped(image, 0.0, 3.0)
    assert {f"scores.ct{i}" for i in range(1, 9)} <= framed(zones, bent, DPI, 8.0).boxes
    # A page bent more than a curl does (a fold): nothing on it is placed by its lines.
    assert not framed(zones, bent, DPI, BEND_MAX_MM + 1).boxes
    # A row line lost (glare across the column): that column is not placed.
    b = next(z.box for z in zones if z.name == "scores.ct6").top + 3.0 - 0.8  # its top line, moved 3 mm down
    glared = blot(bent, layout.Box(120, b - 1.2, 80, 2.4), shade=255)
    assert not {f"scores.ct{i}" for i in range(1, 9)} & framed(zones, glared, DPI, 8.0).boxes
    # Lines tilted past MAX_TILT (7 degrees): nothing placed.
    h, w = image.shape
    turned = cv2.warpAffine(bent, cv2.getRotationMatrix2D((w / 2, h / 2), 7.0, 1.0), (w, h), borderValue=255)
    assert not framed(zones, turned, DPI, 8.0).boxes


def _edge_ink(crop: np.ndarray, px: int = 3) -> float:
    """Share of the crop's outer `px` rows and columns that is ink."""
    ink = crop < 140
    edges = [ink[:px], ink[-px:], ink[:, :px], ink[:, -px:]]
    return float(np.concatenate([e.ravel() for e in edges]).mean())


def test_a_box_whose_lines_tilt_is_read_levelled(page: Any) -> None:
    """Turned 5 degrees: each box is placed and read from its cell turned level, its lines outside its crop."""
    image, zones = page
    h, w = image.shape
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 5.0, 1.0), (w, h), borderValue=255)
    placed = framed(zones, turned, DPI, 8.0)
    scores = [z for z in placed.zones if z.name.startswith("scores.")]
    assert {z.name for z in scores} <= placed.boxes and len(placed.levels) >= len(scores)
    level = placed.levelled(turned)
    # The cell's lines cross the tilted crops' edges; the levelled crops' edges are clear (a typed number is in the
    # middle).
    crossed = []
    for z in scores:
        x0, y0, x1, y1 = zone_px(z, DPI)
        crossed.append(_edge_ink(turned[y0:y1, x0:x1]) > 0)
        assert _edge_ink(level[y0:y1, x0:x1]) == 0.0, z.name
    assert sum(crossed) >= 6, crossed
    # Pixels away from placed boxes are the page's own.
    assert np.array_equal(level[:300], turned[:300])
