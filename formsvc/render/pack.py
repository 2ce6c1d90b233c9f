"""Print packs: one pre-filled form per person of a roster, in one duplex-safe PDF.

LibreOffice runs twice per criteria set, not once per person: a probe rendering (unique tokens in the
personal fields) tells where each field's text goes; a base rendering (those fields empty) is the page
art. Each person's page is the base page with a thin overlay: their name, year, unit, group, the QR
payload and the markers. Text is drawn in the form's own font and shrunk, never clipped, when long.
"""

from __future__ import annotations

import functools
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pdfplumber
import pypdfium2 as pdfium
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    StreamObject,
)
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from formsvc import layout
from formsvc.criteria import CriteriaRegistry, CriteriaSet, default_registry
from formsvc.errors import InputError, LimitError
from formsvc.forms import FormInfo, get_form, packable_forms
from formsvc.payload import new_doc_id
from formsvc.render.api import payloads_for
from formsvc.render.context import build_context
from formsvc.render.converter import get_converter
from formsvc.render.docx import render_docx
from formsvc.render.stamp import A4, draw_marks, new_canvas
from formsvc.roster import Person, RowError, read_roster
from formsvc.settings import get_settings

PACK_CHUNK = 250  # forms built in memory at a time
# Personal fields: context key -> probe token. Tokens are plain ASCII so they never wrap or get shaped.
TOKENS = {"full_name": "QQAQQ", "birth_year": "QQBQQ", "unit": "QQCQQ", "group_label": "QQDQQ",
          "full_name_signature": "QQEQQ"}
CENTRED = {"full_name_signature"}


@dataclass(frozen=True)
class Slot:
    page: int  # 0-based
    x: float  # points: left edge, or centre for centred slots
    baseline: float  # points from the page bottom
    size: float
    bold: bool
    max_width: float
    centred: bool


@dataclass
class Base:
    pdf: bytes
    pages: int
    slots: dict[str, Slot]


@dataclass
class PackReport:
    form: str
    out_path: Path
    forms: int = 0
    pages: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0


def _slots(probe_pdf: bytes) -> dict[str, Slot]:
    slots: dict[str, Slot] = {}
    with pdfplumber.open(io.BytesIO(probe_pdf)) as doc:
        for page_no, page in enumerate(doc.pages):
            for key, token in TOKENS.items():
                for hit in page.search(token, regex=False, return_chars=True):
                    first = hit["chars"][0]
                    centre = (hit["x0"] + hit["x1"]) / 2
                    right_limit = (layout.PAGE_W_MM - layout.MARGIN_RIGHT_MM) * mm - 2
                    slots[key] = Slot(
                        page=page_no, x=centre if key in CENTRED else hit["x0"],
                        baseline=float(first["matrix"][5]), size=float(first["size"]),
                        bold="Bold" in first["fontname"],
                        max_width=75 * mm if key in CENTRED else right_limit - hit["x0"],
                        centred=key in CENTRED,
                    )
    missing = set(TOKENS) - set(slots)
    if missing - {"full_name_signature", "group_label", "birth_year"}:
        raise RuntimeError(f"probe rendering lost fields {sorted(missing)}")
    return slots


def build_base(form: FormInfo, cset: CriteriaSet, year: int | None, issuer: str | None,
               registry: CriteriaRegistry) -> Base:
    data: dict[str, Any] = {"criteria_set": cset.id, "year": year, "issuer": issuer}
    converter = get_converter()
    probe_ctx = build_context(form, data, registry) | TOKENS
    probe = converter.docx_to_pdf(render_docx(form, probe_ctx))
    base_ctx = build_context(form, data, registry) | {k: "" for k in TOKENS}
    base = converter.docx_to_pdf(render_docx(form, base_ctx))
    pages = len(PdfReader(io.BytesIO(base)).pages)
    if pages != len(PdfReader(io.BytesIO(probe)).pages):
        raise RuntimeError("probe and base renderings differ in page count")
    return Base(pdf=base, pages=pages, slots=_slots(probe))


