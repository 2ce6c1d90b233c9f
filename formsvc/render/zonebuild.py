"""Zone data measured once, where it is made: for every released version of the built-in return-trip forms when
templates are built (`python -m formsvc.templates.build`), and for a criteria set loaded later when it is loaded
(formsvc.service.criteria_imports). Extraction reads the files (formsvc/zonedata.py) and never renders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from formsvc.criteria import CriteriaRegistry, CriteriaSet, default_registry, load_registry
from formsvc.forms import FormInfo, list_forms
from formsvc.render.zones import build_zones, zone_sets
from formsvc.zonedata import is_current, loaded_path, packaged_path


def build_form_zones(form: FormInfo, sets: list[CriteriaSet], path_of: Callable[..., Path],
                     registry: CriteriaRegistry) -> list[Path]:
    written = []
    for version in form.released_versions():
        for cset in sets:
            path = path_of(form, version, cset)
            if path != packaged_path(form, version, cset) and is_current(packaged_path(form, version, cset), form,
                                                                         version, cset):
                continue  # shipped with the package: nothing to measure in the deployment
            if build_zones(form, version, cset, path, registry):
                written.append(path)
    return written


def build_packaged_zones(folder: Path, registry: CriteriaRegistry | None = None) -> list[Path]:
    """Zone data for the forms of `folder` and the built-in criteria sets (committed with the templates)."""
    files = registry or load_registry()
    written: list[Path] = []
    for form in (f for f in list_forms() if f.folder == folder and f.reader == "zones"):
        written += build_form_zones(form, zone_sets(form, files), packaged_path, files)
    return written


def build_loaded_zones(cset: CriteriaSet, registry: CriteriaRegistry | None = None) -> list[Path]:
    """Zone data for a criteria set loaded after the build (an accepted import, a FORMSVC_CRITERIA_DIRS file), in
    the data folder; a set whose data ships with the package is skipped."""
    registry = registry or default_registry()
    cset = registry.get(f"{cset.id}@{cset.version}")  # as extraction will see it (hashes must agree)
    written: list[Path] = []
    for form in list_forms():
        if form.reader == "zones" and form.kind == cset.kind and cset.outcome.type != "levels":
            written += build_form_zones(form, [cset], loaded_path, registry)
    return written
