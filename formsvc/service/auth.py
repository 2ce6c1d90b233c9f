"""API keys and who may do what.

Keys look like `fsk_<id>_<secret>`; only SHA-256 of the whole key is stored. Roles:
- admin: everything, every unit;
- clerk: its own unit only (upload, print, read, webhooks of the unit); no corrections or approvals;
- reviewer: read, correct and approve records (of its unit when it has one);
- integration: read the record feed and single records only (of its unit when it has one); every read is audited.
The route-by-route table is in README.md (Security), and tests/test_security_net.py checks the code against it.
A key never learns that another unit's object exists: those are 404, not 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from formsvc.db.tables import ApiKey, utcnow
from formsvc.errors import AuthError, ForbiddenError, InputError

Role = Literal["admin", "clerk", "reviewer", "integration"]
ROLES: tuple[Role, ...] = ("admin", "clerk", "reviewer", "integration")
ROLE_LABELS: dict[str, str] = {"admin": "Quản trị", "clerk": "Cán bộ đơn vị", "reviewer": "Người duyệt",
                               "integration": "Hệ thống tích hợp"}


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    unit: str | None
    name: str

    def sees(self, unit: str | None) -> bool:
        return self.unit is None or self.unit == unit

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise ForbiddenError("Khóa truy cập này không có quyền thực hiện thao tác này.",
                                 hint=f"Cần vai trò: {', '.join(ROLE_LABELS[r] for r in roles)}.")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(session: Session, *, role: str, unit: str | None, name: str) -> tuple[ApiKey, str]:
    """Make a key; the plaintext is returned once and never stored."""
    if role not in ROLES:
        raise InputError(f"Vai trò '{role}' không hợp lệ (chọn: {', '.join(ROLES)}).", code="role_invalid")
    if role == "clerk" and not unit:
        raise InputError("Khóa của cán bộ đơn vị phải gắn với một đơn vị.", code="unit_required")
    if role == "admin" and unit:
        raise InputError("Khóa quản trị không gắn với đơn vị.", code="unit_not_allowed")
    key_id = secrets.token_hex(6)
    token = f"fsk_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(id=key_id, key_hash=_hash(token), role=role, unit=(unit or "").strip() or None,
                 name=name.strip() or ROLE_LABELS[role])
    session.add(row)
    session.flush()
    return row, token


def authenticate(session: Session, token: str | None) -> Principal:
    if not token:
        raise AuthError("Chưa có khóa truy cập.", code="auth_missing",
                        hint="Gửi khóa trong tiêu đề X-API-Key hoặc Authorization: Bearer.")
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "fsk":
        raise AuthError("Khóa truy cập không hợp lệ.", code="auth_invalid")
    row = session.get(ApiKey, parts[1])
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _hash(token.strip())):
        raise AuthError("Khóa truy cập không hợp lệ hoặc đã bị thu hồi.", code="auth_invalid")
    return Principal(key_id=row.id, role=row.role, unit=row.unit, name=row.name)  # type: ignore[arg-type]


def ensure_admin_key(session: Session) -> str | None:
    """The first admin key, made when there is none; None when an admin key already exists."""
    exists = session.scalar(select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1))
    if exists:
        return None
    return create_key(session, role="admin", unit=None, name="Quản trị đầu tiên")[1]


def revoke_key(session: Session, key_id: str) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