def _draw_text(c: Canvas, slot: Slot, text: str) -> None:
    font = "LiberationSerif-Bold" if slot.bold else "LiberationSerif"
    size = slot.size
    while size > 6 and pdfmetrics.stringWidth(text, font, size) > slot.max_width:
        size -= 0.5
    c.setFont(font, size)
    draw = c.drawCentredString if slot.centred else c.drawString
    draw(slot.x, slot.baseline, text)


def _person_values(person: Person, registry: CriteriaRegistry, form: FormInfo) -> dict[str, str]:
    ctx = build_context(form, {"subject": {"full_name": person.full_name, "birth_year": person.birth_year,
                                           "unit": person.unit, "group": person.group}}, registry)
    return {k: ctx.get(k, "") for k in TOKENS}


def _as_xobject(writer: PdfWriter, page: PageObject) -> IndirectObject:
    form = StreamObject()
    contents = page.get_contents()  # a ContentStream is a dict: test for None, not truthiness
    form.set_data(contents.get_data() if contents is not None else b"")
    form.update({
        NameObject("/Type"): NameObject("/XObject"),
        NameObject("/Subtype"): NameObject("/Form"),
        NameObject("/BBox"): ArrayObject([FloatObject(v) for v in page.mediabox]),
        NameObject("/Resources"): page["/Resources"].clone(writer),
    })
    form = form.flate_encode()
    return writer._add_object(form)


def _draw_under(writer: PdfWriter, page: PageObject, xobject: IndirectObject) -> None:
    resources = page.setdefault(NameObject("/Resources"), DictionaryObject())
    xobjects = resources.setdefault(NameObject("/XObject"), DictionaryObject())
    xobjects[NameObject("/FsvBase")] = xobject
    contents = page.get_contents()
    data = b"q /FsvBase Do Q\n" + (contents.get_data() if contents is not None else b"")
    stream = StreamObject()
    stream.set_data(data)
    page[NameObject("/Contents")] = writer._add_object(stream.flate_encode())


def choose_set(form: FormInfo, person: Person, registry: CriteriaRegistry, forced: str | None) -> CriteriaSet:
    set_id = person.criteria_set or forced
    if set_id:
        return registry.get(set_id)
    default = registry.get(form.default_criteria_set) if form.default_criteria_set else None
    if person.group is None or (default and person.group in default.audience_groups):
        if default is None:
            raise InputError("Không xác định được bộ tiêu chí.", code="criteria_set_required")
        return default
    for cset in registry:
        if cset.kind == form.kind and person.group in cset.audience_groups:
            return cset
    raise InputError(f"Không có bộ tiêu chí cho đối tượng «{person.group}».", code="no_set_for_group")


def _write_chunk(form: FormInfo, plan: list[tuple[Person, CriteriaSet]], bases: dict[str, Base], year: int | None,
                 registry: CriteriaRegistry, out: Path, progress: Callable[[int], None] | None) -> None:
    """One part of a pack: every person's overlay, then each page drawn over its shared base page."""
    overlay_buf = io.BytesIO()
    canvas = new_canvas(overlay_buf)
    layout_pages: list[tuple[str, int]] = []  # (criteria set id, base page index) per output page
    for person, cset in plan:
        base = bases[cset.id]
        values = _person_values(person, registry, form)
        data = {"criteria_set": cset.id, "year": year,
                "subject": {"id": person.id, "full_name": person.full_name, "birth_year": person.birth_year,
                            "group": person.group}}
        payloads = payloads_for(form, data, base.pages, new_doc_id(), registry)
        for page in range(base.pages):
            for key, slot in base.slots.items():
                if slot.page == page and values.get(key):
                    _draw_text(canvas, slot, values[key])
            if form.return_trip:
                draw_marks(canvas, payloads[page])
            canvas.showPage()
            layout_pages.append((cset.id, page))
        if base.pages % 2:
            layout_pages.append((cset.id, -1))  # duplex filler: the next form starts on an odd page
    canvas.save()
    writer = PdfWriter(clone_from=io.BytesIO(overlay_buf.getvalue()))
    del overlay_buf
    # Each base page becomes one Form XObject shared by every copy in the part: the page art is stored once per
    # part and each output page only adds "draw the base, then my overlay".
    used = {set_id for set_id, _ in layout_pages}
    xobjects = {(set_id, n): _as_xobject(writer, page)
                for set_id in used
                for n, page in enumerate(PdfReader(io.BytesIO(bases[set_id].pdf)).pages)}
    k = 0
    done_forms = 0
    for set_id, page in layout_pages:
        if page < 0:
            writer.insert_blank_page(*A4, index=k)
            k += 1
            continue
        _draw_under(writer, writer.pages[k], xobjects[(set_id, page)])
        k += 1
        if page == bases[set_id].pages - 1:
            done_forms += 1
            if progress:
                progress(done_forms)
    with out.open("wb") as fh:
        writer.write(fh)


