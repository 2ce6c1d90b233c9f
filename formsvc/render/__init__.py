"""Rendering: DOCX templates (docxtpl) -> print-ready PDF (LibreOffice) with return-trip marks."""

from formsvc.render.api import render_document
from formsvc.render.registry import FormInfo, get_form, list_forms

__all__ = ["FormInfo", "get_form", "list_forms", "render_document"]
