"""The year-end dossier from the store: the unit's records of the year, planned, rendered (CLI, API job, web UI)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from formsvc.db.tables import RecordRow
from formsvc.errors import InputError
from formsvc.exports import ExportRow
from formsvc.forms import self_assessment_forms
from formsvc.reports.dossier import DossierPlan, plan_dossier
from formsvc.service.auth import Principal
from formsvc.service.records import DELETED, as_record

SYSTEM = Principal(key_id="system", role="admin", unit=None, name="system")
MAX_EXCLUDE = 200
MAX_RECORDS = 20_000  # a unit is a school or a commune; far beyond this is a mistake, not a dossier


def dossier_rows(session: Session, who: Principal, unit: str, year: int) -> list[ExportRow]:
    """The unit's CDHT self-assessments of the year (any status, approved or not), as the planner wants them."""
    if not who.sees(unit):
        return []
    stmt = (select(RecordRow).where(RecordRow.unit == unit, RecordRow.year == year, RecordRow.status != DELETED,
                                    RecordRow.form.in_(self_assessment_forms("cdht")))
            .order_by(RecordRow.created_at, RecordRow.id).limit(MAX_RECORDS + 1))
    rows = list(session.scalars(stmt))
    if len(rows) > MAX_RECORDS:
        raise InputError(f"Đơn vị có hơn {MAX_RECORDS} bản ghi trong năm {year}; không lập hồ sơ một lần được.",
                         code="dossier_too_large")
    return [ExportRow(record=as_record(r), id=r.id, unit=r.unit, approved=r.approved, updated_at=r.updated_at)
            for r in rows]


def check_params(year: int, exclude: Iterable[str]) -> list[str]:
    if not 1900 <= year <= 2100:
        raise InputError(f"Năm «{year}» không hợp lệ.", code="bad_year")
    ids = [e.strip() for e in exclude if e and e.strip()]
    if len(ids) > MAX_EXCLUDE or any(len(i) > 32 or not i.isalnum() or not i.isascii() for i in ids):
        raise InputError(f"Danh sách bản ghi loại ra không hợp lệ (tối đa {MAX_EXCLUDE} mã bản ghi).",
                         code="dossier_exclude_invalid")
    return ids


def plan_from_store(session: Session, who: Principal, *, unit: str, year: int, criteria_set: str | None = None,
                    exclude: Iterable[str] = ()) -> DossierPlan:
    if criteria_set:
        from formsvc.criteria import default_registry

        default_registry().get(criteria_set)  # unknown set: the registry's own typed error
    return plan_dossier(dossier_rows(session, who, unit, year), unit=unit, year=year, criteria_set=criteria_set,
                        exclude=check_params(year, exclude))


def fingerprint(rows: list[ExportRow]) -> str:
    """Changes whenever a record of the dossier changes, so a new request after a correction or an approval is a
    new job, while the same request twice is the same job."""
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r.id):
        h.update(f"{row.id}|{row.approved}|{row.updated_at.isoformat()}\n".encode())
    return h.hexdigest()[:32]

