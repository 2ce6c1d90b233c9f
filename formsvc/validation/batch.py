"""One validation of documents with their findings: the only place where a record gets its result and status.

Extraction hands over each document with its own per-field findings (unsure or disagreeing reads, a missing
page, a name that differs from the roster); the service keeps them beside the record, drops those of a field a
person corrects or confirms, and validates here on every change. Minutes are checked against the self-assessments
afresh each time, so a cross-check finding is never stored and never needs removing.
"""

from __future__ import annotations

from collections.abc import Sequence

from formsvc.criteria import CriteriaRegistry
from formsvc.records import Reason, Record
from formsvc.validation.crosscheck import check_minutes, is_minutes
from formsvc.validation.engine import DEFAULT_REVIEW_CONFIDENCE, validate_document


def validate_one(record: Record, findings: Sequence[Reason], registry: CriteriaRegistry, *,
                 sheets: Sequence[Record] = (), review_confidence: float = DEFAULT_REVIEW_CONFIDENCE) -> Record:
    """`record` (its result and status ignored) validated with its findings; minutes also against `sheets`
    (validated self-assessments)."""
    bare = record.model_copy(update={"result": None, "status": None})
    extra = [*findings, *(check_minutes(bare, list(sheets)) if is_minutes(bare) else [])]
    # Records stored before findings existed may hold a cross-check reason among them: never count one twice.
    extra = list({(r.code, r.field, r.indicator, r.message): r for r in extra}.values())
    return validate_document(bare, registry, review_confidence=review_confidence, extra_reasons=extra)


def validate_batch(records: Sequence[Record], findings: Sequence[Sequence[Reason]], registry: CriteriaRegistry, *,
                   stored_sheets: Sequence[Record] = (),
                   review_confidence: float = DEFAULT_REVIEW_CONFIDENCE) -> list[Record]:
    """Every record validated once; minutes after the rest, against the batch's sheets plus `stored_sheets`."""
    out: list[Record | None] = [None] * len(records)
    for i, (rec, found) in enumerate(zip(records, findings, strict=True)):
        if not is_minutes(rec):
            out[i] = validate_one(rec, found, registry, review_confidence=review_confidence)
    sheets = [*(r for r in out if r is not None), *stored_sheets]
    for i, (rec, found) in enumerate(zip(records, findings, strict=True)):
        if is_minutes(rec):
            out[i] = validate_one(rec, found, registry, sheets=sheets, review_confidence=review_confidence)
    return [r for r in out if r is not None]
