"""The FastAPI application: criteria, forms, rendering and validation over HTTP.

Errors are JSON {"code", "message"[, "hint", "detail"]} with Vietnamese messages and stable codes.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from formsvc import __version__
from formsvc.cli.criteria_cmds import set_detail, set_summary
from formsvc.criteria import default_registry
from formsvc.errors import FormsvcError, InputError, LimitError
from formsvc.records import Record
from formsvc.settings import get_settings
from formsvc.validation import validate_with_registry

MEDIA = {"pdf": "application/pdf",
         "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


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


def create_app() -> FastAPI:
    app = FastAPI(title="formsvc", version=__version__,
                  description="Công dân học tập / Đơn vị học tập: biểu mẫu, tiếp nhận và kiểm tra phiếu.")

    @app.exception_handler(FormsvcError)
    async def _formsvc_error(_: Request, exc: FormsvcError) -> JSONResponse:
        return JSONResponse(status_code=exc.http_status, content=exc.to_dict())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "request_invalid", "Yêu cầu không hợp lệ.", detail=exc.errors()[:10])

    @app.get("/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

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

    @app.post("/v1/render/{form_id}", responses={200: {"content": {m: {} for m in MEDIA.values()}}})
    async def render(form_id: str, request: Request, format: Literal["pdf", "docx"] = "pdf") -> Response:
        from starlette.concurrency import run_in_threadpool

        from formsvc.render import render_document

        data = await _json_body(request)
        if data is not None and not isinstance(data, dict):
            raise InputError("Dữ liệu điền phiếu phải là một đối tượng JSON.", code="json_shape")
        content = await run_in_threadpool(render_document, form_id, data, format)
        return Response(content, media_type=MEDIA[format],
                        headers={"Content-Disposition": f'attachment; filename="{form_id}.{format}"'})

    @app.post("/v1/validate")
    async def validate(request: Request) -> Any:
        from formsvc.cli.validate_cmds import parse_records

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
