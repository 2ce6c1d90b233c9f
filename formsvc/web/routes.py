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

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from formsvc.api.deps import COOKIE, client_address, note_auth_failure, refuse_if_throttled, same_origin
from formsvc.db.engine import session_scope
from formsvc.db.tables import ApiKey
from formsvc.errors import AuthError, FormsvcError
from formsvc.service.auth import Principal, authenticate
from formsvc.service.sessions import create_session, csrf_ok, revoke_session
from formsvc.settings import get_settings
from formsvc.web import criteria_admin, review
from formsvc.web.format import JOB_KIND_LABELS, STATUS_LABELS
from formsvc.web.pages import (
    FLASH,
    MAX_KEY_CHARS,
    PAGE_SIZE,
    STATIC_DIR,
    _error_page,
    _guarded,
    _harden,
    _int_arg,
    _page,
    _page_links,
    _safe_next,
    _same_origin,
)

router = APIRouter(include_in_schema=False)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(criteria_admin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


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
        packable = [f for f in all_forms if f.packable]
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
                     flash=FLASH["deleted"] if q.get("msg") == "deleted" else None,
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
                     can_edit=who.role in ("admin", "reviewer"), can_delete=who.role in ("admin", "reviewer"))

    return _guarded(request, build)


@router.get("/review")
def review_queue(request: Request) -> Response:
    """The review queue: the page is a shell, app.js walks the boxes from GET /v1/review/queue."""
    def build(who: Principal) -> Response:
        if who.role not in ("admin", "reviewer"):
            return _error_page(request, who, 403, "Chỉ người duyệt và quản trị kiểm tra các ô điểm.")
        return _page(request, "review_queue.html", who, active="review", limit=500)

    return _guarded(request, build)
