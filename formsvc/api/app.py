"""The FastAPI application: criteria, forms, rendering, validation, uploads, records, review, delivery.

Errors are JSON {"code", "message"[, "hint", "detail"]} with Vietnamese messages and stable codes.
Stateless: any number of API processes can serve one database, file store and Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from formsvc import __version__
from formsvc.api import routes_admin, routes_criteria, routes_jobs, routes_records, routes_review
from formsvc.api.accesslog import AccessLog
from formsvc.api.deps import principal
from formsvc.api.idempotency import IdempotencyMiddleware
from formsvc.api.json_depth import JsonDepthLimit
from formsvc.api.limits import AuthFirst, BodyLimit
from formsvc.criteria import default_registry
from formsvc.criteria.views import set_detail, set_summary
from formsvc.errors import FormsvcError, InputError, LimitError
from formsvc.records import Record
from formsvc.render.formats import MEDIA
from formsvc.service.auth import Principal
from formsvc.settings import get_settings
from formsvc.validation import validate_with_registry


class FormOut(BaseModel):
    id: str
    title: str
    kind: str
    template_version: int
    return_trip: bool


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "message": message, **extra})


async def _json_body(request: Request) -> Any:
    limit = get_settings().max_json_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise LimitError(f"Dữ liệu gửi lên lớn hơn giới hạn {limit} byte.", code="body_too_large")
    raw = await request.body()
    if len(raw) > limit:
        raise LimitError(f"Dữ liệu gửi lên lớn hơn giới hạn {limit} byte.", code="body_too_large")
    if not raw.strip():
        return None
    import json

    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"Dữ liệu không phải JSON hợp lệ: {exc}.", code="json_invalid") from exc
    except RecursionError as exc:  # JsonDepthLimit refuses these first; never a 500 if it is bypassed
        raise InputError("Dữ liệu JSON lồng nhau quá sâu; không xử lý.", code="json_too_deep") from exc


def create_app(*, migrate: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            from formsvc.db import upgrade

            await run_in_threadpool(upgrade)
        yield

    app = FastAPI(title="formsvc", version=__version__, lifespan=lifespan,
                  description="Công dân học tập / Đơn vị học tập: biểu mẫu, tiếp nhận và kiểm tra phiếu.")
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(JsonDepthLimit)  # inside BodyLimit: it reads a body whole, so only a bounded one
    app.add_middleware(BodyLimit)
    app.add_middleware(AuthFirst)
    app.add_middleware(AccessLog)

    @app.exception_handler(FormsvcError)
    async def _formsvc_error(_: Request, exc: FormsvcError) -> JSONResponse:
        headers = {}
        if exc.http_status in (429, 503):
            headers["Retry-After"] = str(exc.detail.get("retry_after", 5))
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(status_code=exc.http_status, content=exc.to_dict(), headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: ("not_found", "Không tìm thấy địa chỉ này."),
                    405: ("method_not_allowed", "Phương thức không được hỗ trợ ở địa chỉ này.")}
        code, message = messages.get(exc.status_code, ("http_error", "Yêu cầu không thực hiện được."))
        return _error(exc.status_code, code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Only plain fields: the raw input (bytes, exception objects) may not be JSON and must not be echoed.
        detail = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
                  for e in exc.errors()[:10]]
        where = ", ".join(".".join(d["loc"]) for d in detail[:3])
        return _error(422, "request_invalid", f"Yêu cầu không hợp lệ ({where}).", detail=detail)

    @app.get("/v1/health", summary="Tình trạng: cơ sở dữ liệu, Redis, mô hình Tesseract, tiến trình xử lý")
    async def health() -> dict[str, Any]:  # async, checks on their own threads: never waits behind the thread pool
        from formsvc.service.health import report

        # 200 whenever the API answers (load balancers keep it in rotation); `status` says whether the rest is up.
        return {**await report(), "version": __version__}

    for router in (routes_jobs.router, routes_records.router, routes_admin.router, routes_criteria.router,
                   routes_review.router):
        app.include_router(router)
    from formsvc.web import routes as web_routes

    web_routes.mount(app)

    @app.get("/v1/criteria")
    def criteria_list() -> list[dict[str, Any]]:
        return [set_summary(s) for s in default_registry()]

    @app.get("/v1/criteria/{set_id}")
    def criteria_show(set_id: str) -> dict[str, Any]:
        return set_detail(default_registry().get(set_id))

    @app.get("/v1/forms", response_model=list[FormOut])
    def forms() -> list[FormOut]:
        from formsvc.render import list_forms

        return [FormOut(id=f.id, title=f.title, kind=f.kind, template_version=f.template_version,
                        return_trip=f.return_trip) for f in list_forms()]

    @app.post("/v1/render/{form_id}", responses={200: {"content": {m: {} for m in MEDIA.values()}}},
              openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                  "schema": {"type": "object", "description": "Dữ liệu điền sẵn (tùy chọn)"}}}}})
    async def render(form_id: Annotated[str, Path(examples=["cdht-self-assessment", "cdht-minutes"])],
                     request: Request, who: Annotated[Principal, Depends(principal)],
                     format: Literal["pdf", "docx"] = "pdf") -> Response:
        from formsvc.render import render_document

        who.require("admin", "clerk", "reviewer")  # a LibreOffice conversion each: not for integrations
        data = await _json_body(request)
        if data is not None and not isinstance(data, dict):
            raise InputError("Dữ liệu điền phiếu phải là một đối tượng JSON.", code="json_shape")
        content = await run_in_threadpool(render_document, form_id, data, format)
        return Response(content, media_type=MEDIA[format],
                        headers={"Content-Disposition": f'attachment; filename="{form_id}.{format}"'})

    @app.post("/v1/validate", openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "description": "Một bản ghi, hoặc {\"documents\": [...]}"}}}}})
    async def validate(request: Request, who: Annotated[Principal, Depends(principal)]) -> Any:
        from formsvc.records.parse import parse_records

        who.require("admin", "clerk", "reviewer")
        data = await _json_body(request)
        if data is None:
            raise InputError("Thiếu dữ liệu bản ghi.", code="json_shape")
        records: list[Record] = parse_records(data, "body")
        registry = default_registry()
        threshold = get_settings().review_confidence
        out = [validate_with_registry(r, registry, review_confidence=threshold).model_dump(mode="json")
               for r in records]
        return out[0] if isinstance(data, dict) and "documents" not in data else out

    return app


def migrated_app() -> FastAPI:
    """The app for `formsvc serve`, which has already migrated the database itself."""
    from formsvc.logs import configure

    configure()  # again here: with --processes, each API process is a fresh interpreter
    return create_app(migrate=False)
