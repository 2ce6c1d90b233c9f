"""The official-appendix flow behind the admin page and the API: upload -> diff -> accept (stored, used at once)
or reject (nothing changes). Administrators only: a set changes every form and validation of the deployment."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from formsvc.criteria import CriteriaSet, default_registry
from formsvc.criteria.diff import STATUS_LABEL, SetDiff, diff_sets
from formsvc.criteria.importer import import_file
from formsvc.criteria.store import VersionedRegistry, get_store
from formsvc.service.auth import Principal


def diff_view(diff: SetDiff) -> dict[str, Any]:
    return {
        "base": diff.old_ref, "new": diff.new_ref, "structure": diff.structure, "counts": diff.counts,
        "rows": [dataclasses.asdict(r) | {"label": r.label, "status_label": STATUS_LABEL[r.status],
                                          "wording_changed": r.wording_changed, "points_changed": r.points_changed}
                 for r in diff.rows],
    }


def _pending_view(token: str, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    registry = default_registry()
    new = CriteriaSet.model_validate(data | {"file": f"pending:{token}"})
    base = registry.get(meta["base"]) if meta["base"] in registry else registry.get(new.id)
    return {"token": token, "set_id": new.id, "title": new.title, "file_name": meta["file_name"],
            "sha256": data["source"]["sha256"], "reader": meta["reader"], "base_guessed": meta["base_guessed"],
            "staged_by": meta.get("staged_by"), "diff": diff_view(diff_sets(base, new))}


def start_import(who: Principal, path: Path, file_name: str, base_id: str | None) -> dict[str, Any]:
    """Read the file and keep the result waiting for a decision; returns the diff against the current version."""
    who.require("admin")
    registry = default_registry()
    result = import_file(path, registry, base_id=base_id or None, file_name=file_name)
    assert result.base is not None
    meta = {"file_name": file_name, "reader": result.table.reader, "base": f"{result.base.id}@{result.base.version}",
            "base_guessed": result.base_guessed, "staged_by": who.name or who.key_id}
    token = get_store().stage(result.data, meta)
    return _pending_view(token, result.data, meta)


def pending_import(who: Principal, token: str) -> dict[str, Any]:
    who.require("admin")
    item = get_store().pending(token)
    return _pending_view(item.token, item.data, item.meta)


def measure_set(cset: CriteriaSet) -> None:
    """A newly loaded set's zone data, measured once now (LibreOffice), so extraction only reads it."""
    from formsvc.render.zonebuild import build_loaded_zones

    build_loaded_zones(cset, default_registry())


def measure_loaded_sets() -> int:
    """Zone data for every version of every set not shipped with the package (imports, FORMSVC_CRITERIA_DIRS), for
    every released form version, where missing or stale: run after upgrading to a release whose templates changed
    or after adding criteria folders (`formsvc criteria zones`). Returns the number of files written."""
    from formsvc.render.zonebuild import build_loaded_zones

    registry = default_registry()
    written = 0
    for cset in list(registry):
        versions = registry.versions_of(cset.id) if isinstance(registry, VersionedRegistry) else [cset.version]
        for version in versions:
            written += len(build_loaded_zones(registry.get(f"{cset.id}@{version}"), registry))
    return written


def add_set(data: dict[str, Any]) -> CriteriaSet:
    """Store a set as its next version and measure its zones: the one way a set is loaded after the build."""
    cset = get_store().add(data, default_registry())
    measure_set(cset)
    return cset


def accept_import(who: Principal, token: str) -> dict[str, Any]:
    who.require("admin")
    cset = get_store().accept(token, default_registry(), accepted_by=who.name or who.key_id)
    measure_set(cset)
    return {"id": cset.id, "version": cset.version, "ref": f"{cset.id}@{cset.version}", "title": cset.title}


def reject_import(who: Principal, token: str) -> None:
    who.require("admin")
    get_store().discard(token)


def set_versions() -> list[dict[str, Any]]:
    """Every set with its versions, newest first, for the admin page."""
    registry = default_registry()
    out = []
    for cset in registry:
        versions = registry.versions_of(cset.id) if isinstance(registry, VersionedRegistry) else [cset.version]
        rows = []
        for v in sorted(versions, reverse=True):
            one = registry.get(f"{cset.id}@{v}") if v != cset.version else cset
            rows.append({"version": v, "ref": f"{cset.id}@{v}", "current": v == cset.version,
                         "imported_from": one.imported_from.model_dump(mode="json") if one.imported_from else None,
                         "verified": one.fully_verified})
        out.append({"id": cset.id, "title": cset.title, "kind": cset.kind, "document": cset.source.document,
                    "appendix": cset.source.appendix, "versions": rows})
    return out
