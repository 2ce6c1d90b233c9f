"""The review queue: flagged score boxes across a unit's records, one after another, and confirming one.

A box is in the queue when its record still needs a person (not valid, not approved), the box has a crop (its
page is stored) and it is flagged: read with a confidence under the review threshold, or named by an error or
review finding. A value a person confirmed (source "manual") leaves the queue for good, even when the sheet's
total still disagrees: the person saw the crop, and asking again would loop.

Confirming goes through records.correct (audited, re-validated, version-checked) and keeps the value with the
box's crop as a ReviewSample, what `formsvc digits retrain` learns from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from formsvc.criteria import default_registry
from formsvc.db.tables import RecordRow, ReviewSample
from formsvc.errors import FormsvcError, InputError, NotFoundError
from formsvc.service import records as svc
from formsvc.service.auth import Principal
from formsvc.settings import get_settings
from formsvc.storage import get_file_store
from formsvc.validation.messages import label_for

FLAG_SEVERITIES = ("error", "review")
MAX_RECORDS_SCANNED = 500  # one queue page never reads more records than this
MAX_CHOICES = 5


@dataclass(frozen=True)
class QueueItem:
    record_id: str
    version: int
    subject_name: str
    field: str
    label: str
    value: float | str | None
    confidence: float | None
    choices: list[float]
    crop: str
    max_points: float | None
    step: float | None
    total_declared: float | str | None
    scores_sum: float  # the sheet's numeric scores as stored now, this box included
    notes: list[str]
    # The declared total, read confidently, in the queue only because the boxes' sum disagreed: once the boxes
    # before it are settled and the sum agrees, nothing about it is in question and the page passes it by.
    sum_only: bool = False

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def is_box(name: str) -> bool:
    """Score boxes and the declared total: the handwritten numbers the recogniser reads and learns."""
    return name == "total_declared" or (name.startswith("scores.") and name.count(".") == 1)


def _findings(row: RecordRow) -> dict[str, list[tuple[str, str]]]:
    """Field -> (code, message) of the error and review findings about it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for r in (row.data.get("result") or {}).get("reasons") or []:
        if r.get("severity") not in FLAG_SEVERITIES:
            continue
        target = r.get("field") or (f"scores.{r['indicator']}" if r.get("indicator") else None)
        if target:
            out.setdefault(str(target), []).append((str(r.get("code", "")), str(r.get("message", ""))))
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def flagged_boxes(row: RecordRow) -> list[QueueItem]:
    """The record's boxes a person should look at, in the sheet's order (indicators, then the total)."""
    threshold = get_settings().review_confidence
    findings = _findings(row)
    try:
        cset = default_registry().get(row.criteria_set)
    except FormsvcError:
        cset = None
    data: Mapping[str, Any] = row.data or {}
    scores: Mapping[str, Any] = data.get("scores") or {}
    total_sum = sum(v for v in (_number(x) for x in scores.values()) if v is not None)
    items = []
    for f in data.get("fields") or []:
        name = str(f.get("name", ""))
        if not is_box(name) or f.get("source") == "manual" or not f.get("bbox"):
            continue
        if str(f.get("page")) not in (row.pages or {}):
            continue
        confidence = f.get("confidence")
        low = confidence is not None and float(confidence) < threshold
        if not (low or name in findings):
            continue
        key = name.split(".", 1)[1] if name.startswith("scores.") else None
        ind = cset.indicator(key) if cset and key else None
        value = scores.get(key) if key else data.get("total_declared")
        choices: list[float] = []
        for v in [value, *(f.get("candidates") or [])]:
            n = _number(v)
            if n is not None and n not in choices:
                choices.append(n)
        items.append(QueueItem(
            record_id=row.id, version=row.version, subject_name=row.subject_name, field=name,
            label=label_for(name, cset), value=value, confidence=confidence, choices=choices[:MAX_CHOICES],
            crop=f"/v1/records/{row.id}/crops/{name}",
            max_points=ind.max_points if ind else (cset.total_max if cset and name == "total_declared" else None),
            step=ind.step if ind else None, total_declared=data.get("total_declared"), scores_sum=total_sum,
            notes=[m for _, m in findings.get(name, [])],
            sum_only=name == "total_declared" and not low and all(c == "total_mismatch" for c, _ in findings[name])))
    order = {f"scores.{i.id}": n for n, i in enumerate(cset.indicators)} if cset else {}
    items.sort(key=lambda it: order.get(it.field, 10_000 if it.field == "total_declared" else 5_000))
    return items


