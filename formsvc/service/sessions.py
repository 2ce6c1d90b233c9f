"""Web UI sessions: logging in with an API key makes a server-side session; the browser gets only its id.

The cookie never holds the key (a stolen cookie dies at logout or expiry; the key lives on in the user's
hands only). Only SHA-256 of the id is stored. Requests that change something and are authenticated by the
cookie must also prove they come from our own pages: the CSRF token (derived from the session id, so a page
of another site cannot know it) or a same-origin Origin header.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from formsvc.db.tables import ApiKey, WebSession, utcnow
from formsvc.errors import AuthError
from formsvc.service.auth import Principal
from formsvc.settings import get_settings

MAX_ID_CHARS = 100


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(session: Session, who: Principal) -> str:
    """A new session for `who`; returns its id (the cookie value), which is never stored."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(id_hash=_hash(session_id), key_id=who.key_id, created_at=now,
                           expires_at=now + dt.timedelta(seconds=get_settings().session_ttl_s)))
    session.flush()
    return session_id


def session_principal(session: Session, session_id: str | None) -> Principal:
    """Who a session id belongs to; AuthError when it is unknown, expired, logged out or its key revoked."""
    if not session_id or len(session_id) > MAX_ID_CHARS:
        raise AuthError("Chưa đăng nhập.", code="auth_missing")
    row = session.get(WebSession, _hash(session_id))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise AuthError("Phiên đăng nhập đã hết hạn hoặc đã đăng xuất; hãy đăng nhập lại.", code="session_invalid")
    key = session.get(ApiKey, row.key_id)
    if key is None or key.revoked_at is not None:
        raise AuthError("Khóa truy cập của phiên này đã bị thu hồi.", code="session_invalid")
    return Principal(key_id=key.id, role=key.role, unit=key.unit, name=key.name)  # type: ignore[arg-type]


def revoke_session(session: Session, session_id: str | None) -> bool:
    if not session_id or len(session_id) > MAX_ID_CHARS:
        return False
    row = session.get(WebSession, _hash(session_id))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True


def purge_sessions(session: Session) -> int:
    """Delete sessions that ended more than a day ago (the janitor's job); returns how many."""
    cutoff = utcnow() - dt.timedelta(days=1)
    result = session.execute(delete(WebSession).where(
        or_(WebSession.expires_at < cutoff, WebSession.revoked_at < cutoff)))
    return int(getattr(result, "rowcount", 0) or 0)


def csrf_token(session_id: str) -> str:
    """The token our pages send with every change: derived from the session id (which scripts and other
    sites cannot read: the cookie is HttpOnly), so nothing more needs storing."""
    return hmac.new(session_id.encode(), b"formsvc-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_id: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(session_id), str(token))
