"""The form registry: what each form is, read from formsvc/templates/registry.yaml (plus any folders named in
FORMSVC_FORMS_DIRS, each with its own registry.yaml and templates).

Everything that behaves differently per form asks the registry, never the form's id: how its scans are read
(`reader`), what kind of document it is (`document`), whether a print pack prints it per person (`packable`),
whether its scores are the inspection team's column (`team_scored`). Adding a form is a template plus an entry.
Every released template version keeps its DOCX under `released/ID@VERSION.docx`, so a sheet printed before a
template change still has its layout (see formsvc/zonedata.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from formsvc.errors import NotFoundError

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# How scans of a return-trip form are read: fixed zones measured on the blank form, or the rules of a table that
# grows with its content (read like its typed counterpart).
Reader = Literal["zones", "table", "none"]
READERS: tuple[str, ...] = ("zones", "table", "none")
# What a document is, for the rules that pair documents (minutes are checked against self-assessments).
DOCUMENT_KINDS: tuple[str, ...] = ("self_assessment", "minutes", "inspection_minutes", "list", "report",
                                   "decision", "registration", "checklist")


@dataclass(frozen=True)
class FormInfo:
    id: str
    title: str
    kind: Literal["cdht", "dvht"]
    template_version: int
    return_trip: bool
    default_criteria_set: str | None
    source: str
    reader: Reader = "none"
    document: str = "report"
    packable: bool = False
    team_scored: bool = False
    context: tuple[str, ...] = ()
    folder: Path = field(default=TEMPLATES_DIR, compare=False)
    docx: Path | None = field(default=None, compare=False)  # an older released version's DOCX (formsvc.render.zones)

    @property
    def template_path(self) -> Path:
        return self.docx or self.folder / f"{self.id}.docx"

    def released_path(self, version: int) -> Path:
        """The DOCX this form was printed from at `version` (kept for ever once released)."""
        return self.folder / "released" / f"{self.id}@{version}.docx"

    def released_versions(self) -> list[int]:
        found = {int(p.stem.rsplit("@", 1)[1]) for p in (self.folder / "released").glob(f"{self.id}@*.docx")
                 if p.stem.rsplit("@", 1)[1].isdigit()}
        return sorted(found | {self.template_version})


def _entry(f: dict[str, Any], folder: Path) -> FormInfo:
    reader = str(f.get("reader", "none"))
    document = str(f.get("document", "report"))
    if reader not in READERS or document not in DOCUMENT_KINDS:
        raise ValueError(f"registry.yaml: form {f.get('id')}: reader {reader!r} / document {document!r} unknown")
    return FormInfo(id=str(f["id"]), title=str(f["title"]), kind=f["kind"], template_version=int(f["template_version"]),
                    return_trip=bool(f["return_trip"]), default_criteria_set=f.get("default_criteria_set"),
                    source=str(f.get("source", "")), reader=reader,  # type: ignore[arg-type]
                    document=document, packable=bool(f.get("packable", False)),
                    team_scored=bool(f.get("team_scored", False)),
                    context=tuple(str(c) for c in f.get("context") or ()), folder=folder)


@lru_cache(maxsize=4)
def _load(folders: tuple[Path, ...]) -> list[FormInfo]:
    forms: dict[str, FormInfo] = {}
    for folder in folders:
        data = yaml.safe_load((folder / "registry.yaml").read_text(encoding="utf-8"))
        for f in data["forms"]:
            forms[str(f["id"])] = _entry(f, folder)
    return list(forms.values())


def list_forms() -> list[FormInfo]:
    from formsvc.settings import get_settings

    return _load((TEMPLATES_DIR, *get_settings().forms_dirs))


def find_form(form_id: str) -> FormInfo | None:
    return next((f for f in list_forms() if f.id == form_id), None)


def get_form(form_id: str) -> FormInfo:
    form = find_form(form_id)
    if form is None:
        raise NotFoundError(f"Không có biểu mẫu '{form_id}'.", code="form_not_found",
                            hint="Dùng lệnh 'formsvc forms' để xem danh sách biểu mẫu.")
    return form


def document_kind(form_id: str) -> str:
    """The document kind of a form id; a form no longer (or never) in the registry is 'other'."""
    form = find_form(form_id)
    return form.document if form else "other"


def forms_of_document(kind: str) -> list[str]:
    return [f.id for f in list_forms() if f.document == kind]


def packable_forms() -> list[FormInfo]:
    return [f for f in list_forms() if f.packable]


def self_assessment_forms(kind: str) -> list[str]:
    """Ids of the self-assessment forms of a criteria kind (cdht / dvht): what reports and dossiers count."""
    return [f.id for f in list_forms() if f.document == "self_assessment" and f.kind == kind]


def is_self_assessment(form_id: str, kind: str) -> bool:
    form = find_form(form_id)
    return form is not None and form.document == "self_assessment" and form.kind == kind