def queue(session: Session, who: Principal, *, limit: int = 100) -> tuple[list[QueueItem], int]:
    """Flagged boxes of the records the key sees, oldest record first; (first `limit`, all flagged boxes)."""
    who.require("admin", "reviewer")
    stmt = svc.filtered_query(select(RecordRow), who, svc.RecordFilter()).where(
        RecordRow.status != "valid", RecordRow.approved.is_(False))
    rows = session.scalars(stmt.order_by(RecordRow.created_at, RecordRow.id).limit(MAX_RECORDS_SCANNED))
    items: list[QueueItem] = []
    total = 0
    for row in rows:
        boxes = flagged_boxes(row)
        total += len(boxes)
        items.extend(boxes[:max(0, limit - len(items))])
    return items, total


def box_crop(row: RecordRow, field: Mapping[str, Any]) -> bytes | None:
    """The box exactly as extraction cut it (no margin), as PNG: what the recogniser saw."""
    sha = (row.pages or {}).get(str(field.get("page")))
    if not sha or not field.get("bbox"):
        return None
    try:
        raw = get_file_store().read_bytes(sha)
    except NotFoundError:
        return None
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    h, w = image.shape
    x0, y0, x1, y1 = (round(float(v)) for v in field["bbox"])
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    ok, png = cv2.imencode(".png", image[y0:y1, x0:x1])
    return png.tobytes() if ok else None


def confirm(session: Session, who: Principal, record_id: str, field: str, value: float | None, *,
            expected_version: int | None = None) -> RecordRow:
    """A reviewer's answer for one box: the value (the same as read, or another) becomes the record's, the box's
    extraction findings are cleared, and the value is kept with the box's crop for retraining."""
    who.require("admin", "reviewer")
    if not is_box(field):
        raise InputError(f"Ô «{field}» không phải ô điểm.", code="field_not_a_box", detail={"field": field})
    row = svc.get_record(session, who, record_id, for_update=True)
    before = next((f for f in row.data.get("fields") or [] if f.get("name") == field), None)
    if before is None:
        raise NotFoundError("Bản ghi không có ô này.", code="field_not_found", detail={"field": field})
    key = field.split(".", 1)[1] if field.startswith("scores.") else None
    read_value = (row.data.get("scores") or {}).get(key) if key else row.data.get("total_declared")
    # Findings from extraction about this box (cross-checks) are answered by the person's look at the crop.
    row.extra_reasons = [r for r in row.extra_reasons or []
                         if r.get("field") != field and not (key and r.get("indicator") == key)]
    crop = box_crop(row, before)
    row = svc.correct(session, who, record_id, {field: value}, expected_version=expected_version)
    session.add(ReviewSample(record_id=row.id, unit=row.unit, field=field, value=value, read_value=read_value,
                             crop_sha256=get_file_store().put_bytes(crop) if crop else None, key_id=who.key_id))
    return row


def samples(session: Session, unit: str | None = None) -> list[ReviewSample]:
    """Every kept answer with a crop (one unit's, or the deployment's), oldest first."""
    stmt = select(ReviewSample).where(ReviewSample.crop_sha256.is_not(None))
    if unit is not None:
        stmt = stmt.where(ReviewSample.unit == unit)
    return list(session.scalars(stmt.order_by(ReviewSample.id)))
