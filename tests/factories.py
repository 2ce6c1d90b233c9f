"""Small builders for records used across tests."""

from __future__ import annotations

from decimal import Decimal
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


def spread_scores(cset: CriteriaSet, total: float) -> dict[str, float]:
    """Scores reaching `total`, filling indicators in order up to each one's own maximum."""
    scores: dict[str, float] = {}
    remaining = Decimal(str(total))
    for ind in cset.indicators:
        take = min(Decimal(str(ind.max_points)), remaining)
        scores[ind.id] = float(take)
        remaining -= take
    if remaining:
        raise ValueError(f"{total} is more than the set's maximum")
    return scores


def dvht_record(cset: CriteriaSet, total: float, **overrides: Any) -> Record:
    """A ĐVHT ranking record whose indicator scores add up to `total` (indicators have different maxima)."""
    return full_record(cset, **{"scores": spread_scores(cset, total), **overrides})
