"""Small builders for records used across tests."""

from __future__ import annotations

from typing import Any

from formsvc.criteria import CriteriaSet
from formsvc.records import Record


def full_record(cset: CriteriaSet, score: float = 8, *, group: str | None = "official",
                year: int = 2024, **overrides: Any) -> Record:
    """A record scoring `score` on every indicator, with evidence for each."""
    data: dict[str, Any] = {
        "form": "cdht-self-assessment" if cset.kind == "cdht" else "dvht-self-assessment",
        "criteria_set": cset.id,
        "year": year,
        "subject": {"full_name": "Nguyễn Thị Hương", "birth_year": 1985, "unit": "Trường MN Tam Hưng A",
                    "group": group if cset.audience_groups else None},
        "scores": {i.id: score for i in cset.indicators},
        "evidence": {i.id: "Có minh chứng" for i in cset.indicators},
    }
    data.update(overrides)
    return Record.model_validate(data)
