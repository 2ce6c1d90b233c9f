"""Server-rendered Vietnamese web UI: login, home, forms and print packs, uploads, records, jobs, review.

Pages are rendered here from the service layer (the same functions the API uses, so unit isolation is the
service's job, not ours). Everything that changes data is done by app.js calling the JSON API with the
session cookie and the page's CSRF token, which `formsvc.api.deps.principal` accepts: one write path, one set
of rules and error messages. Logging in makes a server-side session (formsvc.service.sessions); the cookie
holds only its random id, never the API key.

None of these routes is part of the public API, so none appears in the OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from formsvc import __version__
from formsvc.api.deps import COOKIE, client_address, note_auth_failure, refuse_if_throttled, same_origin
from formsvc.db.engine import session_scope
from formsvc.db.tables import ApiKey
from formsvc.errors import AuthError, FormsvcError
from formsvc.service.auth import ROLE_LABELS, Principal, authenticate
from formsvc.service.sessions import create_session, csrf_ok, csrf_token, revoke_session, session_principal
from formsvc.settings import get_settings
from formsvc.web import review
from formsvc.web.format import FORM_KIND_LABELS, JOB_KIND_LABELS, STATUS_LABELS, vn_number, vn_time

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PAGE_SIZE = 25
MAX_KEY_CHARS = 500
PACKABLE = ("cdht-self-assessment", "cdht-evidence-checklist")
UPLOAD_ROLES = ("admin", "clerk")
FLASH = {"saved": "Đã lưu các thay đổi và kiểm tra lại bản ghi.", "approved": "Đã duyệt bản ghi."}
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
router = APIRouter(include_in_schema=False)


def mount(app: FastAPI) -> None:
    from formsvc.web import criteria_admin

    app.include_router(router)
    app.include_router(criteria_admin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


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

@router.get("/login")
def login_form(request: Request) -> Response:
    return _page(request, "login.html", None, next=_safe_next(request.query_params.get("next")), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    key = str(form.get("key") or "").strip()[:MAX_KEY_CHARS]
    target = _safe_next(str(form.get("next") or "/"))
    if not _same_origin(request):
        return _page(request, "login.html", None, status=403, next=target,
                     error="Yêu cầu đăng nhập không đến từ trang này; hãy mở lại trang đăng nhập.")
    address = client_address(request)

    def check() -> str | None:
        """The new session's id; None for an integration key (no web login)."""
        refuse_if_throttled(address)
        try:
            with session_scope() as s:
                who = authenticate(s, key)
        except AuthError:
            if key:
                note_auth_failure(address)
            raise
        if who.role == "integration":
            return None
        with session_scope() as s:
            return create_session(s, who)

    try:
        session_id = await run_in_threadpool(check)
    except AuthError as exc:
        message = "Hãy dán khóa truy cập vào ô bên dưới." if not key else exc.message
        return _page(request, "login.html", None, status=401, next=target, error=message)
    except FormsvcError as exc:  # throttled, or the database is unreachable: say so on the page, keep the form
        page = _page(request, "login.html", None, status=exc.http_status, next=target, error=exc.message)
        if "retry_after" in exc.detail:
            page.headers["Retry-After"] = str(exc.detail["retry_after"])
        return page
    if session_id is None:
        return _page(request, "login.html", None, status=403, next=target,
                     error="Khóa tích hợp chỉ dùng cho hệ thống khác, không dùng để đăng nhập.")
    response = RedirectResponse(target, status_code=303)
    # The cookie holds a session id, never the key. HttpOnly: scripts (ours or injected) never see it;
    # Strict: other sites cannot make the browser send it; Secure whenever the public address is https
    # (behind a TLS proxy the request itself arrives as plain http).
    secure = get_settings().public_url.lower().startswith("https://") or request.url.scheme == "https"
    response.set_cookie(COOKIE, session_id, max_age=int(get_settings().session_ttl_s), path="/", httponly=True,
                        samesite="strict", secure=secure)
    return _harden(response)


@router.get("/logout")
def logout_page(request: Request) -> Response:
    """Logging out changes state, so it is a POST (with the page's CSRF token); a link here just goes home."""
    return _harden(RedirectResponse("/", status_code=303))


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    session_id = request.cookies.get(COOKIE)
    if session_id and not (csrf_ok(session_id, str(form.get("csrf") or "")) or same_origin(request)):
        return _harden(Response("Yêu cầu đăng xuất không đến từ trang của hệ thống.", status_code=403,
                                media_type="text/plain; charset=utf-8"))

    def end() -> None:
        with session_scope() as s:
            revoke_session(s, session_id)

    if session_id:
        await run_in_threadpool(end)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return _harden(response)


# -- home ----------------------------------------------------------------------------------------------------

