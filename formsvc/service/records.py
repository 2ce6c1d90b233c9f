"""Stored records: saving what a job extracted, finding, correcting, re-validating and approving them.

A record keeps its findings (reasons tied to fields that validation cannot derive from the record itself: a read
the readers disagreed on, a missing page, a name unlike the roster's) in `extra_reasons`. Validation runs once per
change (formsvc.validation.batch) over the record and those findings; a person correcting or confirming a field
removes that field's findings, and the history says so.

Deleting a record leaves a tombstone (status "deleted", no personal data) rather than removing the row: its
changes are the pull feed and the webhook outbox, and upstream systems learn of the deletion from them. A
tombstone is invisible everywhere else (lists, one record, reports, the review queue), as if it were gone."""

from __future__ import annotations

import copy
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from formsvc.criteria import default_registry
from formsvc.db.tables import Change, Correction, ReadAudit, RecordRow, ReviewSample, utcnow
from formsvc.errors import ConflictError, InputError, NotFoundError
from formsvc.forms import forms_of_document
from formsvc.records import FieldProvenance, Reason, Record
from formsvc.service.auth import Principal
from formsvc.service.changes import record_change
from formsvc.service.file_refs import release_after_commit
from formsvc.settings import get_settings
from formsvc.validation.batch import validate_one
from formsvc.validation.crosscheck import is_minutes

DELETED = "deleted"  # a tombstone's status: see the module's docstring
# What a reviewer may change; anything else is set by the system.
EDITABLE_PREFIXES = ("scores.", "evidence.", "extra.")
EDITABLE_FIELDS = ("total_declared", "year", "assessment_date", "registered_on", "subject.full_name",
                   "subject.birth_year", "subject.unit", "subject.group", "subject.id")


def source_key(job_id: str, doc_key: str) -> str:
    return f"{job_id}:{hashlib.sha1(doc_key.encode()).hexdigest()}"


def store_record(session: Session, *, unit: str, job_id: str | None, doc_key: str, record: Record,
                 pages: dict[int, str], findings: Sequence[Reason] = ()) -> RecordRow | None:
    """Insert one extracted, validated document with its findings; None when this source document is already
    stored (a re-run)."""
    key = source_key(job_id or "manual", doc_key)
    if session.scalar(select(RecordRow.id).where(RecordRow.source_key == key)) is not None:
        return None
    extra = [r.model_dump(mode="json") for r in findings]
    now = utcnow()
    row = RecordRow(id=uuid.uuid4().hex, source_key=key, unit=unit, job_id=job_id, form=record.form,
                    criteria_set=record.criteria_set, year=record.year, status=record.status or "needs_review",
                    subject_name=record.subject.full_name[:300], data=record.model_dump(mode="json", exclude={"id"}),
                    pages={str(k): v for k, v in pages.items()}, extra_reasons=extra, version=1,
                    created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    record_change(session, row, "record.created")
    return row


@dataclass(frozen=True)
class RecordFilter:
    unit: str | None = None
    year: int | None = None
    status: str | None = None
    form: str | None = None
    approved: bool | None = None
    job_id: str | None = None
    q: str | None = None


def filtered_query(stmt: Select[Any], who: Principal, f: RecordFilter, *, tombstones: bool = False) -> Select[Any]:
    """Records the key sees that match `f`; deleted ones only with `tombstones` (the pull feed), and then
    whatever their status, approval or name: a consumer that got the record must hear it was deleted."""
    scope: list[ColumnElement[bool]] = []
    if who.unit is not None:
        scope.append(RecordRow.unit == who.unit)
    if f.unit:
        scope.append(RecordRow.unit == f.unit)
    if f.year is not None:
        scope.append(RecordRow.year == f.year)
    if f.form:
        scope.append(RecordRow.form == f.form)
    if f.job_id:
        scope.append(RecordRow.job_id == f.job_id)
    detail: list[ColumnElement[bool]] = [RecordRow.status != DELETED]
    if f.status:
        detail.append(RecordRow.status == f.status)
    if f.approved is not None:
        detail.append(RecordRow.approved.is_(f.approved))
    if f.q:
        literal = f.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        detail.append(RecordRow.subject_name.ilike(f"%{literal}%", escape="\\"))
    stmt = stmt.where(*scope)
    return stmt.where(or_(RecordRow.status == DELETED, and_(*detail))) if tombstones else stmt.where(*detail)


def list_records(session: Session, who: Principal, f: RecordFilter, *, limit: int = 50,
                 offset: int = 0) -> tuple[list[RecordRow], int]:
    from sqlalchemy import func

    base = filtered_query(select(RecordRow), who, f)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(RecordRow.updated_at.desc(), RecordRow.id).limit(limit).offset(offset))
    return list(rows), total


