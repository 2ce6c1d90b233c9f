"""API keys, webhook subscriptions and their deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from formsvc.api.deps import forget_cached_keys, principal
from formsvc.api.idempotency import once_only
from formsvc.db.engine import session_scope
from formsvc.db.tables import ApiKey
from formsvc.errors import NotFoundError
from formsvc.service import webhooks as hooks
from formsvc.service.auth import ROLE_LABELS, Principal, create_key, revoke_key

router = APIRouter(prefix="/v1", tags=["admin"])
Who = Annotated[Principal, Depends(principal)]


class KeyIn(BaseModel):
    role: Literal["admin", "clerk", "reviewer", "integration"]
    unit: str | None = Field(default=None, max_length=200)
    name: str = Field(default="", max_length=200)


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000, description="http(s) URL that receives signed JSON events")
    unit: str | None = Field(default=None, max_length=200, description="Unit (admin keys; clerks: own unit)")


class ReplayIn(BaseModel):
    delivery_ids: list[Annotated[int, Field(ge=1, le=2**53)]] | None = Field(default=None, max_length=10000)


@router.get("/me", summary="Khóa đang dùng: vai trò, đơn vị")
def me(who: Who) -> dict[str, Any]:
    return {"key_id": who.key_id, "role": who.role, "role_label": ROLE_LABELS[who.role], "unit": who.unit,
            "name": who.name}


@router.post("/keys", status_code=201, summary="Tạo khóa truy cập (chỉ hiện một lần)")
def key_create(who: Who, body: KeyIn, request: Request) -> JSONResponse:
    who.require("admin")
    once_only(request, "key")
    with session_scope() as s:
        row, token = create_key(s, role=body.role, unit=body.unit, name=body.name)
        out = {"id": row.id, "key": token, "role": row.role, "unit": row.unit, "name": row.name}
    return JSONResponse(status_code=201, content=out)


@router.get("/keys", summary="Danh sách khóa (không có bí mật)")
def key_list(who: Who) -> list[dict[str, Any]]:
    who.require("admin")
    with session_scope() as s:
        return [{"id": k.id, "role": k.role, "unit": k.unit, "name": k.name, "created_at": k.created_at.isoformat(),
                 "revoked": k.revoked_at is not None} for k in s.scalars(select(ApiKey).order_by(ApiKey.created_at))]


@router.delete("/keys/{key_id}", status_code=204, summary="Thu hồi khóa")
def key_revoke(who: Who, key_id: str) -> None:
    who.require("admin")
    with session_scope() as s:
        if not revoke_key(s, key_id):
            raise NotFoundError("Không tìm thấy khóa còn hiệu lực.", code="key_not_found")
    forget_cached_keys()  # this process at once; others within the cache's few seconds


def _hook_view(h: Any) -> dict[str, Any]:
    return {"id": h.id, "url": h.url, "unit": h.unit, "created_at": h.created_at.isoformat()}


@router.post("/webhooks", status_code=201, summary="Đăng ký webhook (trả về khóa ký HMAC một lần)")
def webhook_create(who: Who, body: WebhookIn, request: Request) -> JSONResponse:
    once_only(request, "secret")
    with session_scope() as s:
        hook, secret = hooks.create_webhook(s, who, url=body.url, unit=body.unit)
        out = {**_hook_view(hook), "secret": secret,
               "signature": "X-Formsvc-Signature: sha256=HMAC_SHA256(secret, '<X-Formsvc-Timestamp>.<body>')"}
    return JSONResponse(status_code=201, content=out)


@router.get("/webhooks", summary="Danh sách webhook")
def webhook_list(who: Who) -> list[dict[str, Any]]:
    with session_scope() as s:
        return [_hook_view(h) for h in hooks.list_webhooks(s, who)]


@router.delete("/webhooks/{hook_id}", status_code=204, summary="Hủy webhook")
def webhook_delete(who: Who, hook_id: str) -> None:
    with session_scope() as s:
        hooks.delete_webhook(s, who, hook_id)


@router.get("/webhooks/{hook_id}/deliveries", summary="Các lần gửi sự kiện (lọc theo trạng thái)")
def deliveries(who: Who, hook_id: str,
               status: Literal["pending", "delivered", "dead"] | None = None) -> list[dict[str, Any]]:
    with session_scope() as s:
        return [{"id": d.id, "sequence": d.change_seq, "record_id": d.record_id, "status": d.status,
                 "attempts": d.attempts, "last_error": d.last_error,
                 "next_attempt_at": d.next_attempt_at.isoformat(),
                 "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}
                for d in hooks.list_deliveries(s, who, hook_id, status)]


@router.post("/webhooks/{hook_id}/replay", summary="Gửi lại các sự kiện đã vào hàng chết")
def replay(who: Who, hook_id: str, body: ReplayIn | None = None) -> dict[str, int]:
    with session_scope() as s:
        return {"requeued": hooks.replay(s, who, hook_id, delivery_ids=body.delivery_ids if body else None)}
