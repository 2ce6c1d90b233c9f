"""Use case: a job's extracted documents become stored records, each validated once.

Known values first (the roster the forms were printed from: formsvc/service/known_values.py), then one validation
per document with its own findings, minutes against the upload's sheets and the unit's stored ones of the year.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from formsvc.criteria import default_registry
from formsvc.records import Reason, Record
from formsvc.service.known_values import apply_roster, roster_people
from formsvc.service.records import store_record, stored_sheets
from formsvc.settings import get_settings
from formsvc.validation.batch import validate_batch
from formsvc.validation.crosscheck import is_minutes


def ingest(session: Session, *, unit: str, job_id: str | None, documents: Sequence[Record],
           findings: Sequence[Sequence[Reason]], keys: Sequence[str], pages: Sequence[dict[int, str]]) -> int:
    """Store a job's documents; returns how many were new (a re-run stores nothing twice)."""
    people = roster_people(session, unit)
    known = [apply_roster(doc, list(found), people) for doc, found in zip(documents, findings, strict=True)]
    records = [k[0] for k in known]
    sheets = stored_sheets(session, unit, {r.year for r in records if is_minutes(r)})
    validated = validate_batch(records, [k[1] for k in known], default_registry(), stored_sheets=sheets,
                               review_confidence=get_settings().review_confidence)
    stored = 0
    for record, (_, found), key, page_refs in zip(validated, known, keys, pages, strict=True):
        row = store_record(session, unit=unit, job_id=job_id, doc_key=key, record=record, pages=page_refs,
                           findings=found)
        stored += row is not None
    return stored