@router.get("/")
def home(request: Request) -> Response:
    from formsvc.service.jobs import job_view, list_jobs
    from formsvc.service.records import RecordFilter, list_records

    def build(who: Principal) -> Response:
        with session_scope() as s:
            counts = {status: list_records(s, who, RecordFilter(status=status), limit=1)[1]
                      for status in STATUS_LABELS}
            approved = list_records(s, who, RecordFilter(approved=True), limit=1)[1]
            jobs, _ = list_jobs(s, who, limit=5)
            recent = [job_view(s, j) for j in jobs]
        return _page(request, "home.html", who, active="home", counts=counts, total=sum(counts.values()),
                     approved=approved, jobs=recent)

    return _guarded(request, build)


# -- forms and print packs -----------------------------------------------------------------------------------

@router.get("/forms")
def forms(request: Request) -> Response:
    from formsvc.render import list_forms

    def build(who: Principal) -> Response:
        all_forms = list_forms()
        packable = [f for f in all_forms if f.id in PACKABLE]
        return _page(request, "forms.html", who, active="forms", forms=all_forms, packable=packable,
                     this_year=dt.date.today().year)

    return _guarded(request, build)


# -- uploads -------------------------------------------------------------------------------------------------

@router.get("/upload")
def upload(request: Request) -> Response:
    def build(who: Principal) -> Response:
        return _page(request, "upload.html", who, active="upload")

    return _guarded(request, build)


# -- records and jobs ----------------------------------------------------------------------------------------

@router.get("/records")
def records(request: Request) -> Response:
    from formsvc.render import list_forms
    from formsvc.service.records import RecordFilter, list_records

    def build(who: Principal) -> Response:
        q = request.query_params
        status = q.get("status") if q.get("status") in STATUS_LABELS else None
        approved = {"1": True, "0": False}.get(q.get("approved", ""))
        form_titles = {f.id: f.title for f in list_forms()}
        form = q.get("form") if q.get("form") in form_titles else None
        search = q.get("q", "").strip()[:100] or None
        year = _int_arg(request, "year", 1900, 2100)
        page = _int_arg(request, "page", 1, 10**6) or 1
        job = q.get("job", "")
        job = job if 0 < len(job) <= 32 and job.isascii() and job.isalnum() else ""
        flt = RecordFilter(status=status, approved=approved, form=form, q=search, year=year, job_id=job or None)
        with session_scope() as s:
            rows, total = list_records(s, who, flt, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            items = [{"id": r.id, "unit": r.unit, "form": r.form, "form_title": form_titles.get(r.form, r.form),
                      "year": r.year, "status": r.status, "approved": r.approved, "name": r.subject_name,
                      "total": (r.data.get("result") or {}).get("total"), "updated_at": r.updated_at}
                     for r in rows]
        filters = {"status": status or "", "approved": q.get("approved", "") if approved is not None else "",
                   "form": form or "", "q": search or "", "year": year or "", "job": job}
        return _page(request, "records.html", who, active="records", items=items, filters=filters,
                     forms=form_titles, paging=_page_links(request, total, page),
                     filtered=any(filters.values()), this_year=dt.date.today().year)

    return _guarded(request, build)


@router.get("/jobs")
def jobs(request: Request) -> Response:
    from formsvc.service.jobs import job_view, list_jobs

    def build(who: Principal) -> Response:
        kind = request.query_params.get("kind")
        kind = kind if kind in JOB_KIND_LABELS else None
        page = _int_arg(request, "page", 1, 10**6) or 1
        with session_scope() as s:
            rows, total = list_jobs(s, who, kind=kind, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            items = [job_view(s, j) for j in rows]
        return _page(request, "jobs.html", who, active="jobs", jobs=items, kind=kind or "",
                     paging=_page_links(request, total, page))

    return _guarded(request, build)


@router.get("/records/{record_id}")
def record(request: Request, record_id: str) -> Response:
    from formsvc.service.records import get_record, history

    def build(who: Principal) -> Response:
        with session_scope() as s:
            row = get_record(s, who, record_id)
            changes = history(s, who, record_id)
            key_ids = {c.key_id for c in changes} | ({row.approved_by} if row.approved_by else set())
            names = dict(s.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(key_ids))).tuples().all())
            view = review.build(row, changes, names)
        flash = FLASH.get(request.query_params.get("msg", ""))
        return _page(request, "record.html", who, active="records", r=view, flash=flash,
                     can_approve=who.role in ("admin", "reviewer"),
                     can_edit=who.role in ("admin", "reviewer"))

    return _guarded(request, build)


@router.get("/review")
def review_queue(request: Request) -> Response:
    """The review queue: the page is a shell, app.js walks the boxes from GET /v1/review/queue."""
    def build(who: Principal) -> Response:
        if who.role not in ("admin", "reviewer"):
            return _error_page(request, who, 403, "Chỉ người duyệt và quản trị kiểm tra các ô điểm.")
        return _page(request, "review_queue.html", who, active="review", limit=500)

    return _guarded(request, build)
