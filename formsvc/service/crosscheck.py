"""Minutes checked against self-assessments already stored for the unit, not only those in the same upload."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from formsvc.db.tables import RecordRow
from formsvc.extract.crosscheck import cross_check
from formsvc.records import Record, Result
from formsvc.settings import get_settings
from formsvc.validation import status_for

CROSS_CODES = frozenset({"proposed_without_self_assessment", "proposed_not_meeting_rule", "agreed_total_differs",
                         "name_matched_without_diacritics"})


def check_minutes_with_stored(session: Session, unit: str, documents: list[Record]) -> list[Record]:
    """`documents` with every minutes record re-checked against the upload's sheets plus the unit's stored ones
    of the same year. Other documents come back unchanged."""
    minutes_years = {d.year for d in documents if d.form == "cdht-minutes"}
    if not minutes_years:
        return documents
    rows = session.scalars(select(RecordRow).where(
        RecordRow.unit == unit, RecordRow.year.in_(minutes_years), RecordRow.form.like("%self-assessment"),
    ).limit(get_settings().crosscheck_max_stored_sheets))
    stored = [Record.model_validate({**r.data, "id": r.id}) for r in rows]
    out = list(documents)
    for i, doc in enumerate(documents):
        if doc.form != "cdht-minutes":
            continue
        sheets = [d for d in documents if d.form.endswith("self-assessment") and d.year == doc.year]
        sheets += [s for s in stored if s.year == doc.year]
        bare = doc.model_copy(update={"id": "minutes"})
        reasons = cross_check([bare, *sheets]).get("minutes", [])
        kept = [r for r in (doc.result.reasons if doc.result else []) if r.code not in CROSS_CODES]
        all_reasons = [*kept, *reasons]
        result = (doc.result or Result(total=0, max_total=0)).model_copy(update={"reasons": all_reasons})
        out[i] = doc.model_copy(update={"result": result, "status": status_for(all_reasons)})
    return out
