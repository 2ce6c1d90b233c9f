"""Page geometry shared by the renderer (which prints it) and the extractor (which relies on it).

All forms are A4 portrait (Nghị định 30/2020: margins top 20–25, bottom 20–25, left 30–35,
right 15–20 mm). Machine-readable marks live in the margins, outside the text area:
- four ArUco markers (cv2.aruco DICT_4X4_50), ids 0 top-left, 1 top-right, 2 bottom-right,
  3 bottom-left; the ids make orientation unambiguous, so an upside-down page is recognised;
- one QR code with the page payload (formsvc.payload) in the bottom margin, a second one (same payload) in the
  top margin at the top right, and a printed id line (the payload in an OCR font, with check digits) in the
  bottom margin: one stain, stamp, staple or fold never takes all three.
Coordinates are millimetres from the top-left corner of the page.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_W_MM = 210.0
PAGE_H_MM = 297.0
MARGIN_TOP_MM = 20.0
MARGIN_BOTTOM_MM = 25.0
MARGIN_LEFT_MM = 30.0
MARGIN_RIGHT_MM = 15.0

MARKER_DICT = "DICT_4X4_50"
MARKER_SIZE_MM = 9.0
MARKER_INSET_MM = 6.0  # distance from the page edge to the marker's outer edge

QR_SIZE_MM = 17.0
QR_LEFT_MM = PAGE_W_MM - MARGIN_RIGHT_MM - QR_SIZE_MM - 16.0
QR_TOP_MM = PAGE_H_MM - MARGIN_BOTTOM_MM + 4.0

# Second code: top right, left of marker 1, above the text area (which starts at MARGIN_TOP_MM): diagonal from a
# staple (top left) and far from the primary code; ECC L to keep its modules as large as the primary's in a
# smaller square. Printers leave ~4 mm unprinted. Kept clear of the text area's left edge, where the table
# finder would snap the code's squares to a table's border.
QR2_SIZE_MM = 14.0
QR2_LEFT_MM = PAGE_W_MM - MARKER_INSET_MM - MARKER_SIZE_MM - 1.5 - QR2_SIZE_MM
QR2_TOP_MM = 4.8

# Printed id line: bottom margin, left of the primary code, in a monospace font at ID_LINE_PT.
ID_LINE_PT = 8.0
ID_LINE_LEFT_MM = MARKER_INSET_MM + MARKER_SIZE_MM + 3.0
ID_LINE_BASELINE_MM = PAGE_H_MM - 9.0
ID_LINE_HEIGHT_MM = 5.0

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    width: float
    height: float

    def to_px(self, dpi: float) -> tuple[int, int, int, int]:
        s = dpi / MM_PER_INCH
        return (round(self.left * s), round(self.top * s),
                round((self.left + self.width) * s), round((self.top + self.height) * s))


def marker_boxes() -> dict[int, Box]:
    """Marker id -> its square on the page."""
    m, s = MARKER_INSET_MM, MARKER_SIZE_MM
    return {
        0: Box(m, m, s, s),
        1: Box(PAGE_W_MM - m - s, m, s, s),
        2: Box(PAGE_W_MM - m - s, PAGE_H_MM - m - s, s, s),
        3: Box(m, PAGE_H_MM - m - s, s, s),
    }


def qr_box() -> Box:
    return Box(QR_LEFT_MM, QR_TOP_MM, QR_SIZE_MM, QR_SIZE_MM)


def qr2_box() -> Box:
    return Box(QR2_LEFT_MM, QR2_TOP_MM, QR2_SIZE_MM, QR2_SIZE_MM)


def id_line_box() -> Box:
    """Where the id line is searched: its line with room for a little misregistration."""
    top = ID_LINE_BASELINE_MM - ID_LINE_HEIGHT_MM + 0.5
    return Box(ID_LINE_LEFT_MM - 2.0, top - 1.0, QR_LEFT_MM - ID_LINE_LEFT_MM + 1.0, ID_LINE_HEIGHT_MM + 2.5)


def mm_to_px(mm: float, dpi: float) -> float:
    return mm * dpi / MM_PER_INCH
