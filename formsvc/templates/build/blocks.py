"""Layout blocks shared by all forms, following Nghị định 30/2020 (A4, margins, national title, signature)."""

from __future__ import annotations

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.table import WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table, _Cell, _Row
from docx.text.paragraph import Paragraph

from formsvc import layout

FONT = "Liberation Serif"
BODY_PT = 13


def new_document() -> DocxDocument:
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(layout.PAGE_W_MM), Mm(layout.PAGE_H_MM)
    section.top_margin, section.bottom_margin = Mm(layout.MARGIN_TOP_MM), Mm(layout.MARGIN_BOTTOM_MM)
    section.left_margin, section.right_margin = Mm(layout.MARGIN_LEFT_MM), Mm(layout.MARGIN_RIGHT_MM)
    section.header_distance = section.footer_distance = Mm(8)
    style = doc.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(BODY_PT)
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.append(fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), FONT)
    pf = style.paragraph_format
    pf.space_before = pf.space_after = Pt(0)
    pf.line_spacing_rule = WD_LINE_SPACING.SINGLE
    return doc


def para(container: DocxDocument | _Cell, text: str = "", *, bold: bool = False, italic: bool = False,
         size: float | None = None, align: str = "left", underline: bool = False,
         space_after: float = 0, space_before: float = 0, keep_with_next: bool = False) -> Paragraph:
    p = container.add_paragraph()
    p.alignment = {"left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER,
                   "right": WD_ALIGN_PARAGRAPH.RIGHT, "justify": WD_ALIGN_PARAGRAPH.JUSTIFY}[align]
    p.paragraph_format.space_after = Pt(space_after)
    p.paragraph_format.space_before = Pt(space_before)
    p.paragraph_format.keep_with_next = keep_with_next
    if text:
        run(p, text, bold=bold, italic=italic, size=size, underline=underline)
    return p


def run(p: Paragraph, text: str, *, bold: bool = False, italic: bool = False, size: float | None = None,
        underline: bool = False) -> None:
    r = p.add_run(text)
    r.bold, r.italic, r.underline = bold, italic, underline
    if size:
        r.font.size = Pt(size)


def cell_text(cell: _Cell, text: str, **kwargs: object) -> Paragraph:
    """Replace a cell's first (empty) paragraph with formatted text."""
    first = cell.paragraphs[0]
    p = para(cell, text, **kwargs)  # type: ignore[arg-type]
    first._element.getparent().remove(first._element)
    return p


def borderless(table: Table) -> None:
    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "nil")
        borders.append(el)
    tbl_pr.append(borders)


def grid(table: Table) -> None:
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER


def widths(table: Table, mm: list[float]) -> None:
    table.autofit = False
    for row in table.rows:
        for cell, w in zip(row.cells, mm, strict=True):
            cell.width = Mm(w)
    grid_el = table._tbl.tblGrid
    for col, w in zip(grid_el.findall(qn("w:gridCol")), mm, strict=True):
        col.set(qn("w:w"), str(int(Mm(w).twips)))


def fixed_row(row: _Row, height_mm: float) -> None:
    """Exact height and no splitting: blank and filled forms keep the same geometry."""
    row.height = Mm(height_mm)
    row.height_rule = WD_ROW_HEIGHT_RULE.EXACTLY
    tr_pr = row._tr.get_or_add_trPr()
    cant = OxmlElement("w:cantSplit")
    tr_pr.append(cant)


def repeat_header(row: _Row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    tr_pr.append(el)


def national_header(doc: DocxDocument, *, issuer_tag: str = "{{ issuer }}",
                    number_tag: str | None = "Số: {{ doc_number }}", dated: bool = True) -> None:
    """Issuing body left, national title and motto right (Nghị định 30/2020)."""
    t = doc.add_table(rows=1, cols=2)
    borderless(t)
    widths(t, [68, 97])
    # Exact height: a long issuing body is clipped rather than pushing the return-trip table down a line.
    fixed_row(t.rows[0], 19)
    left, right = t.rows[0].cells
    cell_text(left, issuer_tag, bold=True, size=12, align="center")
    para(left, "―――――", size=8, align="center")
    if number_tag:
        para(left, number_tag, size=12, align="center")
    cell_text(right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True, size=12, align="center")
    para(right, "Độc lập - Tự do - Hạnh phúc", bold=True, size=13, align="center")
    para(right, "―――――――――――", size=8, align="center")
    if dated:
        para(doc, "{{ place_date }}", italic=True, size=13, align="right", space_before=4, space_after=6)


def title(doc: DocxDocument, text: str, summary: str | None = None) -> None:
    para(doc, text, bold=True, size=14, align="center", space_before=6, keep_with_next=True)
    if summary:
        para(doc, summary, bold=True, size=13, align="center", keep_with_next=True)
    para(doc, "―――――――", size=8, align="center", space_after=6)


def signature(doc: DocxDocument, *, left: tuple[str, str] | None, right: tuple[str, str]) -> None:
    """Two signature columns: (authority line, name tag); the left one is often 'Nơi nhận' or another signer."""
    t = doc.add_table(rows=1, cols=2)
    borderless(t)
    widths(t, [80, 85])
    lcell, rcell = t.rows[0].cells
    for cell, block in ((lcell, left), (rcell, right)):
        if block is None:
            continue
        authority, name = block
        cell_text(cell, authority, bold=True, size=13, align="center", space_before=6)
        para(cell, "(Ký, ghi rõ họ tên)", italic=True, size=12, align="center")
        for _ in range(4):
            para(cell, "", size=13)
        para(cell, name, bold=True, size=13, align="center")


def noi_nhan(doc: DocxDocument, lines_tag: str = "{% for r in recipients %}") -> None:
    p = para(doc, "", space_before=6)
    run(p, "Nơi nhận:", bold=True, italic=True, size=12)
    para(doc, "{%p for r in recipients %}", size=11)
    para(doc, "- {{ r }};", size=11)
    para(doc, "{%p endfor %}", size=11)


def loop_row(table: Table, tag: str) -> None:
    """A row holding only a {%tr ... %} tag: docxtpl replaces the whole row with the loop."""
    row = table.add_row()
    cell_text(row.cells[0], tag, size=8)
