"""Access log without query strings: URLs can carry names (`?q=Nguyễn…`), and personal data stays out of logs.
Keys are never logged; the key id (not secret) says who called."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("formsvc.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            principal = scope.get("state", {}).get("principal")
            who = getattr(principal, "key_id", "-")
            client = (scope.get("client") or ("-", 0))[0]
            log.info("%s %s %s %d %.1fms key=%s", client, scope["method"], scope["path"], status,
                     (time.perf_counter() - started) * 1000, who)