def feed(session: Session, who: Principal, f: RecordFilter, *, after: int, limit: int = 100) -> list[RecordRow]:
    """Records changed after the cursor, in change order (the cursor is the last `change_seq` seen)."""
    stmt = filtered_query(select(RecordRow), who, f, tombstones=True).where(RecordRow.change_seq > after)
    rows = list(session.scalars(stmt.order_by(RecordRow.change_seq).limit(limit)))
    audit_reads(session, who, rows, "feed")
    return rows


def audit_reads(session: Session, who: Principal, rows: list[RecordRow], endpoint: str) -> None:
    if who.role != "integration":
        return
    now = utcnow()
    session.add_all(ReadAudit(key_id=who.key_id, record_id=r.id, endpoint=endpoint, at=now) for r in rows)


def get_record(session: Session, who: Principal, record_id: str, *, for_update: bool = False) -> RecordRow:
    row = session.get(RecordRow, record_id, with_for_update=for_update) if len(record_id) <= 32 else None
    if row is None or not who.sees(row.unit) or row.status == DELETED:
        raise NotFoundError("Không tìm thấy bản ghi.", code="record_not_found")
    return row


def _check_version(row: RecordRow, expected: int | None) -> None:
    if expected is not None and expected != row.version:
        raise ConflictError(f"Bản ghi đã được người khác sửa (phiên bản {row.version}, bạn đang sửa {expected}).",
                            code="version_conflict", hint="Tải lại bản ghi rồi sửa lại.")


def _set_path(data: dict[str, Any], path: str, value: Any) -> Any:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    old = node.get(parts[-1])
    node[parts[-1]] = value
    return old


def _editable(path: str) -> bool:
    return path in EDITABLE_FIELDS or (path.startswith(EDITABLE_PREFIXES) and path.count(".") == 1
                                       and len(path.split(".")[1]) > 0)


def stored_sheets(session: Session, unit: str, years: set[int], *, exclude: str | None = None) -> list[Record]:
    """The unit's stored self-assessments of `years` (what minutes are checked against)."""
    if not years:
        return []
    rows = session.scalars(select(RecordRow).where(
        RecordRow.unit == unit, RecordRow.year.in_(years), RecordRow.form.in_(forms_of_document("self_assessment")),
        RecordRow.status != DELETED,
    ).limit(get_settings().crosscheck_max_stored_sheets))
    return [Record.model_validate({**r.data, "id": r.id}) for r in rows if r.id != exclude]


def _revalidate(session: Session, row: RecordRow) -> Record:
    """The one validation: the record, its findings, and for minutes the unit's stored sheets of the year."""
    record = Record.model_validate({**row.data, "result": None, "status": None})
    findings = [Reason.model_validate(r) for r in row.extra_reasons]
    sheets = stored_sheets(session, row.unit, {record.year}, exclude=row.id) if is_minutes(record) else []
    return validate_one(record, findings, default_registry(), sheets=sheets,
                        review_confidence=get_settings().review_confidence)


def _touches(finding: dict[str, Any], path: str) -> bool:
    field = finding.get("field")
    return isinstance(field, str) and (field == path or field.startswith(path + "."))


def _save(row: RecordRow, record: Record) -> None:
    row.data = record.model_dump(mode="json", exclude={"id"})
    row.status = record.status or "needs_review"
    row.subject_name = record.subject.full_name[:300]
    row.year, row.form, row.criteria_set = record.year, record.form, record.criteria_set
    row.version += 1
    row.updated_at = utcnow()


def correct(session: Session, who: Principal, record_id: str, changes: dict[str, Any], *,
            expected_version: int | None = None) -> RecordRow:
    """Apply a reviewer's corrections, keep who/when/old->new, re-validate, emit one change."""
    who.require("admin", "reviewer")
    if not changes:
        raise InputError("Không có trường nào cần sửa.", code="nothing_to_correct")
    row = get_record(session, who, record_id, for_update=True)
    _check_version(row, expected_version)
    data = copy.deepcopy(row.data)
    data.pop("result", None)
    data.pop("status", None)
    olds: dict[str, Any] = {}
    for path, value in changes.items():
        if not _editable(path):
            raise InputError(f"Không được sửa trường «{path}».", code="field_not_editable",
                             detail={"field": path})
        olds[path] = _set_path(data, path, value)
    before = {f.get("name"): f for f in data.get("fields", [])}
    provenance = [f for f in data.get("fields", []) if f.get("name") not in changes]
    # The corrected value keeps where it was read, so the reviewer's evidence (the crop) stays visible.
    provenance += [FieldProvenance(name=p, value=v, confidence=1.0, source="manual",
                                   page=before.get(p, {}).get("page"), bbox=before.get(p, {}).get("bbox"),
                                   ).model_dump(mode="json") for p, v in changes.items()]
    data["fields"] = provenance
    try:
        Record.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"Giá trị sửa không hợp lệ ở «{where}»: {first['msg']}.", code="correction_invalid",
                         detail={"field": where}) from exc
    row.data = data
    # A person has now looked at these fields: the findings tied to them are settled (a correction or, with the
    # value unchanged, a confirmation). Findings on other fields stay.
    cleared = [f for f in row.extra_reasons if any(_touches(f, p) for p in changes)]
    row.extra_reasons = [f for f in row.extra_reasons if f not in cleared]
    record = _revalidate(session, row)
    _save(row, record)
    if row.approved:  # a change after approval needs a fresh approval
        row.approved, row.approved_by, row.approved_at = False, None, None
    now = utcnow()
    session.add_all(Correction(record_id=row.id, field=p, old_value=olds[p], new_value=v, key_id=who.key_id, at=now,
                               action="confirm" if olds[p] == v else "correct")
                    for p, v in changes.items())
    session.add_all(Correction(record_id=row.id, field=str(f.get("field")), old_value=f, new_value=None,
                               key_id=who.key_id, at=now, action="clear_finding") for f in cleared)
    record_change(session, row, "record.corrected")
    return row


