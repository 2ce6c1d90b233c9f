"""What GET /v1/health reports: whether the database, Redis, the Tesseract models and the workers are there.

Public (load balancers and monitors call it without a key), so it says yes/no and counts only: never an address,
a path, a version of a dependency or an error's text (which could name a host).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import text

from formsvc.settings import get_settings

MODELS = ("vie", "eng", "osd")  # what extraction loads (page text, the id line and numbers, page orientation)


def _database() -> dict[str, Any]:
    from formsvc.db.engine import session_scope

    with session_scope() as s:
        s.execute(text("SELECT 1"))
    return {"ok": True}


def _redis() -> dict[str, Any]:
    from formsvc.service.queue import get_redis

    return {"ok": bool(get_redis().ping())}


def _workers() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """rq's registered workers of formsvc's queue (rq drops a worker that stopped sending heartbeats), with the
    warm state each published when it started (service.warm)."""
    from rq import Worker

    from formsvc.service.queue import get_queue, get_redis
    from formsvc.service.warm import WARM_KEY

    workers = Worker.all(queue=get_queue())
    states = []
    for w in workers:
        raw = get_redis().get(WARM_KEY.format(w.name))
        states.append(json.loads(raw) if raw else {})
    busy = sum(1 for w in workers if w.get_state() == "busy")
    return {"ok": bool(workers), "count": len(workers), "busy": busy}, states


def _models(states: list[dict[str, Any]]) -> dict[str, Any]:
    folder = Path(get_settings().tessdata_dir)
    files = all((folder / f"{m}.traineddata").is_file() for m in MODELS)
    out: dict[str, Any] = {"ok": files, "files": files}
    if states:
        loaded = sum(1 for st in states if st.get("engines", 0) > 0)
        out["workers_loaded"] = loaded
        if get_settings().worker_warm_up:
            out["ok"] = files and loaded == len(states)
    return out


def _safe(check: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result: dict[str, Any] = check()
    except Exception as exc:  # a check that fails says so; its text is not shown (it may name a host)
        result = {"ok": False, "reason": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


def _workers_and_models() -> dict[str, dict[str, Any]]:
    states: list[dict[str, Any]] = []

    def workers() -> dict[str, Any]:
        nonlocal states
        found, states = _workers()
        return found

    found = _safe(workers)
    return {"workers": found, "tesseract_models": _safe(lambda: _models(states))}


# Its own threads: a health check must answer while the API's thread pool is full (that is when it is asked).
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
_cache: tuple[float, str, dict[str, Any]] | None = None
CACHE_S = 1.0  # monitors and load balancers poll often; the checks run at most once a second


async def report() -> dict[str, Any]:
    """All checks at once, each given up after FORMSVC_HEALTH_TIMEOUT_S (then it counts as down)."""
    global _cache
    settings = get_settings()
    where = f"{settings.resolved_database_url}|{settings.redis_url}|{settings.queue_name}"
    if _cache is not None and _cache[1] == where and time.monotonic() - _cache[0] < CACHE_S:
        return _cache[2]
    loop = asyncio.get_running_loop()
    timeout = get_settings().health_timeout_s

    async def run(fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(loop.run_in_executor(_POOL, fn), timeout)
        except TimeoutError:
            return None

    db, redis, rest = await asyncio.gather(run(lambda: _safe(_database)), run(lambda: _safe(_redis)),
                                           run(_workers_and_models))
    late = {"ok": False, "reason": "timeout"}
    checks = {"database": db or late, "redis": redis or late,
              **(rest or {"workers": late, "tesseract_models": late})}
    out = {"status": "ok" if all(c["ok"] for c in checks.values()) else "degraded", "checks": checks}
    _cache = (time.monotonic(), where, out)
    return out
