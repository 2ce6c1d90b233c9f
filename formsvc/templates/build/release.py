"""Release step of the template build: keep every released template version, and measure zone data.

- Each form's DOCX is kept as `released/ID@VERSION.docx`. A form whose content differs from its released copy
  at the same version is refused: a printed sheet's layout must never change under it (bump template_version).
The zone data of every released version is measured by formsvc.render.zonebuild (LibreOffice), called from
`python -m formsvc.templates.build` after this step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from formsvc.forms import list_forms
from formsvc.zonedata import template_hash


class VersionNotBumped(Exception):
    """A template's content changed but its template_version did not."""


def release_templates(folder: Path) -> list[Path]:
    """Copy each form's current DOCX to released/ (once per version); refuse a changed unbumped template."""
    written: list[Path] = []
    for form in (f for f in list_forms() if f.folder == folder):
        kept = form.released_path(form.template_version)
        if kept.exists():
            if template_hash(kept) != template_hash(form.template_path):
                raise VersionNotBumped(f"{form.id}: the template changed but template_version is still "
                                       f"{form.template_version}; bump it in registry.yaml")
            continue
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(form.template_path, kept)
        written.append(kept)
    return written
