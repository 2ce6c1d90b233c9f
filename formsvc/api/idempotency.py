"""Idempotency-Key on every POST: the first response for (API key, Idempotency-Key) is stored and replayed
for retries, so a client that lost a response can safely send the same request again.

The fingerprint is method + path + query, plus the body for JSON requests (multipart bodies carry a random
boundary per send, and an upload is made idempotent by its content hash anyway).

Secrets are never stored: a route whose answer holds one (a new API key, a webhook's signing secret) names
those fields with `once_only(request, ...)`, and what is stored and replayed is the answer without them, plus
a Vietnamese note that the secret is shown once. Entries expire after FORMSVC_IDEMPOTENCY_TTL_S (the
dispatcher's janitor deletes them; an expired one is never replayed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from formsvc.api.deps import principal_for_token, token_of
from formsvc.db.engine import session_scope
from formsvc.db.tables import IdempotencyEntry, utcnow
from formsvc.errors import FormsvcError
from formsvc.settings import get_settings

HEADER = "idempotency-key"
MAX_STORED_BODY = 4 * 1024 * 1024
_SECRET_FIELDS = "formsvc_secret_fields"
REDACTED_NOTE = ("Đây là câu trả lời lặp lại (cùng Idempotency-Key): khóa bí mật chỉ hiện một lần, trong câu trả "
                 "lời đầu tiên, và không được lưu. Nếu đã mất, hãy thu hồi rồi tạo mới.")


def once_only(request: Request, *fields: str) -> None:
    """Mark fields of this request's JSON answer as secrets shown once: never stored for a replay."""
    setattr(request.state, _SECRET_FIELDS, fields)


def redacted(body: bytes, fields: tuple[str, ...]) -> bytes:
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return b""  # not the JSON the route promised: store nothing rather than a secret
    if isinstance(data, dict):
        for name in fields:
            if name in data:
                data[name] = None
        data["secret_redacted"] = True
        data["note"] = REDACTED_NOTE
    return json.dumps(data, ensure_ascii=False).encode()


def _expiry_cutoff() -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=get_settings().idempotency_ttl_s)


def purge_expired() -> int:
    """Delete entries older than the TTL (the dispatcher's janitor calls this); returns how many."""
    with session_scope() as s:
        result = s.execute(delete(IdempotencyEntry).where(IdempotencyEntry.created_at < _expiry_cutoff()))
        return int(getattr(result, "rowcount", 0) or 0)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "message": message})


def _begin(token: str | None, key: str, fingerprint: str) -> tuple[str, IdempotencyEntry | None]:
    """(key id, None) when this request owns the Idempotency-Key now; (key id, entry) for a stored or running one."""
    who = principal_for_token(token)
    try:
        with session_scope() as s:
            s.add(IdempotencyEntry(key_id=who.key_id, idem_key=key, fingerprint=fingerprint, state="pending",
                                   created_at=utcnow()))
        return who.key_id, None
    except IntegrityError:
        # A request that died half-way (process killed) leaves its entry pending: after a while a retry takes
        # it over, or the key would be blocked for good. Compare-and-set, so only one retry wins.
        cutoff = utcnow() - dt.timedelta(seconds=get_settings().idempotency_pending_s)
        with session_scope() as s:
            taken = s.execute(update(IdempotencyEntry).where(
                IdempotencyEntry.key_id == who.key_id, IdempotencyEntry.idem_key == key,
                IdempotencyEntry.state == "pending", IdempotencyEntry.fingerprint == fingerprint,
                IdempotencyEntry.created_at < cutoff).values(created_at=utcnow()))
            if getattr(taken, "rowcount", 0) == 1:
                return who.key_id, None
            # Expired (the janitor has not got to it yet): a new request, whatever the old one was.
            taken = s.execute(update(IdempotencyEntry).where(
                IdempotencyEntry.key_id == who.key_id, IdempotencyEntry.idem_key == key,
                IdempotencyEntry.created_at < _expiry_cutoff()).values(
                    created_at=utcnow(), state="pending", fingerprint=fingerprint, status_code=None, media_type=None,
                    body=None))
            if getattr(taken, "rowcount", 0) == 1:
                return who.key_id, None
        with session_scope() as s:
            entry = s.get(IdempotencyEntry, (who.key_id, key))
            if entry is not None:
                s.expunge(entry)
            return who.key_id, entry


def _finish(key_id: str, key: str, status: int, media_type: str | None, body: bytes) -> None:
    with session_scope() as s:
        entry = s.get(IdempotencyEntry, (key_id, key))
        if entry is None:
            return
        if status >= 500 or len(body) > MAX_STORED_BODY:
            s.delete(entry)  # a failure is not an answer: let the client retry for real
            return
        entry.state, entry.status_code, entry.media_type, entry.body = "done", status, media_type, body


def _forget(key_id: str, key: str) -> None:
    with session_scope() as s:
        s.execute(delete(IdempotencyEntry).where(IdempotencyEntry.key_id == key_id, IdempotencyEntry.idem_key == key))


class IdempotencyMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return await call_next(request)
        key = key.strip()
        if not key or len(key) > 200:
            return _error(422, "idempotency_key_invalid", "Idempotency-Key phải có từ 1 đến 200 ký tự.")
        h = hashlib.sha256(f"{request.method} {request.url.path}?{request.url.query}".encode())
        if request.headers.get("content-type", "").startswith("application/json"):
            h.update(await request.body())
        fingerprint = h.hexdigest()
        try:
            key_id, entry = await run_in_threadpool(_begin, token_of(request), key, fingerprint)
        except FormsvcError:
            return await call_next(request)  # unauthenticated: the route answers 401 itself
        if entry is not None:
            if entry.fingerprint != fingerprint:
                return _error(422, "idempotency_key_reused",
                              "Idempotency-Key này đã dùng cho một yêu cầu khác; hãy dùng khóa mới.")
            if entry.state != "done" or entry.status_code is None:
                busy = _error(409, "idempotency_in_progress",
                              "Yêu cầu với Idempotency-Key này đang được xử lý; thử lại sau giây lát.")
                busy.headers["Retry-After"] = "2"
                return busy
            return Response(entry.body or b"", status_code=entry.status_code, media_type=entry.media_type,
                            headers={"Idempotent-Replayed": "true"})
        try:
            response = await call_next(request)
            body = b""
            async for chunk in response.body_iterator:  # type: ignore[attr-defined]
                body += chunk if isinstance(chunk, bytes) else chunk.encode()
        except BaseException:
            await run_in_threadpool(_forget, key_id, key)
            raise
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)}
        secrets_: tuple[str, ...] | None = getattr(request.state, _SECRET_FIELDS, None)
        stored = redacted(body, secrets_) if secrets_ else body
        await run_in_threadpool(_finish, key_id, key, response.status_code, response.media_type
                                or response.headers.get("content-type"), stored)
        return Response(body, status_code=response.status_code, headers=headers)
