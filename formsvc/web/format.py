"""Vietnamese display helpers for the web UI: numbers with a decimal comma, times in Vietnam's time zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from formsvc.records import STATUS_LABELS
from formsvc.service.jobs import JOB_STATUS_LABELS

__all__ = ["FORM_KIND_LABELS", "JOB_KIND_LABELS", "JOB_STATUS_LABELS", "STATUS_LABELS", "vn_number", "vn_time"]

# Vietnam has had no daylight saving time since 1975: a fixed offset is exact and needs no tz database.
VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")
JOB_KIND_LABELS = {"extract": "Tải lên phiếu", "print_pack": "In hàng loạt", "dossier": "Hồ sơ cuối năm",
                   "retrain": "Học lại nhận dạng chữ số"}
FORM_KIND_LABELS = {"cdht": "Công dân học tập", "dvht": "Đơn vị học tập"}


def vn_number(value: Any) -> str:
    """7.5 -> '7,5', 10.0 -> '10', None -> ''; anything else (an unreadable score) as it is."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        rounded = round(float(value), 2)
        text = f"{rounded:.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text.replace(".", ",")
    return str(value)


def vn_time(value: dt.datetime | str | None) -> str:
    """'23/11/2025 16:05' in Vietnam time, from an aware datetime or an ISO string (naive means UTC)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
