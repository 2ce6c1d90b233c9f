"""A criteria set as plain JSON data: the same summary and detail for the API, the web UI and the CLI."""

from __future__ import annotations

from typing import Any

from formsvc.criteria.model import CriteriaSet


def set_summary(cset: CriteriaSet) -> dict[str, Any]:
    return {
        "id": cset.id,
        "title": cset.title,
        "kind": cset.kind,
        "version": cset.version,
        "verified": cset.fully_verified,
        "source": cset.source.model_dump(mode="json"),
        "audience_groups": cset.audience_groups,
        "years": {"from": cset.years.first, "to": cset.years.last},
        "extends": cset.extends,
    }


def set_detail(cset: CriteriaSet) -> dict[str, Any]:
    out = set_summary(cset)
    out["total_max"] = cset.total_max
    out["note"] = cset.note
    out["references"] = [r.model_dump(mode="json", exclude_none=True) for r in cset.references]
    out["outcome"] = cset.outcome.model_dump(mode="json", exclude_none=True)
    out["criteria"] = [
        {"id": c.id, "number": c.number, "title": c.title, "max_points": c.max_points,
         "indicators": [i.id for i in c.indicators]}
        for c in cset.criteria
    ]
    out["indicators"] = [
        {"id": i.id, "number": i.number, "label": i.label, "kind": i.kind, "title": i.title,
         "max_points": i.max_points, "step": i.step, "min_points": i.min_points,
         "evidence_required": i.evidence_required, "verified": i.verified, "origin": i.origin,
         "source": i.source, "sub_items": [si.model_dump(mode="json") for si in i.sub_items],
         "measure": i.measure.model_dump(mode="json", exclude_none=True) if i.measure else None,
         "levels": i.levels, "only_for": i.only_for}
        for i in cset.indicators
    ]
    return out