def revalidate(session: Session, who: Principal, record_id: str) -> RecordRow:
    who.require("admin", "reviewer")
    row = get_record(session, who, record_id, for_update=True)
    record = _revalidate(session, row)
    before = (row.status, row.data.get("result"))
    new_data = record.model_dump(mode="json", exclude={"id"})
    if before == (record.status, new_data.get("result")):
        return row  # nothing changed: no event
    _save(row, record)
    record_change(session, row, "record.revalidated")
    return row


def approve(session: Session, who: Principal, record_id: str, *, expected_version: int | None = None) -> RecordRow:
    who.require("admin", "reviewer")
    row = get_record(session, who, record_id, for_update=True)
    _check_version(row, expected_version)
    if row.approved:
        return row
    if row.status == "rejected":
        raise ConflictError("Bản ghi còn lỗi (không hợp lệ); hãy sửa các trường bị báo lỗi trước khi duyệt.",
                            code="record_not_approvable")
    row.approved, row.approved_by, row.approved_at = True, who.key_id, utcnow()
    row.version += 1
    row.updated_at = utcnow()
    session.add(Correction(record_id=row.id, field="approved", old_value=False, new_value=True, action="approve",
                           key_id=who.key_id))
    record_change(session, row, "record.approved")
    return row


def delete_record(session: Session, who: Principal, record_id: str, *,
                  expected_version: int | None = None) -> RecordRow:
    """Delete a record: the row becomes a tombstone without personal data, its review samples and corrections go,
    one `record.deleted` change tells the feed and the webhooks, and its page images and crops leave the file
    store once this transaction commits (those no other row uses)."""
    who.require("admin", "reviewer")
    started = time.time()  # before anything is read: a file stored again after this stays (file_refs)
    row = get_record(session, who, record_id, for_update=True)
    _check_version(row, expected_version)
    crops = set(session.scalars(select(ReviewSample.crop_sha256).where(ReviewSample.record_id == row.id,
                                                                       ReviewSample.crop_sha256.is_not(None))))
    files = {str(v) for v in (row.pages or {}).values()} | {str(c) for c in crops}
    session.execute(delete(ReviewSample).where(ReviewSample.record_id == row.id))
    session.execute(delete(Correction).where(Correction.record_id == row.id))
    # Earlier events keep their envelope (id, type, sequence) for the outbox and the feed's order, not the person.
    marker = {"deleted": True, "form": row.form, "criteria_set": row.criteria_set, "year": row.year}
    for change in session.scalars(select(Change).where(Change.record_id == row.id)):
        payload = copy.deepcopy(change.payload)
        if isinstance(payload.get("record"), dict):
            payload["record"]["record"] = {**marker, "id": row.id}
            change.payload = payload
    row.source_key = f"{DELETED}:{row.id}"  # the same source document may be stored again by a re-run
    row.status, row.data, row.subject_name = DELETED, marker, ""
    row.pages, row.extra_reasons = {}, []
    row.version += 1
    row.updated_at = utcnow()
    session.add(Correction(record_id=row.id, field="record", old_value=None, new_value=None, action="delete",
                           key_id=who.key_id, at=row.updated_at))
    record_change(session, row, "record.deleted")
    release_after_commit(session, files, since=started)
    return row


def history(session: Session, who: Principal, record_id: str) -> list[Correction]:
    row = get_record(session, who, record_id)
    return list(session.scalars(select(Correction).where(Correction.record_id == row.id).order_by(Correction.id)))


def as_record(row: RecordRow) -> Record:
    return Record.model_validate({**row.data, "id": row.id})
