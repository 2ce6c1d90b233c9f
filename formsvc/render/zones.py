"""Measure where machine-read fields sit on a form, from the form's own rendered blank PDF (a build step).

The indicator table's cells come from pdfplumber's table finder; rows are matched to indicators by the
number printed in the first column. The results are stored as data beside the template (formsvc/zonedata.py),
with the template's and the set's hashes, when templates are built or a criteria set is loaded; extraction
reads that data and never renders.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pdfplumber

from formsvc.criteria import CriteriaRegistry, CriteriaSet, default_registry
from formsvc.forms import FormInfo, get_form
from formsvc.layout import MARGIN_BOTTOM_MM, MARGIN_TOP_MM, Box
from formsvc.zonedata import ZONES_VERSION, is_current, load_zones, save_zones, template_file
from formsvc.zones import FormZones, Zone

PT_TO_MM = 25.4 / 72
SCORE_COL, EVIDENCE_COL, COMMITTEE_COL = 3, 4, 5
BOX_INSET_MM = 0.8
# A score zone is at most this tall, centred in its cell. ĐVHT rows grow with long indicator titles (up to 27 mm),
# but a score is one short line either way: printed values sit centred in the cell, handwriting is written across
# its middle, and the digit reader judges "blank" by the share of inked area, so a small typed "7" in a 25 mm box
# read as blank. Ink reaching past the zone's edge is flagged by the reader, never silently cut.
SCORE_MAX_H_MM = 14.0
# ZONES_VERSION (formsvc/zonedata.py) is written into every zone file: bump it when the measuring below changes.
__all__ = ["ZONES_VERSION", "build_zones", "form_zones", "measure_zones", "zones_from_pdf"]
TEXT_LABELS = {"Họ và tên:": "subject.full_name", "Năm sinh:": "subject.birth_year", "Đơn vị:": "subject.unit",
               "Đối tượng:": "subject.group",
               "Tên đơn vị:": "subject.full_name", "Đơn vị được kiểm tra:": "subject.full_name"}
SIGNATURE_TITLES = ("NGƯỜI TỰ ĐÁNH GIÁ", "THỦ TRƯỞNG ĐƠN VỊ")



def _box(bbox: tuple[float, float, float, float], inset: float = 0.0) -> Box:
    x0, top, x1, bottom = bbox
    return Box(left=x0 * PT_TO_MM + inset, top=top * PT_TO_MM + inset,
               width=(x1 - x0) * PT_TO_MM - 2 * inset, height=(bottom - top) * PT_TO_MM - 2 * inset)


def _score_box(bbox: tuple[float, float, float, float]) -> Box:
    box = _box(bbox, inset=BOX_INSET_MM)
    if box.height <= SCORE_MAX_H_MM:
        return box
    return Box(left=box.left, top=box.top + (box.height - SCORE_MAX_H_MM) / 2, width=box.width,
               height=SCORE_MAX_H_MM)


def _cell_text(page: Any, bbox: tuple[float, float, float, float] | None) -> str:
    if bbox is None:
        return ""
    x0, top, x1, bottom = bbox

    def centred(obj: dict[str, Any]) -> bool:
        # Glyph boxes overhang cell borders; a character belongs to the cell its centre is in.
        if obj.get("object_type") != "char":
            return False
        cx, cy = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return bool(x0 <= cx <= x1 and top <= cy <= bottom)

    return (page.filter(centred).extract_text() or "").strip()


def _table_zones(page: Any, page_no: int, number_to_id: dict[int, str]) -> list[Zone]:
    zones: list[Zone] = []
    # Only the text area's height: the codes and markers in the top and bottom margins are grids of squares that
    # the table finder would snap onto a table's column edges (it snaps by x alone).
    top, bottom = (MARGIN_TOP_MM - 0.5) / PT_TO_MM, page.height - (MARGIN_BOTTOM_MM - 0.5) / PT_TO_MM
    area = page.crop((0, top, page.width, bottom))
    for table in area.find_tables():
        for row in table.rows:
            cells = row.cells
            if len(cells) < 6 or any(c is None for c in (cells[0], cells[SCORE_COL])):
                continue
            first = _cell_text(page, cells[0])
            label = _cell_text(page, cells[1]) if cells[1] else ""
            if first.isdigit() and int(first) in number_to_id:
                ind = number_to_id[int(first)]
                zones.append(Zone(f"scores.{ind}", "score", page_no, _score_box(cells[SCORE_COL])))
                if cells[EVIDENCE_COL]:
                    zones.append(Zone(f"evidence.{ind}", "text", page_no, _box(cells[EVIDENCE_COL], inset=0.5)))
                if cells[COMMITTEE_COL]:
                    zones.append(Zone(f"committee.{ind}", "score", page_no, _score_box(cells[COMMITTEE_COL])))
            elif label.startswith("TỔNG ĐIỂM"):
                zones.append(Zone("total_declared", "score", page_no, _score_box(cells[SCORE_COL])))
                if len(cells) > COMMITTEE_COL and cells[COMMITTEE_COL]:
                    zones.append(Zone("committee_total", "score", page_no, _score_box(cells[COMMITTEE_COL])))
    return zones


def _text_zones(page: Any, page_no: int) -> list[Zone]:
    zones: list[Zone] = []
    lines = page.extract_text_lines(return_chars=False)
    right = page.width - 15 / PT_TO_MM
    for line in lines:
        text = line["text"]
        for label, name in TEXT_LABELS.items():
            if text.startswith(label):
                # The value follows the label on the same line; find where the label's words end.
                words = [w for w in page.crop((line["x0"], line["top"] - 1, line["x1"], line["bottom"] + 1))
                         .extract_words() if w["top"] >= line["top"] - 1]
                n_label = len(label.split())
                start = words[n_label - 1]["x1"] + 2 if len(words) >= n_label else line["x0"]
                zones.append(Zone(name, "text", page_no, _box((start, line["top"] - 2, right, line["bottom"] + 2))))
    # The signature goes in the space under the signer's title ("NGƯỜI TỰ ĐÁNH GIÁ", "THỦ TRƯỞNG ĐƠN VỊ").
    for title in SIGNATURE_TITLES:
        for hit in page.search(title):
            zones.append(Zone("signature.self", "signature", page_no,
                              _box((hit["x0"] - 20, hit["bottom"] + 14, hit["x1"] + 20, hit["bottom"] + 80))))
    return zones


def zones_from_pdf(pdf: bytes, form_id: str, criteria_set_id: str | None, *,
                   registry: CriteriaRegistry | None = None, template_version: int | None = None) -> FormZones:
    form = get_form(form_id)
    number_to_id: dict[int, str] = {}
    if criteria_set_id:
        number_to_id = {i.number: i.id for i in (registry or default_registry()).get(criteria_set_id).indicators}
    zones: list[Zone] = []
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        for page_no, page in enumerate(doc.pages, start=1):
            zones.extend(_table_zones(page, page_no, number_to_id))
            zones.extend(_text_zones(page, page_no))
        pages = len(doc.pages)
    unique = list({(z.name, z.page): z for z in zones}.values())
    version = form.template_version if template_version is None else template_version
    return FormZones(form=form.id, template_version=version, criteria_set=criteria_set_id,
                     pages=pages, zones=unique)


def form_at(form: FormInfo, version: int) -> FormInfo:
    """`form` as it was released at template `version` (its kept DOCX)."""
    return replace(form, template_version=version, docx=template_file(form, version))


def measure_zones(form: FormInfo, version: int, cset: CriteriaSet,
                  registry: CriteriaRegistry | None = None) -> FormZones:
    """Render the blank form (LibreOffice) at `version` for `cset` and measure its zones: a build step, never
    run by extraction."""
    from formsvc.render.api import page_count, payloads_for
    from formsvc.render.context import build_context
    from formsvc.render.converter import get_converter
    from formsvc.render.docx import render_docx
    from formsvc.render.stamp import stamp_pages

    registry = registry or default_registry()
    ref = f"{cset.id}@{cset.version}" if cset.id in registry and f"{cset.id}@{cset.version}" in registry \
        else cset.id
    at = form_at(form, version)
    data = {"criteria_set": ref}
    pdf = get_converter().docx_to_pdf(render_docx(at, build_context(at, data, registry)))
    pdf = stamp_pages(pdf, payloads_for(at, data, page_count(pdf), registry=registry))
    return zones_from_pdf(pdf, form.id, ref, registry=registry, template_version=version)


def zone_sets(form: FormInfo, registry: CriteriaRegistry) -> list[CriteriaSet]:
    """The criteria sets a zones-read form can be printed with: points sets of its own kind."""
    return [c for c in registry if c.kind == form.kind and c.outcome.type != "levels"]


def build_zones(form: FormInfo, version: int, cset: CriteriaSet, path: Path,
                registry: CriteriaRegistry | None = None) -> bool:
    """Measure and store one zone file unless an up-to-date one is there; True when written."""
    if is_current(path, form, version, cset):
        return False
    save_zones(path, measure_zones(form, version, cset, registry), form, version, cset)
    return True


def form_zones(form_id: str, criteria_set_id: str | None) -> FormZones:
    """Zones of a form's current version for a criteria set, as extraction reads them (stored data)."""
    form = get_form(form_id)
    return load_zones(form, form.template_version, criteria_set_id)
