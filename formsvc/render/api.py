"""Public rendering API: one form as DOCX or print-ready PDF (with return-trip marks where the form has them)."""

from __future__ import annotations

import io
import re
from typing import Any, Literal

from pypdf import PdfReader

from formsvc.criteria import CriteriaRegistry, default_registry, resolve_group
from formsvc.criteria.store import print_ref
from formsvc.errors import InputError
from formsvc.payload import PagePayload, name_check, new_doc_id, year_check
from formsvc.render.context import build_context
from formsvc.render.converter import get_converter
from formsvc.render.docx import render_docx
from formsvc.render.registry import FormInfo, get_form
from formsvc.render.stamp import stamp_pages, within_first_code

_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def payloads_for(form: FormInfo, data: dict[str, Any] | None, pages: int, doc_id: str | None = None,
                 registry: CriteriaRegistry | None = None) -> list[PagePayload]:
    data = data or {}
    subject = data.get("subject") or {}
    subject_id = subject.get("id")
    if subject_id is not None:
        subject_id = str(subject_id)
        if not _ID.match(subject_id):
            raise InputError("Mã người/đơn vị (subject.id) chỉ được gồm chữ không dấu, số, '.', '_' hoặc '-'.",
                             code="bad_subject_id")
    year = data.get("year")
    doc = doc_id or new_doc_id()
    cset = data.get("criteria_set") or form.default_criteria_set
    if cset:
        cset = print_ref(registry or default_registry(), cset)
    # The checks of the name, birth year and group printed let them be confirmed when read back without the roster.
    check = name_check(str(subject["full_name"])) if subject.get("full_name") else None
    born = subject.get("birth_year")
    born_check = year_check(int(born)) if isinstance(born, int) or (isinstance(born, str) and born.isdigit()) \
        else None
    group = resolve_group(str(subject["group"])) if subject.get("group") else None
    return [within_first_code(PagePayload(
        form=form.id, template_version=form.template_version, criteria_set=cset, subject_id=subject_id,
        year=int(year) if year else None, page=n, pages=pages, doc=doc, name_check=check, year_check=born_check,
        group_check=group.number if group and 1 <= group.number <= 9 else None))
            for n in range(1, pages + 1)]


def render_both(form_id: str, data: dict[str, Any] | None, *, registry: CriteriaRegistry | None = None
                ) -> tuple[bytes, bytes]:
    """(DOCX, PDF) of one form from one template fill: the editable file and the print file agree exactly."""
    form = get_form(form_id)
    docx = render_docx(form, build_context(form, data, registry or default_registry()))
    pdf = get_converter().docx_to_pdf(docx)
    if form.return_trip:
        pdf = stamp_pages(pdf, payloads_for(form, data, page_count(pdf)))
    return docx, pdf


def render_document(form_id: str, data: dict[str, Any] | None, fmt: Literal["pdf", "docx"] = "pdf", *,
                    registry: CriteriaRegistry | None = None) -> bytes:
    """Render one form; `data` is record-shaped (subject, year, scores, …) plus form fields; None = blank."""
    if fmt not in ("pdf", "docx"):
        raise InputError(f"Định dạng «{fmt}» không được hỗ trợ (chỉ pdf hoặc docx).", code="bad_format")
    form = get_form(form_id)
    context = build_context(form, data, registry or default_registry())
    docx = render_docx(form, context)
    if fmt == "docx":
        return docx
    pdf = get_converter().docx_to_pdf(docx)
    if form.return_trip:
        pdf = stamp_pages(pdf, payloads_for(form, data, page_count(pdf), registry=registry))
    return pdf
