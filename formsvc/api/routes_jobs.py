"""Uploads of filled-in forms, print packs, and the jobs that process them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from formsvc.api.deps import principal
from formsvc.db.engine import session_scope
from formsvc.errors import BusyError, InputError, LimitError, NotFoundError
from formsvc.extract.pages import check_file
from formsvc.service.auth import Principal
from formsvc.service.jobs import Upload, create_job, get_job, job_view, list_jobs, safe_filename, unit_for
from formsvc.service.queue import enqueue
from formsvc.settings import get_settings
from formsvc.storage import get_file_store

router = APIRouter(prefix="/v1", tags=["jobs"])
Who = Annotated[Principal, Depends(principal)]
LIMIT_CODES = {"too_many_pages", "image_too_large", "file_too_large"}
ROSTER_SUFFIXES = {".csv", ".xlsx"}


def _store_uploads(files: list[UploadFile]) -> list[Upload]:
    """Check every file first; only when all pass are they put in the store (nothing stored half-way)."""
    s = get_settings()
    if not files:
        raise InputError("Chưa chọn tệp nào để tải lên.", code="no_files")
    if len(files) > s.max_files_per_upload:
        raise LimitError(f"Tối đa {s.max_files_per_upload} tệp mỗi lần tải lên.", code="too_many_files")
    store = get_file_store()
    problems: list[dict[str, Any]] = []
    staged: list[tuple[UploadFile, str]] = []
    for f in files:
        name = safe_filename(f.filename)
        f.file.seek(0, 2)
        size = f.file.tell()
        f.file.seek(0)
        if size > s.max_upload_bytes:
            problems.append({"file": name, "code": "file_too_large",
                             "message": f"{name}: lớn hơn giới hạn {s.max_upload_bytes // (1024 * 1024)} MB."})
            continue
        staged.append((f, name))
    if not problems:
        for f, name in staged:
            problem = _check_spooled(f, name)
            if problem:
                problems.append(problem)
    if problems:
        cls = LimitError if all(p["code"] in LIMIT_CODES for p in problems) else InputError
        raise cls("Có tệp không nhận được: " + " ".join(p["message"] for p in problems),
                  code=problems[0]["code"] if len(problems) == 1 else "files_rejected",
                  hint="Sửa hoặc bỏ các tệp đã nêu rồi tải lên lại; chưa có gì được lưu.",
                  detail={"files": problems})
    out = []
    for f, name in staged:
        f.file.seek(0)
        sha, size = store.put_stream(f.file)
        out.append(Upload(name, sha, size, f.content_type or "application/octet-stream"))
    return out


def _check_backlog(unit: str) -> None:
    """Workers finish a job in about a second; a unit that uploads far faster waits instead of piling up work."""
    from sqlalchemy import func, select

    from formsvc.db.tables import Job

    limit = get_settings().max_queued_jobs_per_unit
    with session_scope() as s:
        waiting = s.scalar(select(func.count()).select_from(Job).where(Job.unit == unit, Job.status == "queued")) or 0
    if waiting >= limit:
        raise BusyError(f"Đơn vị đang có {waiting} lần tải lên chờ xử lý; vui lòng thử lại sau ít phút.",
                        code="queue_full", hint="Các tệp đã gửi trước vẫn đang được xử lý theo thứ tự.",
                        detail={"retry_after": 30})


def _check_spooled(f: UploadFile, name: str) -> dict[str, Any] | None:
    import tempfile

    s = get_settings()
    with tempfile.NamedTemporaryFile(prefix="formsvc-up-") as tmp:
        f.file.seek(0)
        while chunk := f.file.read(1 << 20):
            tmp.write(chunk)
        tmp.flush()
        err = check_file(Path(tmp.name), name, max_pages=s.max_pages_per_file, max_pixels=s.max_image_pixels)
    return {"file": name, "code": err.code, "message": err.message} if err else None


def _accepted(job_id: str, created: bool) -> JSONResponse:
    with session_scope() as s:
        body = job_view(s, get_job(s, _SYSTEM, job_id))
    body["duplicate"] = not created
    return JSONResponse(status_code=202 if created else 200, content=body,
                        headers={"Location": f"/v1/jobs/{job_id}"})


_SYSTEM = Principal(key_id="system", role="admin", unit=None, name="system")


@router.post("/submissions", status_code=202, summary="Tải lên bản quét/ảnh/PDF phiếu đã điền")
def upload(who: Who, files: Annotated[list[UploadFile], File(description="PDF, JPEG, PNG, TIFF, HEIC, AVIF, WebP")],
           unit: Annotated[str | None, Form()] = None) -> JSONResponse:
    who.require("admin", "clerk")
    unit_name = unit_for(who, unit)
    _check_backlog(unit_name)
    uploads = _store_uploads(files)
    with session_scope() as s:
        job, created = create_job(s, who, kind="extract", unit=unit_name, uploads=uploads)
        job_id = job.id
    if created:
        enqueue(job_id, 1)
    return _accepted(job_id, created)


@router.post("/print-packs", status_code=202, summary="In hàng loạt phiếu điền sẵn từ danh sách")
def print_pack(who: Who, roster: Annotated[UploadFile, File(description="Danh sách CSV hoặc XLSX")],
               form: Annotated[str, Form()], year: Annotated[int | None, Form(ge=2000, le=2100)] = None,
               unit: Annotated[str | None, Form()] = None) -> JSONResponse:
    from formsvc.forms import get_form
    from formsvc.render.pack import require_packable

    who.require("admin", "clerk")
    unit_name = unit_for(who, unit)
    form_info = get_form(form)
    require_packable(form_info)
    form_id = form_info.id
    name = safe_filename(roster.filename, "danh-sach.csv")
    suffix = Path(name).suffix.lower()
    if suffix not in ROSTER_SUFFIXES:
        raise InputError("Danh sách phải là tệp .csv hoặc .xlsx.", code="roster_type_unsupported")
    roster.file.seek(0, 2)
    if roster.file.tell() > 5 * 1024 * 1024:
        raise LimitError("Danh sách lớn hơn 5 MB.", code="file_too_large")
    roster.file.seek(0)
    sha, size = get_file_store().put_stream(roster.file)
    upload_ = Upload(name, sha, size, roster.content_type or "text/csv")
    with session_scope() as s:
        job, created = create_job(s, who, kind="print_pack", unit=unit_name, uploads=[upload_],
                                  params={"form": form_id, "year": year})
        job_id = job.id
    if created:
        enqueue(job_id, 1)
    return _accepted(job_id, created)


class DossierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year: int = Field(ge=2000, le=2100, description="Assessed year")
    # No control characters: a NUL cannot even be sent to PostgreSQL, and no unit or set id has one.
    unit: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$",
                             description="Admin keys only: the unit")
    criteria_set: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._-]*$",
                                     description="Only records of this CDHT set")
    exclude: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=200, description="Record ids left out (listed on the cover sheet)")
    staff: int | None = Field(default=None, ge=1, le=1_000_000, description="Headcount, for the reports' rates")


@router.post("/dossiers", status_code=202, summary="Lập hồ sơ cuối năm (biên bản, quyết định, báo cáo) từ bản ghi "
                                                   "đã duyệt; kết quả là tệp ZIP")
def dossier(who: Who, body: DossierIn) -> JSONResponse:
    from formsvc.service.dossier import dossier_rows, fingerprint, plan_from_store

    who.require("admin", "clerk", "reviewer")
    unit_name = unit_for(who, body.unit)
    with session_scope() as s:
        # Planned now as well as in the job: a duplicate person is a 409 naming both records at once, and the
        # fingerprint of the records makes a request after any correction or approval a new job.
        plan_from_store(s, who, unit=unit_name, year=body.year, criteria_set=body.criteria_set,
                        exclude=body.exclude)
        stamp = fingerprint(dossier_rows(s, who, unit_name, body.year))
        job, created = create_job(s, who, kind="dossier", unit=unit_name, uploads=[],
                                  params={"year": body.year, "criteria_set": body.criteria_set,
                                          "exclude": sorted(set(body.exclude)), "staff": body.staff,
                                          "records": stamp})
        job_id = job.id
    if created:
        enqueue(job_id, 1)
    return _accepted(job_id, created)


@router.get("/jobs", summary="Danh sách công việc (tải lên, in hàng loạt)")
def jobs(who: Who, kind: Annotated[str | None, Query(pattern="^(extract|print_pack|dossier|retrain)$")] = None,
         limit: Annotated[int, Query(ge=1, le=200)] = 50,
         offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> dict[str, Any]:
    who.require("admin", "clerk", "reviewer")
    with session_scope() as s:
        rows, total = list_jobs(s, who, kind=kind, limit=limit, offset=offset)
        return {"items": [job_view(s, j) for j in rows], "total": total}


@router.get("/jobs/{job_id}", summary="Trạng thái và tiến độ một công việc")
def job(who: Who, job_id: str) -> dict[str, Any]:
    who.require("admin", "clerk", "reviewer")
    with session_scope() as s:
        return job_view(s, get_job(s, who, job_id))


@router.get("/jobs/{job_id}/result", summary="Tệp kết quả (PDF in hàng loạt, ZIP hồ sơ cuối năm)",
            responses={200: {"content": {"application/pdf": {}, "application/zip": {}}}})
def job_result(who: Who, job_id: str) -> Response:
    who.require("admin", "clerk", "reviewer")
    with session_scope() as s:
        j = get_job(s, who, job_id)
        sha, kind, params = j.result_sha256, j.kind, dict(j.params)
    if not sha:
        raise NotFoundError("Công việc chưa có tệp kết quả.", code="result_not_ready")
    data = get_file_store().read_bytes(sha)
    if kind == "dossier":
        name, media = f"ho-so-{params.get('year')}-{job_id[:8]}.zip", "application/zip"
    else:
        name, media = f"{params.get('form', 'ket-qua')}-{job_id[:8]}.pdf", "application/pdf"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
