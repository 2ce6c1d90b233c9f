"""Request dependencies: who is calling (API key), the per-key rate limit."""

from __future__ import annotations

import logging
import time

from fastapi import Request
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from formsvc.db.engine import session_scope
from formsvc.errors import FormsvcError
from formsvc.service.auth import Principal, authenticate
from formsvc.settings import get_settings

log = logging.getLogger(__name__)
COOKIE = "formsvc_key"


class RateLimited(FormsvcError):
    code = "rate_limited"
    http_status = 429


def token_of(request: Request) -> str | None:
    s = get_settings()
    token = request.headers.get(s.api_key_header)
    if not token:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
    return token or request.cookies.get(COOKIE)


def _authenticate(token: str | None) -> Principal:
    with session_scope() as s:
        return authenticate(s, token)


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
        raise RateLimited(f"Quá {limit} yêu cầu mỗi phút cho khóa này; thử lại sau {retry} giây.",
                          detail={"retry_after": retry})


async def principal(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    who = await run_in_threadpool(_authenticate, token_of(request))
    await run_in_threadpool(_rate_limit, who)
    request.state.principal = who
    return who
