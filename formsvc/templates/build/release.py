"""Release step of the template build: keep every released template version, and measure zone data.

- Each form's DOCX is kept as `released/ID@VERSION.docx`. A form whose content differs from its released copy
  at the same version is refused: a printed sheet's layout must never change under it (bump template_version).
- For every return-trip form read by zones, every released version and every criteria set it can print with,
  the zone geometry is measured once (LibreOffice) and stored under `zones/` with the hashes it came from.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from formsvc.criteria import CriteriaRegistry, CriteriaSet, default_registry
from formsvc.forms import FormInfo, list_forms
from formsvc.zonedata import loaded_path, packaged_path, template_hash


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


def build_form_zones(form: FormInfo, sets: list[CriteriaSet], path_of: Callable[..., Path],
                     registry: CriteriaRegistry) -> list[Path]:
    from formsvc.render.zones import build_zones

    written = []
    for version in form.released_versions():
        for cset in sets:
            path = path_of(form, version, cset)
            if build_zones(form, version, cset, path, registry):
                written.append(path)
    return written


def build_packaged_zones(folder: Path, registry: CriteriaRegistry | None = None) -> list[Path]:
    """Zone data for the forms of `folder` and the built-in criteria sets (committed with the templates)."""
    from formsvc.criteria import load_registry
    from formsvc.render.zones import zone_sets

    files = registry or load_registry()
    written: list[Path] = []
    for form in (f for f in list_forms() if f.folder == folder and f.reader == "zones"):
        written += build_form_zones(form, zone_sets(form, files), packaged_path, files)
    return written


def build_loaded_zones(cset: CriteriaSet, registry: CriteriaRegistry | None = None) -> list[Path]:
    """Zone data for a criteria set loaded after the build (an accepted import), in the data folder."""
    registry = registry or default_registry()
    written: list[Path] = []
    for form in list_forms():
        if form.reader == "zones" and form.kind == cset.kind and cset.outcome.type != "levels":
            written += build_form_zones(form, [cset], loaded_path, registry)
    return written
