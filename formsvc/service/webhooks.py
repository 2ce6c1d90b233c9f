"""Webhook subscriptions and the rules for where events may be sent."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import uuid
from urllib.parse import urlparse

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from formsvc.db.tables import Delivery, Webhook, utcnow
from formsvc.errors import InputError, NotFoundError
from formsvc.service.auth import Principal
from formsvc.settings import get_settings


class TargetRefused(InputError):
    code = "webhook_target_refused"


def check_target(url: str) -> None:
    """Only http(s) to public addresses: a webhook must not become a way into the server's own network.
    Loopback/private/link-local targets need FORMSVC_WEBHOOK_ALLOW_PRIVATE=true (closed LANs, tests)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TargetRefused("Địa chỉ webhook phải là http:// hoặc https:// kèm tên máy.")
    if parsed.username or parsed.password:
        raise TargetRefused("Địa chỉ webhook không được chứa tên đăng nhập/mật khẩu.")
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"Không phân giải được tên máy «{parsed.hostname}».") from exc
    if get_settings().webhook_allow_private:
        return
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global or addr.is_multicast:
            raise TargetRefused(f"Không gửi webhook tới địa chỉ nội bộ {addr} (loopback, mạng riêng, link-local).",
                                hint="Quản trị có thể cho phép bằng FORMSVC_WEBHOOK_ALLOW_PRIVATE=true.")


def create_webhook(session: Session, who: Principal, *, url: str, unit: str | None) -> tuple[Webhook, str]:
    who.require("admin", "clerk")
    if who.unit is not None:
        if unit and unit != who.unit:
            raise NotFoundError("Không tìm thấy đơn vị.", code="unit_not_found")
        unit = who.unit
    check_target(url)
    secret = secrets.token_urlsafe(32)
    hook = Webhook(id=uuid.uuid4().hex, unit=(unit or None), url=url, secret=secret, key_id=who.key_id,
                   created_at=utcnow())
    session.add(hook)
    session.flush()
    return hook, secret


def get_webhook(session: Session, who: Principal, hook_id: str) -> Webhook:
    who.require("admin", "clerk")
    hook = session.get(Webhook, hook_id) if len(hook_id) <= 32 else None
    if hook is None or not hook.active or (who.unit is not None and hook.unit != who.unit):
        raise NotFoundError("Không tìm thấy webhook.", code="webhook_not_found")
    return hook


def list_webhooks(session: Session, who: Principal) -> list[Webhook]:
    who.require("admin", "clerk")
    stmt = select(Webhook).where(Webhook.active.is_(True))
    if who.unit is not None:
        stmt = stmt.where(Webhook.unit == who.unit)
    return list(session.scalars(stmt.order_by(Webhook.created_at)))


def delete_webhook(session: Session, who: Principal, hook_id: str) -> None:
    hook = get_webhook(session, who, hook_id)
    hook.active = False
    session.execute(update(Delivery).where(Delivery.webhook_id == hook.id, Delivery.status == "pending")
                    .values(status="dead", last_error="webhook đã bị xóa"))


def list_deliveries(session: Session, who: Principal, hook_id: str, status: str | None,
                    limit: int = 100) -> list[Delivery]:
    hook = get_webhook(session, who, hook_id)
    stmt = select(Delivery).where(Delivery.webhook_id == hook.id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    return list(session.scalars(stmt.order_by(Delivery.change_seq).limit(limit)))


def replay(session: Session, who: Principal, hook_id: str, *, delivery_ids: list[int] | None = None) -> int:
    """Put dead-lettered deliveries (all, or the ones named) back in the queue; returns how many."""
    hook = get_webhook(session, who, hook_id)
    stmt = update(Delivery).where(Delivery.webhook_id == hook.id, Delivery.status == "dead")
    if delivery_ids:
        stmt = stmt.where(Delivery.id.in_(delivery_ids))
    result = session.execute(stmt.values(status="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None,
                                         lease_owner=None))
    return int(getattr(result, "rowcount", 0) or 0)
