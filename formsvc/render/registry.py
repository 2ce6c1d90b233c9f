"""The form registry: which forms exist, their template files and versions (formsvc/templates/registry.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

from formsvc.errors import NotFoundError

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"


@dataclass(frozen=True)
class FormInfo:
    id: str
    title: str
    kind: Literal["cdht", "dvht"]
    template_version: int
    return_trip: bool
    default_criteria_set: str | None
    source: str

    @property
    def template_path(self) -> Path:
        return TEMPLATES_DIR / f"{self.id}.docx"


@lru_cache(maxsize=1)
def list_forms() -> list[FormInfo]:
    data = yaml.safe_load((TEMPLATES_DIR / "registry.yaml").read_text(encoding="utf-8"))
    return [
        FormInfo(id=f["id"], title=f["title"], kind=f["kind"], template_version=int(f["template_version"]),
                 return_trip=bool(f["return_trip"]), default_criteria_set=f.get("default_criteria_set"),
                 source=f.get("source", ""))
        for f in data["forms"]
    ]


def get_form(form_id: str) -> FormInfo:
    for form in list_forms():
        if form.id == form_id:
            return form
    raise NotFoundError(f"Không có biểu mẫu '{form_id}'.", code="form_not_found",
                        hint="Dùng lệnh 'formsvc forms' để xem danh sách biểu mẫu.")
