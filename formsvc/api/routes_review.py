"""The review queue (flagged score boxes across records), confirming one box, and retraining the recogniser on
what reviewers confirmed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from formsvc.api.deps import principal
from formsvc.api.routes_records import _full
from formsvc.db.engine import session_scope
from formsvc.service import review_queue as rq
from formsvc.service.auth import Principal

router = APIRouter(prefix="/v1", tags=["review"])
Who = Annotated[Principal, Depends(principal)]


class ConfirmIn(BaseModel):
    field: str = Field(max_length=120, description="scores.<indicator> or total_declared")
    value: float | None = Field(ge=0, le=1000, description="The value in the box; null for an empty box")
    version: int | None = Field(default=None, description="The version you saw; 409 if it changed since")


@router.get("/review/queue", summary="Ô cần kiểm tra: các ô điểm bị đánh dấu của mọi bản ghi, lần lượt")
def review_queue(who: Who, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    with session_scope() as s:
        items, total = rq.queue(s, who, limit=limit)
        return {"items": [i.as_json() for i in items], "total": total}


@router.post("/records/{record_id}/confirm", summary="Xác nhận (hoặc sửa) giá trị một ô điểm; được giữ để máy học")
def confirm(who: Who, record_id: str, body: ConfirmIn) -> dict[str, Any]:
    with session_scope() as s:
        return _full(rq.confirm(s, who, record_id, body.field, body.value, expected_version=body.version))


@router.get("/admin/digits", summary="Nhận dạng chữ số: số ô đã xác nhận, mô hình đang dùng, lần học gần nhất")
def digits_status(who: Who) -> dict[str, Any]:
    from formsvc.service import retrain

    who.require("admin")
    return retrain.status()


@router.post("/admin/digits/retrain", status_code=202,
             summary="Học lại từ các ô người duyệt đã xác nhận (một công việc chạy nền; mô hình kém hơn bị từ chối)")
def digits_retrain(who: Who) -> dict[str, Any]:
    from formsvc.service import retrain

    who.require("admin")
    job_id = retrain.start_job(who)
    return {"running": True, "job_id": job_id, "job_url": f"/v1/jobs/{job_id}"}
