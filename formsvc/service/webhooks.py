"""Webhook subscriptions and the rules for where events may be sent."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from formsvc.db.tables import Delivery, Webhook, utcnow
from formsvc.errors import InputError, NotFoundError
from formsvc.service.auth import Principal
from formsvc.settings import get_settings


class TargetRefused(InputError):
    code = "webhook_target_refused"


@dataclass(frozen=True)
class Target:
    """Where a webhook is sent: the address checked, and the name the receiver expects (Host header, TLS SNI
    and certificate check). Connecting to `address` itself means a second DNS answer can never be used."""

    url: str
    hostname: str
    address: str

    @property
    def connect_url(self) -> str:
        parsed = urlsplit(self.url)
        host = f"[{self.address}]" if ":" in self.address else self.address
        netloc = host + (f":{parsed.port}" if parsed.port else "")
        return urlunsplit(parsed._replace(netloc=netloc))

    @property
    def host_header(self) -> str:
        parsed = urlsplit(self.url)
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return host + (f":{parsed.port}" if parsed.port else "")


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
    64:ff9b::a.b.c.d and 6to4 2002:AABB:CCDD::. A private IPv4 address must not get in dressed as IPv6."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64 or (addr in _V4_COMPATIBLE and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_refused_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified:
        return True
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in _NAT64_LOCAL:
            return True
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            return is_refused_address(embedded)
    return False


def resolve_target(url: str) -> Target:
    """Only http(s) to public addresses: a webhook must not become a way into the server's own network.
    Loopback/private/link-local targets need FORMSVC_WEBHOOK_ALLOW_PRIVATE=true (closed LANs, tests).
    The name is resolved once here; the sender connects to the address returned (DNS rebinding)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TargetRefused("Địa chỉ webhook phải là http:// hoặc https:// kèm tên máy.")
    if parsed.username or parsed.password:
        raise TargetRefused("Địa chỉ webhook không được chứa tên đăng nhập/mật khẩu.")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise TargetRefused(f"Không phân giải được tên máy «{parsed.hostname}».") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"Không phân giải được tên máy «{parsed.hostname}».")
    if not get_settings().webhook_allow_private:
        for addr in addresses:
            if is_refused_address(addr):
                raise TargetRefused(f"Không gửi webhook tới địa chỉ nội bộ {addr} (loopback, mạng riêng, link-local).",
                                    hint="Quản trị có thể cho phép bằng FORMSVC_WEBHOOK_ALLOW_PRIVATE=true.")
    return Target(url=url, hostname=parsed.hostname, address=str(addresses[0]))


def check_target(url: str) -> None:
    resolve_target(url)


def redact_url(url: str) -> str:
    """A webhook URL for logs and error texts: scheme and host only. Paths and queries often carry the
    receiver's own token (…/hooks/T0/B0/XXXX, ?token=…)."""
    try:
        parsed = urlsplit(str(url))
        host = parsed.hostname or "?"
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        return "<url>"
    host = f"[{host}]" if ":" in host else host
    tail = "/…" if (parsed.path not in ("", "/") or parsed.query) else "/"
    return f"{parsed.scheme}://{host}{port}{tail}"


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
