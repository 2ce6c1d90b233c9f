"""Ruled-table grid detection on a rendered (then rotated, faxed) table."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from docx import Document

from fixtures.scans import degrade, rasterise
from formsvc.extract.table_grid import find_tables
from formsvc.render.converter import get_converter

pytestmark = pytest.mark.slow  # tables rendered and rasterised

ROWS, COLS = 6, 4


@pytest.fixture(scope="module")
def page() -> Iterator[np.ndarray]:
    doc = Document()
    doc.add_paragraph("BẢNG THỬ")
    table = doc.add_table(rows=ROWS, cols=COLS)
    table.style = "Table Grid"
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            cell.text = f"{r}.{c}" if r else "Tiêu đề"
    # A merged cell: the last row's two middle columns are one.
    table.cell(ROWS - 1, 1).merge(table.cell(ROWS - 1, 2))
    buf = io.BytesIO()
    doc.save(buf)
    [image] = rasterise(get_converter().docx_to_pdf(buf.getvalue()), 200)
    yield image
    get_converter().close()


@pytest.mark.parametrize("kind", ["clean", "rotate", "fax", "noise"])
def test_grid_of_a_rendered_table_is_recovered(page: np.ndarray, kind: str) -> None:
    [image] = degrade([page], kind, 11)
    found = find_tables(image, 200)
    [grid] = found.grids
    assert (grid.n_rows, grid.n_cols) == (ROWS, COLS)
    assert len(grid.cells) == ROWS * COLS - 1
    merged = grid.at(ROWS - 1, 1)
    assert merged is not None and merged.cols == 2 and grid.at(ROWS - 1, 2) is merged
    assert abs(found.angle) <= 5
    # Cells tile the table left to right: each interior lies between its own rules.
    for cell in grid.row(1):
        x0, _, x1, _ = cell.box
        assert grid.xs[cell.col] < x0 < x1 < grid.xs[cell.col + cell.cols]


def test_page_without_table_has_no_grid() -> None:
    blank = np.full((2339, 1654), 255, np.uint8)
    blank[300:303, 200:1400] = 0  # an underline is not a table
    assert find_tables(blank, 200).grids == []
