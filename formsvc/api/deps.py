"""Request dependencies: who is calling (API key), the per-key rate limit."""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from fastapi import Request
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from formsvc.db.engine import session_scope
from formsvc.errors import RateLimitError
from formsvc.service.auth import Principal, authenticate
from formsvc.settings import get_settings

log = logging.getLogger(__name__)
COOKIE = "formsvc_key"


def token_of(request: Request) -> str | None:
    s = get_settings()
    token = request.headers.get(s.api_key_header)
    if not token:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
    return token or request.cookies.get(COOKIE)


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


def _authorise(token: str | None) -> Principal:
    who = principal_for_token(token)
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


async def principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    who = await run_in_threadpool(_authorise, token_of(request))  # one hop to the thread pool, not two
    request.state.principal = who
    return who
