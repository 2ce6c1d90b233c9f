"""Loading an official appendix: upload it, read the diff, accept or reject (administrators)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import JSONResponse

from formsvc.api.deps import principal
from formsvc.errors import LimitError
from formsvc.service import criteria_imports as flow
from formsvc.service.auth import Principal
from formsvc.service.jobs import safe_filename
from formsvc.settings import get_settings
from formsvc.storage import get_file_store

router = APIRouter(prefix="/v1/criteria-imports", tags=["criteria"])
Who = Annotated[Principal, Depends(principal)]


def _admin(who: Who) -> Principal:
    """The role is checked as a dependency, before the upload's fields are validated: anyone else gets 403,
    never a hint about what the form expects."""
    who.require("admin")
    return who


Admin = Annotated[Principal, Depends(_admin)]


@router.post("", status_code=201, summary="Nhập văn bản chính thức (Word/PDF) của một bộ tiêu chí; trả về so sánh")
def create(who: Admin, file: Annotated[UploadFile, File(description="Phụ lục chính thức: .docx hoặc .pdf")],
           base: Annotated[str | None, Form(max_length=80, description="Bộ tiêu chí gốc (mặc định: tự nhận)")] = None,
           ) -> JSONResponse:
    limit = get_settings().max_upload_bytes
    file.file.seek(0, 2)
    if file.file.tell() > limit:
        raise LimitError(f"Tệp lớn hơn giới hạn {limit // (1024 * 1024)} MB.", code="file_too_large")
    file.file.seek(0)
    store = get_file_store()
    sha, _ = store.put_stream(file.file, limit=limit)  # the official file is kept: its SHA-256 is the set's source
    name = safe_filename(file.filename, "phu-luc")
    return JSONResponse(status_code=201, content=flow.start_import(who, store.path(sha), name, base))


@router.get("/{token}", summary="Bản nhập đang chờ duyệt và so sánh với bản hiện hành")
def show(who: Who, token: str) -> dict[str, Any]:
    return flow.pending_import(who, token)


@router.post("/{token}/accept", summary="Chấp nhận: lưu thành phiên bản mới, dùng ngay")
def accept(who: Who, token: str) -> dict[str, Any]:
    return flow.accept_import(who, token)


@router.post("/{token}/reject", status_code=204, summary="Từ chối: không thay đổi gì")
def reject(who: Who, token: str) -> None:
    flow.reject_import(who, token)
