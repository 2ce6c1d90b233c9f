"""Jobs: uploads to extract and print packs to build, created by the API, run by workers."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from formsvc.db.tables import Job, JobFile, PageErrorRow, RecordRow, StoredFile, utcnow
from formsvc.errors import InputError, NotFoundError
from formsvc.service.auth import Principal
from formsvc.service.records import DELETED

JOB_STATUS_LABELS = {"queued": "Đang chờ", "running": "Đang xử lý", "done": "Xong", "failed": "Lỗi"}


@dataclass(frozen=True)
class Upload:
    filename: str
    sha256: str
    size: int
    media_type: str


# Bytes, not characters: file systems cap a name at 255 bytes, and one Vietnamese letter is up to 3 bytes in
# UTF-8 (200 "ệ" = 600 bytes). The worker links each upload under this name, so it must fit with room to spare.
MAX_FILENAME_BYTES = 200
_MAX_SUFFIX_BYTES = 16


def _cut_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-8 bytes, never splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def safe_filename(name: str | None, fallback: str = "tep") -> str:
    """A name safe to show and to use as a file name: no folders, no control characters, at most
    MAX_FILENAME_BYTES bytes in UTF-8 (the extension is kept when the stem has to be shortened)."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip().lstrip(".")
    name = name or fallback
    if len(name.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix.encode("utf-8")) > _MAX_SUFFIX_BYTES:
        return _cut_bytes(name, MAX_FILENAME_BYTES).rstrip()
    return _cut_bytes(stem, MAX_FILENAME_BYTES - len(suffix.encode("utf-8")) - 1).rstrip() + "." + suffix


def unit_for(who: Principal, requested: str | None) -> str:
    """The unit a new job belongs to: a unit-scoped key's own, or the one an unscoped key names."""
    requested = (requested or "").strip() or None
    if who.unit is not None:
        if requested and requested != who.unit:
            raise NotFoundError("Không tìm thấy đơn vị.", code="unit_not_found")
        return who.unit
    if not requested:
        raise InputError("Hãy chọn đơn vị cho lần tải lên này.", code="unit_required")
    return requested[:200]


def content_hash(kind: str, unit: str, uploads: list[Upload], params: dict[str, Any]) -> str:
    h = hashlib.sha256(f"{kind}\0{unit}\0".encode())
    for u in sorted(uploads, key=lambda u: u.sha256):
        h.update(u.sha256.encode())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()


def create_job(session: Session, who: Principal, *, kind: str, unit: str, uploads: list[Upload],
               params: dict[str, Any] | None = None) -> tuple[Job, bool]:
    """A new job, or the existing one when the same unit already sent the same files (content hash)."""
    params = params or {}
    digest = content_hash(kind, unit, uploads, params)
    existing = session.scalar(select(Job).where(Job.unit == unit, Job.content_hash == digest, Job.kind == kind,
                                                Job.status != "failed").limit(1))
    if existing is not None:
        return existing, False
    for u in uploads:
        if session.get(StoredFile, u.sha256) is None:
            session.add(StoredFile(sha256=u.sha256, size=u.size, media_type=u.media_type[:100]))
    job = Job(id=uuid.uuid4().hex, kind=kind, unit=unit, key_id=who.key_id, status="queued", attempts=1,
              content_hash=digest, params=params, created_at=utcnow(), enqueued_at=utcnow())
    session.add(job)
    session.flush()
    session.add_all(JobFile(job_id=job.id, sha256=u.sha256, filename=safe_filename(u.filename), position=i)
                    for i, u in enumerate(uploads))
    session.flush()
    return job, True


def get_job(session: Session, who: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id) if len(job_id) <= 32 else None
    if job is None or not who.sees(job.unit):
        raise NotFoundError("Không tìm thấy công việc.", code="job_not_found")
    return job


def job_view(session: Session, job: Job) -> dict[str, Any]:
    files = session.scalars(select(JobFile).where(JobFile.job_id == job.id).order_by(JobFile.position))
    errors = session.scalars(select(PageErrorRow).where(PageErrorRow.job_id == job.id).order_by(PageErrorRow.id))
    records = session.execute(select(RecordRow.id, RecordRow.status, RecordRow.subject_name, RecordRow.form)
                              .where(RecordRow.job_id == job.id, RecordRow.status != DELETED)
                              .order_by(RecordRow.created_at, RecordRow.id))
    percent = round(100 * job.pages_done / job.pages_total) if job.pages_total else (100 if job.status == "done"
                                                                                      else 0)
    return {
        "id": job.id, "kind": job.kind, "unit": job.unit, "status": job.status,
        "status_label": JOB_STATUS_LABELS.get(job.status, job.status),
        "progress": {"pages_done": job.pages_done, "pages_total": job.pages_total, "percent": percent},
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "files": [{"filename": f.filename, "sha256": f.sha256} for f in files],
        "records": [{"id": r.id, "status": r.status, "subject": r.subject_name, "form": r.form} for r in records],
        "errors": [{"file": e.filename, "page": e.page, "code": e.code, "message": e.message} for e in errors],
        "error": ({"code": job.error_code, "message": job.error_message} if job.error_code else None),
        "result_url": f"/v1/jobs/{job.id}/result" if job.result_sha256 else None,
    }


def list_jobs(session: Session, who: Principal, *, kind: str | None = None, limit: int = 50,
              offset: int = 0) -> tuple[list[Job], int]:
    stmt = select(Job)
    if who.unit is not None:
        stmt = stmt.where(Job.unit == who.unit)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return list(session.scalars(stmt.order_by(Job.created_at.desc()).limit(limit).offset(offset))), total


def stale_jobs(session: Session, older_than: dt.timedelta) -> list[Job]:
    """Jobs not finished whose last sign of life is older than `older_than`."""
    cutoff = utcnow() - older_than
    last_sign = func.coalesce(Job.heartbeat_at, Job.enqueued_at, Job.created_at)
    return list(session.scalars(select(Job).where(Job.status.in_(("queued", "running")), last_sign < cutoff)))
