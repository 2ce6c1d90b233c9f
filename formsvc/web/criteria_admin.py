"""Admin pages for the criteria sets: their versions, and loading an official appendix (upload, diff, decide).

The pages only show; the upload and the decision go through the JSON API (`/v1/criteria-imports`) from app.js,
like every other change the web UI makes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from formsvc.service import criteria_imports as flow
from formsvc.service.auth import Principal
from formsvc.web.pages import _error_page, _guarded, _page

router = APIRouter(include_in_schema=False)
ADMIN_ONLY = "Chỉ quản trị viên mới nạp được văn bản chính thức của bộ tiêu chí."


@router.get("/admin/criteria")
def criteria_page(request: Request) -> Response:
    def build(who: Principal) -> Response:
        if who.role != "admin":
            return _error_page(request, who, 403, ADMIN_ONLY)
        accepted = request.query_params.get("accepted", "")[:120]
        rejected = request.query_params.get("rejected") == "1"
        return _page(request, "criteria.html", who, active="criteria", sets=flow.set_versions(),
                     accepted=accepted, rejected=rejected)

    return _guarded(request, build)


@router.get("/admin/criteria/imports/{token}")
def import_page(request: Request, token: str) -> Response:
    def build(who: Principal) -> Response:
        if who.role != "admin":
            return _error_page(request, who, 403, ADMIN_ONLY)
        return _page(request, "criteria_import.html", who, active="criteria", item=flow.pending_import(who, token))

    return _guarded(request, build)


@router.get("/admin/digits")
def digits_page(request: Request) -> Response:
    """The recogniser learning from corrections: the state, and a button that starts a retrain (app.js)."""
    from formsvc.service import retrain
    from formsvc.web.pages import _error_page, _guarded, _page

    def build(who: Principal) -> Response:
        if who.role != "admin":
            return _error_page(request, who, 403, "Chỉ quản trị viên mới cho máy học lại.")
        return _page(request, "digits.html", who, active="digits", st=retrain.status())

    return _guarded(request, build)
