"""Plumbing of the web UI's pages (templates, guards, paging), shared by formsvc.web.routes and
formsvc.web.criteria_admin without either importing the other."""


from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from formsvc import __version__
from formsvc.api.deps import COOKIE
from formsvc.db.engine import session_scope
from formsvc.errors import AuthError, FormsvcError
from formsvc.service.auth import ROLE_LABELS, Principal
from formsvc.service.sessions import csrf_token, session_principal
from formsvc.web.format import FORM_KIND_LABELS, JOB_KIND_LABELS, STATUS_LABELS, vn_number, vn_time

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_SIZE = 25
MAX_KEY_CHARS = 500
UPLOAD_ROLES = ("admin", "clerk")
FLASH = {"saved": "Đã lưu các thay đổi và kiểm tra lại bản ghi.", "approved": "Đã duyệt bản ghi.",
         "deleted": "Đã xóa bản ghi cùng ảnh trang, ảnh cắt và lịch sử sửa của nó."}
# No inline script or style anywhere, so the policy can forbid both: injected markup cannot run.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _static_version() -> str:
    """Content hash of the static files, appended to their URLs so a deploy never serves a stale app.js."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted(STATIC_DIR.glob("*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True, undefined=StrictUndefined)  # strict: a typo fails tests, not users
    version = _static_version()
    env.globals["static"] = lambda name: f"/static/{name}?v={version}"
    env.globals["ROLE_LABELS"] = ROLE_LABELS
    env.globals["STATUS_LABELS"] = STATUS_LABELS
    env.globals["JOB_KIND_LABELS"] = JOB_KIND_LABELS
    env.globals["FORM_KIND_LABELS"] = FORM_KIND_LABELS
    env.filters["num"] = vn_number
    env.filters["when"] = vn_time
    return env


templates = Jinja2Templates(env=_environment())


# -- plumbing ------------------------------------------------------------------------------------------------

def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"  # pages carry personal data: never keep them in caches
    return response


def _page(request: Request, template: str, who: Principal | None, *, status: int = 200,
          active: str = "", **context: Any) -> Response:
    session_id = request.cookies.get(COOKIE)
    context.update(who=who, active=active, can_upload=bool(who and who.role in UPLOAD_ROLES),
                   csrf=csrf_token(session_id) if who and session_id else "")
    return _harden(templates.TemplateResponse(request, template, context, status_code=status))


def _error_page(request: Request, who: Principal | None, status: int, message: str,
                hint: str | None = None) -> Response:
    titles = {404: "Không tìm thấy", 403: "Không có quyền", 503: "Hệ thống đang bận"}
    return _page(request, "error.html", who, status=status, title=titles.get(status, "Có lỗi xảy ra"),
                 code=status, message=message, hint=hint)


def _principal(request: Request) -> Principal | None:
    """The user of a page: only the session cookie counts here (a browser never sends the API headers)."""
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    try:
        with session_scope() as s:
            return session_principal(s, session_id)
    except AuthError:
        return None


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
    response.delete_cookie(COOKIE, path="/")  # an ended or unknown session: forget it
    return response


def _safe_next(value: str | None) -> str:
    """Only a local path may be a redirect target (no open redirect via ?next=//evil or a full URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"  # back to the login page after logging in would look like a failed login
    return value


def _same_origin(request: Request) -> bool:
    """Browsers send Origin on POST; a foreign one means another site is posting our forms (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: nothing to compare
    if origin == "null":
        return False  # sandboxed frames and some cross-origin redirects
    # Behind a reverse proxy that rewrites Host, the public name arrives as X-Forwarded-Host.
    hosts = {request.headers.get("host", request.url.netloc), request.headers.get("x-forwarded-host", "")}
    return urlsplit(origin).netloc in hosts - {""}


def _guarded(request: Request, build: Callable[[Principal], Response]) -> Response:
    """Run a page for a logged-in user; expected failures (a record of another unit, the database down)
    become Vietnamese error pages, not the API's JSON."""
    who: Principal | None = None
    try:
        who = _principal(request)
        if who is None:
            return _to_login(request)
        if who.role == "integration":
            return _error_page(request, who, 403, "Khóa tích hợp chỉ dùng cho hệ thống khác, không dùng để đăng nhập.",
                               "Đăng xuất rồi đăng nhập bằng khóa của cán bộ, người duyệt hoặc quản trị.")
        return build(who)
    except FormsvcError as exc:
        return _error_page(request, who, exc.http_status, exc.message, exc.hint)


def _int_arg(request: Request, name: str, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name, "").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:  # "²".isdigit() is True, int("²") fails
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


def _page_links(request: Request, total: int, page: int) -> dict[str, Any]:
    pages = max(1, -(-total // PAGE_SIZE))
    args = {k: v for k, v in request.query_params.items() if k != "page" and v}

    def link(n: int) -> str:
        return request.url.path + "?" + urlencode({**args, "page": n})

    return {"page": page, "pages": pages, "total": total,
            "prev": link(page - 1) if page > 1 else None, "next": link(page + 1) if page < pages else None}


# -- login ---------------------------------------------------------------------------------------------------

