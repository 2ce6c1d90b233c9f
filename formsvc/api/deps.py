"""Request dependencies: who is calling (API key), the per-key rate limit."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from urllib.parse import urlsplit

from fastapi import Request
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from formsvc.db.engine import session_scope
from formsvc.errors import AuthError, ForbiddenError, RateLimitError
from formsvc.service.auth import Principal, authenticate
from formsvc.settings import get_settings

log = logging.getLogger(__name__)
COOKIE = "formsvc_session"  # a web session id (formsvc.service.sessions), never an API key
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_of(request: Request) -> str | None:
    """The API key sent in a header; the web UI's cookie is a session, handled apart."""
    s = get_settings()
    token = request.headers.get(s.api_key_header)
    if not token:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
    return token or None


def same_origin(request: Request) -> bool:
    """True when the browser says the request comes from one of our own pages (Origin is set by the browser
    on every cross-origin request and on same-origin POSTs; a page of another site cannot forge it)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    # Behind a reverse proxy that rewrites Host, the public name arrives as X-Forwarded-Host.
    ours = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", ""),
            urlsplit(get_settings().public_url).netloc}
    return urlsplit(origin).netloc in ours - {""}


_CACHE_TTL_S = 10.0
_CACHE_MAX = 4096
_cache: dict[str, tuple[float, Principal]] = {}
_cache_lock = threading.Lock()


def principal_for_token(token: str | None) -> Principal:
    """Key lookups are cached for a few seconds per process (keyed by the key's hash, never the key): one
    database round trip less per request. A revoked key stops working within _CACHE_TTL_S."""
    if not token:
        with session_scope() as s:
            return authenticate(s, token)
    digest = hashlib.sha256(token.encode()).hexdigest()
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None and now - hit[0] < _CACHE_TTL_S:
        return hit[1]
    with session_scope() as s:
        who = authenticate(s, token)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[digest] = (now, who)
    return who


def forget_cached_keys() -> None:
    with _cache_lock:
        _cache.clear()


def client_address(request: Request) -> str:
    """The caller's address (behind a reverse proxy, uvicorn puts the X-Forwarded-For client here)."""
    return request.client.host if request.client else "unknown"


def _failure_key(address: str) -> str:
    return f"formsvc:authfail:{hashlib.sha256(address.encode()).hexdigest()[:32]}:{int(time.time() // 60)}"


def refuse_if_throttled(address: str) -> None:
    """An address that sent too many wrong keys this minute is refused before its key is even looked at:
    keys cannot be guessed at database speed, and a flood of wrong keys costs the database nothing."""
    from formsvc.service.queue import get_redis

    limit = get_settings().auth_failures_per_minute
    if limit <= 0:
        return
    try:
        failures = int(get_redis().get(_failure_key(address)) or 0)
    except RedisError as exc:
        log.warning("login throttle skipped, Redis unavailable: %s", type(exc).__name__)
        return
    if failures >= limit:
        retry = 60 - int(time.time()) % 60
        raise RateLimitError(f"Có quá nhiều lần dùng khóa sai từ địa chỉ này; thử lại sau {retry} giây.",
                             code="auth_throttled", hint="Kiểm tra lại khóa truy cập trước khi thử tiếp.",
                             detail={"retry_after": retry})


def note_auth_failure(address: str) -> None:
    from formsvc.service.queue import get_redis

    try:
        pipe = get_redis().pipeline()
        pipe.incr(_failure_key(address))
        pipe.expire(_failure_key(address), 120)
        pipe.execute()
    except RedisError as exc:
        log.warning("login failure not counted, Redis unavailable: %s", type(exc).__name__)


def _authorise(token: str | None, address: str) -> Principal:
    refuse_if_throttled(address)
    try:
        who = principal_for_token(token)
    except AuthError as exc:
        if exc.code != "auth_missing":
            note_auth_failure(address)
        raise
    _rate_limit(who)
    return who


def _rate_limit(who: Principal) -> None:
    """Fixed one-minute windows in Redis, shared by every API process. Redis down: requests pass (logged)."""
    from formsvc.service.queue import get_redis

    limit = get_settings().rate_limit_per_minute
    if limit <= 0:
        return
    window = int(time.time() // 60)
    key = f"formsvc:rl:{who.key_id}:{window}"
    try:
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = int(pipe.execute()[0])
    except RedisError as exc:
        log.warning("rate limit skipped, Redis unavailable: %s", type(exc).__name__)
        return
    if count > limit:
        retry = 60 - int(time.time()) % 60
        raise RateLimitError(f"Quá {limit} yêu cầu mỗi phút cho khóa này; thử lại sau {retry} giây.",
                          detail={"retry_after": retry})


def _authorise_session(session_id: str, change: bool, csrf: str | None, origin_ok: bool) -> Principal:
    """A web UI request: the session must be live, and a change must carry the page's CSRF token or come
    from our own origin (SameSite=Strict alone lets a sibling sub-domain's page post with the cookie)."""
    from formsvc.service.sessions import csrf_ok, session_principal

    with session_scope() as s:
        who = session_principal(s, session_id)
    if change and not (csrf_ok(session_id, csrf) or origin_ok):
        raise ForbiddenError("Yêu cầu thay đổi dữ liệu không đến từ trang của hệ thống nên bị từ chối.",
                             code="csrf_failed", hint="Tải lại trang rồi thử lại.")
    _rate_limit(who)
    return who


async def principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    token = token_of(request)
    session_id = request.cookies.get(COOKIE)
    if token is None and session_id:
        who = await run_in_threadpool(_authorise_session, session_id, request.method not in SAFE_METHODS,
                                      request.headers.get(CSRF_HEADER), same_origin(request))
        request.state.principal = who
        return who
    # One hop to the thread pool, not two.
    who = await run_in_threadpool(_authorise, token, client_address(request))
    request.state.principal = who
    return who
