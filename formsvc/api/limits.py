"""Pure-ASGI guard on request body size: refuses early (by Content-Length) or mid-stream (chunked bodies),
before the multipart parser spools a huge body to disk."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from formsvc.settings import get_settings

BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


def carries_body(scope: Scope) -> bool:
    """An HTTP request whose method may carry a body: the only ones the body guards look at."""
    return scope["type"] == "http" and scope["method"] not in BODYLESS


class _TooLarge(Exception):
    pass


def _body(limit: int) -> bytes:
    return json.dumps({"code": "body_too_large",
                       "message": f"Dữ liệu gửi lên lớn hơn giới hạn {limit // (1024 * 1024)} MB.",
                       "hint": "Chia thành nhiều lần tải lên nhỏ hơn."}, ensure_ascii=False).encode()


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not carries_body(scope):
            await self.app(scope, receive, send)
            return
        s = get_settings()
        limit = s.max_upload_bytes + 64 * 1024  # multipart framing on top of the files themselves
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    body = _body(limit)
    headers: list[Any] = [(b"content-type", b"application/json; charset=utf-8"),
                          (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AuthFirst:
    """Uploads (multipart bodies) are authenticated before a byte of the body is read: FastAPI parses form
    bodies before running dependencies, so without this an anonymous client could make the server spool
    50 MB to disk per request. The principal found is left in request.state for the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not carries_body(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        from formsvc.api.deps import principal
        from formsvc.errors import FormsvcError

        try:
            await principal(Request(scope))
        except FormsvcError as exc:
            await _send_error(send, exc)
            return
        await self.app(scope, receive, send)


async def _send_error(send: Send, exc: Any) -> None:
    body = json.dumps(exc.to_dict(), ensure_ascii=False).encode()
    headers: list[Any] = [(b"content-type", b"application/json; charset=utf-8"),
                          (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    if exc.http_status in (429, 503):
        headers.append((b"retry-after", str(exc.detail.get("retry_after", 5)).encode()))
    if exc.http_status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
