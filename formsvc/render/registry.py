"""The form registry, as the renderer knows it: see formsvc/forms.py (kept for existing imports)."""

from formsvc.forms import TEMPLATES_DIR, FormInfo, get_form, list_forms

__all__ = ["TEMPLATES_DIR", "FormInfo", "get_form", "list_forms"]