def _report(progress: Callable[[int, int], None], first: int, total: int, done: int) -> None:
    progress(first + done, total)


def _join(parts: list[Path], out: Path) -> int:
    """The parts, in order, as one PDF written to `out`; returns its page count. PDFium copies pages natively
    (a page's objects, not Python objects per PDF object) and writes straight to the file."""
    joined = pdfium.PdfDocument.new()
    try:
        for part in parts:
            src = pdfium.PdfDocument(str(part))
            try:
                joined.import_pages(src)
            finally:
                src.close()
        pages = len(joined)
        with out.open("wb") as fh:
            joined.save(fh)
    finally:
        joined.close()
    return pages


def require_packable(form: FormInfo) -> None:
    """Only forms the registry marks packable print one copy per person of a roster."""
    if not form.packable:
        names = ", ".join(f.id for f in packable_forms())
        raise InputError(f"Biểu mẫu '{form.id}' không in theo danh sách từng người (chỉ: {names}).",
                         code="form_not_packable")


def print_pack(form_id: str, roster_path: Path, out_path: Path, year: int | None = None,
               progress: Callable[[int, int], None] | None = None, *, criteria_set: str | None = None,
               issuer: str | None = None, registry: CriteriaRegistry | None = None) -> PackReport:
    started = time.perf_counter()
    registry = registry or default_registry()
    form = get_form(form_id)
    require_packable(form)
    roster = read_roster(roster_path)
    report = PackReport(form=form.id, out_path=out_path, errors=list(roster.errors))
    plan: list[tuple[Person, CriteriaSet]] = []
    for person in roster.people:
        try:
            cset = choose_set(form, person, registry, criteria_set)
        except InputError as exc:
            report.errors.append(RowError(person.row, f"Dòng {person.row}: {exc.message}"))
            continue
        if person.group and cset.audience_groups and person.group not in cset.audience_groups:
            report.errors.append(RowError(person.row, f"Dòng {person.row}: đối tượng không phù hợp bộ tiêu chí "
                                                      f"{cset.id}."))
            continue
        plan.append((person, cset))
    report.errors.sort(key=lambda e: e.row)
    if not plan:
        raise InputError("Không có dòng hợp lệ nào trong danh sách để in.", code="roster_no_valid_rows",
                         detail={"errors": [e.message for e in report.errors]})
    limit = get_settings().max_pack_forms
    if len(plan) > limit:
        raise LimitError(f"Danh sách có {len(plan)} người; mỗi lần in hàng loạt tối đa {limit} phiếu.",
                         code="pack_too_large", hint="Chia danh sách thành nhiều tệp nhỏ hơn rồi in từng tệp.")
    bases: dict[str, Base] = {}
    for _, cset in plan:
        if cset.id not in bases:
            bases[cset.id] = build_base(form, cset, year, issuer, registry)
    total = len(plan)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".part")
    # Built PACK_CHUNK forms at a time, each chunk written to disk and then joined by PDFium: memory holds one
    # chunk's Python objects, not the whole pack's (3,000 forms took 740 MB built in one piece).
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".pack-") as work:
        parts: list[Path] = []
        for first in range(0, total, PACK_CHUNK):
            part = Path(work) / f"{first:06d}.pdf"
            _write_chunk(form, plan[first:first + PACK_CHUNK], bases, year, registry, part,
                         functools.partial(_report, progress, first, total) if progress else None)
            parts.append(part)
        report.pages = _join(parts, tmp)
    tmp.replace(out_path)
    report.forms = total
    report.seconds = time.perf_counter() - started
    return report
