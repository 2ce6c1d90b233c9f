"""Records: list, pull feed, one record with its field crops, review (correct, re-validate, approve), deletion,
exports and the unit report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from formsvc.api.deps import principal
from formsvc.db.engine import session_scope
from formsvc.db.tables import RecordRow
from formsvc.errors import InputError, NotFoundError
from formsvc.service import records as svc
from formsvc.service.auth import Principal
from formsvc.service.changes import publish_pending, record_view
from formsvc.service.jobs import unit_for
from formsvc.storage import get_file_store

router = APIRouter(prefix="/v1", tags=["records"])
Who = Annotated[Principal, Depends(principal)]
Status = Literal["valid", "needs_review", "rejected"]
CROP_PAD = 24


class CorrectionIn(BaseModel):
    fields: dict[str, Any] = Field(description="Dotted field path -> new value, e.g. {'scores.ct3': 7.5}",
                                   min_length=1, max_length=200)
    version: int | None = Field(default=None, description="The version you corrected; 409 if it changed since")


class ApproveIn(BaseModel):
    version: int | None = None


def _filters(unit: str | None, year: int | None, status: Status | None, form: str | None,
             approved: bool | None, job: str | None, q: str | None) -> svc.RecordFilter:
    return svc.RecordFilter(unit=unit, year=year, status=status, form=form, approved=approved, job_id=job, q=q)


def _full(row: RecordRow) -> dict[str, Any]:
    out = record_view(row)
    out["crops"] = {f["name"]: f"/v1/records/{row.id}/crops/{f['name']}"
                    for f in row.data.get("fields", []) if f.get("bbox") and str(f.get("page")) in row.pages}
    return out


@router.get("/records", summary="Danh sách bản ghi; với ?after=CURSOR là luồng thay đổi theo thứ tự")
def records(who: Who, unit: str | None = None, year: Annotated[int | None, Query(ge=1900, le=2100)] = None,
            status: Status | None = None, form: str | None = None, approved: bool | None = None,
            job: str | None = None, q: Annotated[str | None, Query(max_length=100)] = None,
            after: Annotated[int | None, Query(ge=0, le=2**53, description="next_cursor of the last page")] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50,
            offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> dict[str, Any]:
    f = _filters(unit, year, status, form, approved, job, q)
    if after is not None:
        publish_pending()  # its own short transaction: the publisher's lock is not held while reading
    with session_scope() as s:
        if after is not None:
            rows = svc.feed(s, who, f, after=after, limit=limit)
            return {"items": [record_view(r) for r in rows],
                    "next_cursor": rows[-1].change_seq if rows else after}
        if who.role == "integration":
            who.require("admin", "clerk", "reviewer")  # integration keys read the feed only
        rows, total = svc.list_records(s, who, f, limit=limit, offset=offset)
        return {"items": [record_view(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get("/records/{record_id}", summary="Một bản ghi, kèm đường dẫn ảnh cắt của từng trường")
def record(who: Who, record_id: str, response: Response) -> dict[str, Any]:
    with session_scope() as s:
        row = svc.get_record(s, who, record_id)
        svc.audit_reads(s, who, [row], "record")
        response.headers["ETag"] = f'"{row.version}"'  # what DELETE's If-Match names
        return _full(row)


@router.get("/records/{record_id}/crops/{field_name}", summary="Ảnh cắt vùng của một trường (PNG)",
            responses={200: {"content": {"image/png": {}}}})
def crop(who: Who, record_id: str, field_name: str) -> Response:
    import cv2
    import numpy as np

    who.require("admin", "clerk", "reviewer")
    with session_scope() as s:
        row = svc.get_record(s, who, record_id)
        field = next((f for f in row.data.get("fields", []) if f.get("name") == field_name and f.get("bbox")), None)
        sha = row.pages.get(str(field.get("page"))) if field else None
    if field is None or sha is None:
        raise NotFoundError("Trường này không có ảnh cắt.", code="crop_not_found")
    image = cv2.imdecode(np.frombuffer(get_file_store().read_bytes(sha), np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise NotFoundError("Không đọc được ảnh trang đã lưu.", code="crop_not_found")
    h, w = image.shape
    x0, y0, x1, y1 = (int(v) for v in field["bbox"])
    x0, y0 = max(0, x0 - CROP_PAD), max(0, y0 - CROP_PAD)
    x1, y1 = min(w, x1 + CROP_PAD), min(h, y1 + CROP_PAD)
    if x1 <= x0 or y1 <= y0:
        raise NotFoundError("Vùng của trường nằm ngoài trang.", code="crop_not_found")
    _, png = cv2.imencode(".png", image[y0:y1, x0:x1])
    return Response(png.tobytes(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/records/{record_id}/history", summary="Lịch sử sửa và duyệt (ai, lúc nào, cũ → mới)")
def record_history(who: Who, record_id: str) -> list[dict[str, Any]]:
    who.require("admin", "clerk", "reviewer")
    with session_scope() as s:
        return [{"field": c.field, "old": c.old_value, "new": c.new_value, "action": c.action, "by": c.key_id,
                 "at": c.at.isoformat()} for c in svc.history(s, who, record_id)]


@router.patch("/records/{record_id}", summary="Sửa trường (ghi vết), rồi kiểm tra lại")
def correct(who: Who, record_id: str, body: CorrectionIn) -> dict[str, Any]:
    with session_scope() as s:
        return _full(svc.correct(s, who, record_id, body.fields, expected_version=body.version))


@router.post("/records/{record_id}/revalidate", summary="Kiểm tra lại theo bộ tiêu chí hiện hành")
def revalidate(who: Who, record_id: str) -> dict[str, Any]:
    with session_scope() as s:
        return _full(svc.revalidate(s, who, record_id))


@router.post("/records/{record_id}/approve", summary="Duyệt bản ghi")
def approve(who: Who, record_id: str, body: ApproveIn | None = None) -> dict[str, Any]:
    with session_scope() as s:
        return _full(svc.approve(s, who, record_id, expected_version=body.version if body else None))


def _expected_version(query: int | None, if_match: str | None) -> int | None:
    """The version a write is made against: `?version=` or an If-Match of the record's ETag ("3"); `*` or none:
    any version."""
    tag = (if_match or "").strip().removeprefix("W/").strip('"')
    header: int | None = None
    if tag and tag != "*":
        if not (tag.isascii() and tag.isdigit() and len(tag) <= 12):
            raise InputError("Tiêu đề If-Match phải là phiên bản của bản ghi, ví dụ \"3\".", code="bad_if_match")
        header = int(tag)
    if query is not None and header is not None and query != header:
        raise InputError("Phiên bản trong If-Match và trong ?version= khác nhau.", code="bad_if_match")
    return query if query is not None else header


@router.delete("/records/{record_id}", status_code=204,
               summary="Xóa bản ghi: dữ liệu cá nhân, ảnh trang, ảnh cắt và các lần sửa bị xóa; luồng thay đổi và "
                       "webhook nhận sự kiện record.deleted")
def record_delete(who: Who, record_id: str,
           version: Annotated[int | None, Query(ge=1, le=2**31, description="The version you saw; 409 if it "
                                                                           "changed since")] = None,
           if_match: Annotated[str | None, Header(max_length=40, description='The record\'s ETag, e.g. "3"')] = None,
           ) -> Response:
    expected = _expected_version(version, if_match)
    with session_scope() as s:
        svc.delete_record(s, who, record_id, expected_version=expected)
    return Response(status_code=204)


def _export_rows(who: Principal, f: svc.RecordFilter) -> list[Any]:
    from formsvc.exports import ExportRow

    with session_scope() as s:
        stmt = svc.filtered_query(select(RecordRow), who, f).order_by(RecordRow.unit, RecordRow.subject_name)
        return [ExportRow(record=svc.as_record(r), id=r.id, unit=r.unit, approved=r.approved,
                          updated_at=r.updated_at) for r in s.scalars(stmt)]


@router.get("/exports/records.{fmt}", summary="Xuất bản ghi ra CSV hoặc XLSX",
            responses={200: {"content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument."
                                                          "spreadsheetml.sheet": {}}}})
def export(who: Who, fmt: Literal["csv", "xlsx"], unit: str | None = None,
           year: Annotated[int | None, Query(ge=1900, le=2100)] = None, status: Status | None = None,
           form: str | None = None, approved: bool | None = None) -> Response:
    from formsvc.exports import records_to_csv, records_to_xlsx

    who.require("admin", "clerk", "reviewer")
    rows = _export_rows(who, _filters(unit, year, status, form, approved, None, None))
    if fmt == "csv":
        return Response(records_to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="ban-ghi.csv"'})
    return Response(records_to_xlsx(rows),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="ban-ghi.xlsx"'})


@router.get("/reports/unit", summary="Số liệu báo cáo của đơn vị, tính từ các bản ghi đã lưu")
def unit_report(who: Who, year: Annotated[int, Query(ge=1900, le=2100)],
                unit: str | None = None) -> dict[str, Any]:
    from formsvc.reports import unit_report as build

    who.require("admin", "clerk", "reviewer")
    unit_name = unit_for(who, unit)
    rows = _export_rows(who, svc.RecordFilter(unit=unit_name, year=year))
    return build(rows, unit=unit_name, year=year).model_dump(mode="json")


@router.get("/reports/unit.{fmt}", summary="Báo cáo của đơn vị, điền sẵn số liệu (DOCX/PDF)",
            responses={200: {"content": {"application/pdf": {}, "application/vnd.openxmlformats-officedocument."
                                                                  "wordprocessingml.document": {}}}})
def unit_report_document(who: Who, fmt: Literal["pdf", "docx"], year: Annotated[int, Query(ge=1900, le=2100)],
                         unit: str | None = None, staff: Annotated[int | None, Query(ge=0, le=10**7)] = None
                         ) -> Response:
    from formsvc.render import render_document
    from formsvc.render.formats import MEDIA
    from formsvc.reports import report_context
    from formsvc.reports import unit_report as build

    who.require("admin", "clerk", "reviewer")
    unit_name = unit_for(who, unit)
    rows = _export_rows(who, svc.RecordFilter(unit=unit_name, year=year))
    context = report_context(build(rows, unit=unit_name, year=year), staff=staff)
    content = render_document("cdht-unit-report", context, fmt)
    return Response(content, media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="bao-cao-{year}.{fmt}"'})
