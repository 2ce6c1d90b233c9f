"""Render a planned dossier (formsvc.reports.dossier) as DOCX (to edit) and PDF (to print), into a folder or a ZIP.

The cover sheet is not a registered form (nothing comes back from it): its template is built here with the
same layout blocks as the forms and filled by the same sandboxed docxtpl, so names print literally.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docx.shared import Pt
from docxtpl import DocxTemplate

from formsvc.criteria import CriteriaRegistry, default_registry
from formsvc.render.api import render_both
from formsvc.render.context import SHORT_DOTS, place_date
from formsvc.render.converter import get_converter
from formsvc.render.docx import jinja_env
from formsvc.reports.dossier import (
    DossierPlan,
    Person,
    decision_data,
    dvht_data,
    minutes_data,
    progress_data,
    report_data,
)
from formsvc.validation.messages import num

# (file stem, form id, title on the cover, data builder); the order is the dossier's order.
DOCUMENTS: list[tuple[str, str, str, Callable[[DossierPlan, dict[str, Any]], dict[str, Any]]]] = [
    ("01-bien-ban-hop-xet", "cdht-minutes", "Biên bản họp xét (dự thảo, in kèm mã QR)", minutes_data),
    ("02-quyet-dinh-cong-nhan", "cdht-decision", "Quyết định công nhận kèm danh sách", decision_data),
    ("03-bao-cao-ket-qua", "cdht-unit-report", "Báo cáo kết quả đánh giá, công nhận", report_data),
    ("04-bao-cao-tien-do-dang-ky", "cdht-registration-progress", "Báo cáo tiến độ đăng ký", progress_data),
]
DVHT_DOCUMENT = ("05-dvht-tu-danh-gia", "dvht-self-assessment",
                 "Bản tự đánh giá “Đơn vị học tập” (điền sẵn tỷ lệ CDHT)")
COVER_STEM = "00-bia-ho-so"


@dataclass
class DossierFiles:
    """What was written: file name -> bytes, in dossier order, plus a manifest of who is where."""

    files: dict[str, bytes] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def write_dir(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, content in self.files.items():
            path = folder / name
            path.write_bytes(content)
            out.append(path)
        return out

    def zip_bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, content in self.files.items():
                zf.writestr(name, content)
        return buf.getvalue()


# -- cover sheet ---------------------------------------------------------------------------------------------

def _cover_template() -> bytes:
    from formsvc.templates.build.blocks import grid, loop_row, national_header, new_document, para, title, widths
    from formsvc.templates.build.forms import _data_row, _header_row

    doc = new_document()
    national_header(doc, number_tag=None)
    title(doc, "HỒ SƠ ĐÁNH GIÁ, CÔNG NHẬN", "Danh hiệu “Công dân học tập” năm {{ year }}")
    para(doc, "Đơn vị: {{ unit }}", space_after=4)
    para(doc, "Thành phần hồ sơ:", bold=True)
    para(doc, "{%p for d in documents %}")
    para(doc, "{{ d.n }}. {{ d.title }} (tệp {{ d.stem }}.docx và .pdf)")
    para(doc, "{%p endfor %}")
    para(doc, "Số liệu:", bold=True, space_before=6)
    para(doc, "Đã duyệt: {{ reviewed }} người (đề nghị công nhận: {{ recognised }}; chưa đạt: {{ not_recognised }}).")
    para(doc, "Chưa duyệt: {{ pending }} người.", bold=True)
    para(doc, "{{ other_note }}")
    para(doc, "{%p for s in sections %}")
    para(doc, "{{ s.heading }}", bold=True, space_before=6, space_after=2)
    t = doc.add_table(rows=1, cols=5)
    grid(t)
    _header_row(t, ["STT", "Họ và tên", "Năm sinh", "Trạng thái", "Mã bản ghi"], 10)
    loop_row(t, "{%tr for p in s.people %}")
    _data_row(t, ["{{ p.n }}", "{{ p.full_name }}", "{{ p.birth_year }}", "{{ p.status }}", "{{ p.record_id }}"], 8)
    # The record id is what a clerk searches for: one line, small enough never to wrap.
    for paragraph in t.rows[-1].cells[4].paragraphs:
        for r in paragraph.runs:
            r.font.size = Pt(9)
    loop_row(t, "{%tr endfor %}")
    widths(t, [13, 49, 16, 25, 62])
    para(doc, "{{ s.note }}", italic=True, size=12, space_before=2)
    para(doc, "{%p endfor %}")
    para(doc, "Người lập: ……………………………………", align="right", space_before=8)
    body = doc.element.body
    first = body[0]
    if first.tag.endswith("}p") and not "".join(first.itertext()).strip():
        body.remove(first)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _people_rows(people: list[Person]) -> list[dict[str, str]]:
    return [{"n": str(n), "full_name": p.full_name, "birth_year": str(p.birth_year or ""),
             "status": p.status_label, "record_id": p.record_id}
            for n, p in enumerate(people, start=1)]


def cover_context(plan: DossierPlan, documents: list[tuple[str, str]], options: dict[str, Any]) -> dict[str, Any]:
    sections = [{"heading": f"Chưa duyệt: {len(plan.pending)} người", "people": _people_rows(plan.pending),
                 "note": "Những người này chưa có trong biên bản, quyết định và báo cáo; duyệt bản ghi rồi lập lại "
                         "hồ sơ."}] if plan.pending else []
    if plan.excluded:
        sections.append({"heading": f"Loại khỏi hồ sơ theo yêu cầu: {len(plan.excluded)} bản ghi",
                         "people": _people_rows(plan.excluded), "note": "Không được tính ở bất kỳ văn bản nào."})
    if plan.other_set:
        sections.append({"heading": f"Bộ tiêu chí khác ({plan.criteria_set} được chọn): {len(plan.other_set)} "
                                    "bản ghi", "people": _people_rows(plan.other_set),
                         "note": "Lập hồ sơ riêng cho bộ tiêu chí của những người này."})
    other = len(plan.excluded) + len(plan.other_set)
    return {
        "issuer": (options.get("issuer") or plan.unit).upper(), "unit": plan.unit, "year": str(plan.year),
        "place_date": place_date(options.get("place"), options.get("date"), plan.year),
        "documents": [{"n": str(n), "stem": stem, "title": title} for n, (stem, title) in enumerate(documents, 1)],
        "reviewed": str(len(plan.reviewed)), "recognised": str(len(plan.recognised)),
        "not_recognised": str(len(plan.reviewed) - len(plan.recognised)), "pending": str(len(plan.pending)),
        "other_note": (f"Không đưa vào hồ sơ: {other} bản ghi (xem danh sách bên dưới)." if other
                       else "Không có bản ghi nào bị loại khỏi hồ sơ."),
        "sections": sections,
        "dots": SHORT_DOTS,
    }


def render_cover(plan: DossierPlan, documents: list[tuple[str, str]], options: dict[str, Any]) -> bytes:
    tpl = DocxTemplate(io.BytesIO(_cover_template()))
    tpl.render(cover_context(plan, documents, options), jinja_env=jinja_env(), autoescape=True)
    buf = io.BytesIO()
    tpl.save(buf)
    return buf.getvalue()


# -- the whole dossier ---------------------------------------------------------------------------------------

def _manifest(plan: DossierPlan) -> dict[str, Any]:
    def ids(people: list[Person]) -> list[dict[str, Any]]:
        return [{"record_id": p.record_id, "full_name": p.full_name, "birth_year": p.birth_year,
                 "agreed_total": p.agreed_total} for p in people]

    return {"unit": plan.unit, "year": plan.year, "criteria_set": plan.criteria_set,
            "reviewed": ids(plan.reviewed), "recognised": ids(plan.recognised), "pending": ids(plan.pending),
            "excluded": ids(plan.excluded), "other_criteria_set": ids(plan.other_set),
            "share_recognised": (f"{num(len(plan.recognised) * 100 / plan.assessed)}" if plan.assessed else None)}


def render_dossier(plan: DossierPlan, options: dict[str, Any] | None = None, *,
                   registry: CriteriaRegistry | None = None,
                   progress: Callable[[int, int], None] | None = None) -> DossierFiles:
    """Every document as DOCX and PDF, the cover first, and `dossier.json` (who is in which list)."""
    started = time.perf_counter()
    options = options or {}
    registry = registry or default_registry()
    jobs: list[tuple[str, str, dict[str, Any]]] = [
        (stem, form_id, build(plan, options)) for stem, form_id, _, build in DOCUMENTS]
    titles = [(stem, title) for stem, _, title, _ in DOCUMENTS]
    if options.get("dvht", True):
        stem, form_id, title = DVHT_DOCUMENT
        jobs.append((stem, form_id, dvht_data(plan, options, registry)))
        titles.append((stem, title))
    out = DossierFiles(manifest=_manifest(plan))
    total = len(jobs) + 1
    cover = render_cover(plan, titles, options)
    out.files[f"{COVER_STEM}.docx"] = cover
    out.files[f"{COVER_STEM}.pdf"] = get_converter().docx_to_pdf(cover)
    if progress:
        progress(1, total)
    for n, (stem, form_id, data) in enumerate(jobs, start=2):
        out.files[f"{stem}.docx"], out.files[f"{stem}.pdf"] = render_both(form_id, data, registry=registry)
        if progress:
            progress(n, total)
    out.files["dossier.json"] = json.dumps(out.manifest, ensure_ascii=False, indent=2).encode()
    out.seconds = time.perf_counter() - started
    return out
