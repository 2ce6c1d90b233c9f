"""Pure-ASGI guard on the nesting depth of JSON request bodies.

Python's json parser recurses once per level: a body of 100,000 '[' (100 KB) ends in RecursionError, which
FastAPI turns into a plain-text 500. The body is scanned as it arrives, before anything parses it; past
`max_json_depth` levels the request gets a 422 with a code. A record needs 4 levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from formsvc.api.limits import carries_body
from formsvc.settings import get_settings

# Only these bytes matter to depth: brackets, and quotes/backslashes to know when a bracket is inside a string.
_TOKENS = re.compile(rb'[\[\]{}"\\]')
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = b"[{", b"]}", ord('"'), ord("\\")


class DepthScanner:
    """Incremental: feed the body in any pieces; `feed` returns False once the depth passes the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self.in_string = False
        self._escape_first = False  # the previous piece ended in a backslash inside a string

    def feed(self, chunk: bytes) -> bool:
        escaped = 0 if self._escape_first else -1  # position of a character taken by a backslash
        self._escape_first = False
        for match in _TOKENS.finditer(chunk):
            i = match.start()
            if i == escaped:
                continue
            c = chunk[i]
            if self.in_string:
                if c == _BACKSLASH:
                    if i + 1 == len(chunk):
                        self._escape_first = True
                    else:
                        escaped = i + 1
                elif c == _QUOTE:
                    self.in_string = False
            elif c == _QUOTE:
                self.in_string = True
            elif c in _OPEN:
                self.depth += 1
                if self.depth > self.limit:
                    return False
            elif c in _CLOSE:
                self.depth -= 1
        return True


def _is_json(scope: Scope) -> bool:
    """FastAPI parses a body as JSON when it says so, and also when it declares no type at all."""
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return b"json" in value.lower()
    return True


class JsonDepthLimit:
    """Reads a JSON body whole (inside BodyLimit, so bounded), scanning it; hands it on only when shallow.

    Refusing from inside the app is not possible: FastAPI turns any error raised while it reads the body into
    a 400 "error parsing the body"."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not carries_body(scope) or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_json_depth
        scanner = DepthScanner(limit)
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            if not scanner.feed(message.get("body", b"")):
                await _refuse(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"code": "json_too_deep",
                       "message": f"Dữ liệu JSON lồng nhau quá {limit} tầng; không xử lý.",
                       "hint": "Gửi bản ghi theo đúng cấu trúc trong tài liệu API (chỉ vài tầng lồng nhau)."},
                      ensure_ascii=False).encode()
    headers: list[Any] = [(b"content-type", b"application/json; charset=utf-8"),
                          (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})
