"""Fill a DOCX template with docxtpl in a sandboxed, autoescaping Jinja environment."""

from __future__ import annotations

import io
from typing import Any

from docxtpl import DocxTemplate
from jinja2.sandbox import SandboxedEnvironment

from formsvc.render.registry import FormInfo


def jinja_env() -> SandboxedEnvironment:
    # Autoescape makes '<w:p>' and '&' in values print as text instead of breaking the XML;
    # the sandbox keeps any template loaded from outside the package from reaching Python internals.
    return SandboxedEnvironment(autoescape=True)


def render_docx(form: FormInfo, context: dict[str, Any]) -> bytes:
    tpl = DocxTemplate(str(form.template_path))
    tpl.render(context, jinja_env=jinja_env(), autoescape=True)
    buf = io.BytesIO()
    tpl.save(buf)
    return buf.getvalue()


def declared_variables(form: FormInfo) -> set[str]:
    tpl = DocxTemplate(str(form.template_path))
    return set(tpl.get_undeclared_template_variables(jinja_env()))
