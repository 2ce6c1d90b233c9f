"""Use case: a job's extracted documents become stored records, each validated once.

Known values first (the roster the forms were printed from: formsvc/service/known_values.py), then one validation
per document with its own findings, minutes against the upload's sheets and the unit's stored ones of the year.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from formsvc.criteria import default_registry
from formsvc.records import Reason, Record
from formsvc.roster import Person
from formsvc.service.known_values import apply_roster, roster_people
from formsvc.service.records import store_record, stored_sheets
from formsvc.settings import get_settings
from formsvc.validation.batch import validate_batch
from formsvc.validation.crosscheck import is_minutes


def prepare(session: Session, *, unit: str, documents: Sequence[Record], findings: Sequence[Sequence[Reason]],
            people: dict[str, Person] | None = None) -> tuple[list[Record], list[list[Reason]]]:
    """Read-only half: known values from the unit's rosters (`people`, when already read), then one validation
    per document (minutes against the upload's sheets and the unit's stored ones). Run it before the transaction
    that writes: parsing rosters and loading stored sheets must not happen while a write lock is held."""
    sheets = stored_sheets(session, unit, {d.year for d in documents if is_minutes(d)})
    return with_known_values(documents, findings, roster_people(session, unit) if people is None else people, sheets)


def with_known_values(documents: Sequence[Record], findings: Sequence[Sequence[Reason]], people: dict[str, Person],
                      sheets: Sequence[Record] = ()) -> tuple[list[Record], list[list[Reason]]]:
    """The documents with the roster's known values applied, each validated once (minutes against the batch's
    sheets and `sheets`), and their findings."""
    known = [apply_roster(doc, list(found), people) for doc, found in zip(documents, findings, strict=True)]
    validated = validate_batch([k[0] for k in known], [k[1] for k in known], default_registry(),
                               stored_sheets=sheets, review_confidence=get_settings().review_confidence)
    return validated, [k[1] for k in known]


def store(session: Session, *, unit: str, job_id: str | None, records: Sequence[Record],
          findings: Sequence[Sequence[Reason]], keys: Sequence[str], pages: Sequence[dict[int, str]]) -> int:
    """Writing half: the prepared records stored; returns how many were new (a re-run stores nothing twice)."""
    stored = 0
    for record, found, key, page_refs in zip(records, findings, keys, pages, strict=True):
        row = store_record(session, unit=unit, job_id=job_id, doc_key=key, record=record, pages=page_refs,
                           findings=list(found))
        stored += row is not None
    return stored


def ingest(session: Session, *, unit: str, job_id: str | None, documents: Sequence[Record],
           findings: Sequence[Sequence[Reason]], keys: Sequence[str], pages: Sequence[dict[int, str]]) -> int:
    """Store a job's documents in one session (both halves); returns how many were new."""
    records, found = prepare(session, unit=unit, documents=documents, findings=findings)
    return store(session, unit=unit, job_id=job_id, records=records, findings=found, keys=keys, pages=pages)
