"""Zone geometry as data: measured once when a template is built (`python -m formsvc.templates.build`) or a
criteria set is loaded, stored beside the template with the hashes of what it was measured from, read here.

Extraction only reads these files; it never renders a form or starts LibreOffice. One file per (form, template
version, criteria set version):

- built-in sets: `<forms folder>/zones/<form>@<template version>/<set>@<set version>.json` (committed);
- sets loaded later (imports, FORMSVC_DATA_DIR/criteria): `<data_dir>/zones/<same path>`.

Each file carries the template's content hash and the set's hash; a file whose hashes no longer match what it
claims to describe is refused rather than used (stale geometry reads the wrong boxes without any error).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from formsvc.criteria import CriteriaSet, default_registry
from formsvc.errors import FormsvcError
from formsvc.forms import FormInfo
from formsvc.layout import Box
from formsvc.settings import get_settings
from formsvc.zones import FormZones, Zone

# Bumped when the way zones are measured changes (formsvc/render/zones.py): older files are then rebuilt.
ZONES_VERSION = 4


class ZonesMissing(FormsvcError):
    """No zone data for a form version and criteria set: the data was never built (or is stale)."""

    code = "zones_missing"
    http_status = 409


def template_hash(docx: Path) -> str:
    """Hash of a template's content: every part of the DOCX but its metadata (docProps), so rebuilding an
    unchanged form gives the same hash and any change to what prints gives another."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(docx) as z:
        for name in sorted(z.namelist()):
            if name.startswith("docProps/"):
                continue
            digest.update(name.encode())
            digest.update(hashlib.sha256(z.read(name)).digest())
    return digest.hexdigest()


def set_hash(cset: CriteriaSet) -> str:
    """The set's content: not where its file happens to be (a clone in another folder is the same set)."""
    return hashlib.sha256(cset.model_dump_json(exclude={"file"}).encode()).hexdigest()


def template_file(form: FormInfo, version: int) -> Path:
    """The DOCX of `version`: the released copy, or the current template for the current version."""
    released = form.released_path(version)
    if released.exists() or version != form.template_version:
        return released
    return form.template_path


def relative_path(form: FormInfo, version: int, cset: CriteriaSet) -> Path:
    return Path(f"{form.id}@{version}") / f"{cset.id}@{cset.version}.json"


def packaged_path(form: FormInfo, version: int, cset: CriteriaSet) -> Path:
    return form.folder / "zones" / relative_path(form, version, cset)


def loaded_path(form: FormInfo, version: int, cset: CriteriaSet) -> Path:
    return Path(get_settings().data_dir) / "zones" / relative_path(form, version, cset)


def write_atomic(path: Path, text: str) -> None:
    """Write under a unique temporary name in the same folder, then rename: two processes writing the same file
    each replace it whole, and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_zones(path: Path, zones: FormZones, form: FormInfo, version: int, cset: CriteriaSet) -> None:
    body = {"zones_version": ZONES_VERSION, "template_sha256": template_hash(template_file(form, version)),
            "criteria_sha256": set_hash(cset), **asdict(zones)}
    write_atomic(path, json.dumps(body, ensure_ascii=False, indent=1, sort_keys=True) + "\n")


def _from_json(d: dict[str, Any]) -> FormZones:
    return FormZones(form=d["form"], template_version=d["template_version"], criteria_set=d["criteria_set"],
                     pages=d["pages"], zones=[Zone(z["name"], z["kind"], z["page"], Box(**z["box"]))
                                              for z in d["zones"]])


def is_current(path: Path, form: FormInfo, version: int, cset: CriteriaSet) -> bool:
    """The file exists and was measured from this template content and this set, by this measuring code."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    source = template_file(form, version)
    return bool(d.get("zones_version") == ZONES_VERSION and d.get("criteria_sha256") == set_hash(cset)
                and source.exists() and d.get("template_sha256") == template_hash(source))


_memory: dict[tuple[Path, float], FormZones] = {}
_lock = threading.Lock()


def load_zones(form: FormInfo, version: int, set_ref: str | None) -> FormZones:
    """Zones of `form` at template `version` for the criteria set `set_ref` (None: the form's default set)."""
    ref = set_ref or form.default_criteria_set
    if ref is None:
        raise ZonesMissing(f"Biểu mẫu '{form.id}' không có bộ tiêu chí để định vị các ô.")
    cset = default_registry().get(ref)
    for path in (packaged_path(form, version, cset), loaded_path(form, version, cset)):
        try:
            stamp = path.stat().st_mtime
        except OSError:
            continue
        with _lock:
            hit = _memory.get((path, stamp))
        if hit is not None:
            return hit
        if not is_current(path, form, version, cset):
            continue
        zones = _from_json(json.loads(path.read_text(encoding="utf-8")))
        with _lock:
            _memory[(path, stamp)] = zones
        return zones
    raise ZonesMissing(
        f"Chưa có dữ liệu vị trí ô của biểu mẫu '{form.id}' phiên bản {version} cho bộ tiêu chí "
        f"«{cset.id}» phiên bản {cset.version}; trang chưa đọc được.",
        hint="Dữ liệu này được tạo khi dựng biểu mẫu (python -m formsvc.templates.build) hoặc khi nạp bộ tiêu "
             "chí; hãy báo quản trị viên.")
