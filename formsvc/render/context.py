"""Turn record-shaped data (or nothing, for a blank form) into the variables a template prints.

Every value is plain text: the template never computes, so a name like '{{ 7*7 }}' is printed as written.
Blank fields print dotted lines; score boxes stay empty for handwriting.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from formsvc.criteria import CriteriaRegistry, CriteriaSet
from formsvc.criteria.groups import require_group
from formsvc.criteria.model import PROVISIONAL_NOTE
from formsvc.errors import InputError
from formsvc.records.minutes import MinutesData
from formsvc.render.registry import FormInfo
from formsvc.text import nfc
from formsvc.validation.messages import num

DOTS = "………………………………………………"
SHORT_DOTS = "…………"
BLANK_ROWS = 15
ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII"]


def _text(value: Any, blank: str = DOTS) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return blank
    return nfc(str(value))


def _score(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int | float):
        return num(value)
    return nfc(str(value))


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError as exc:
            raise InputError(f"Ngày «{value}» không đúng định dạng YYYY-MM-DD.", code="bad_date") from exc
    return None


def place_date(place: Any, date: dt.date | None, year: int | None) -> str:
    where = _text(place, "……………")
    if date is None:
        return f"{where}, ngày …… tháng …… năm {year if year else '……'}"
    # Nghị định 30/2020, Phụ lục I: a leading zero for days below 10 and for months 1 and 2 only
    # ("ngày 05 tháng 02", but "tháng 12" and "tháng 3").
    month = f"{date.month:02d}" if date.month <= 2 else str(date.month)
    return f"{where}, ngày {date.day:02d} tháng {month} năm {date.year}"


def _rate(part: Any, whole: Any) -> str:
    try:
        p, w = Decimal(str(part)), Decimal(str(whole))
    except Exception:
        return SHORT_DOTS
    if w <= 0:
        return SHORT_DOTS
    return f"{num((p * 100 / w).quantize(Decimal('0.1')))}%"


# Title length (characters) up to which an indicator fits a row of each height the ĐVHT table offers
# (templates/build/forms.py DVHT_ROW_MM: 3, 4 and 6 lines of the 69 mm title column at 11 pt).
ROW_SIZE_CHARS = (105, 150)


def _row_size(title: str) -> int:
    return next((n for n, limit in enumerate(ROW_SIZE_CHARS) if len(title) <= limit), len(ROW_SIZE_CHARS))


def _criteria_rows(cset: CriteriaSet, scores: dict[str, Any], evidence: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for n, crit in enumerate(cset.criteria):
        indicators = []
        for i in crit.indicators:
            # The number column keeps the number across the set (readers match rows by it); the source's
            # own lettering ("a)") leads the title, as in the Thông tư.
            title = f"{i.label}) {i.title}" if i.label else i.title
            indicators.append({
                "number": str(i.number), "title": title, "max": num(i.max_points), "size": _row_size(title),
                "sub_items": [f"– {si.text}" for si in i.sub_items],
                "score": _score(scores.get(i.id)), "evidence": _text(evidence.get(i.id), ""), "committee": "",
            })
        rows.append({
            "label": ROMAN[n] if n < len(ROMAN) else str(crit.number),
            "title": f"Tiêu chí {crit.number}. {crit.title}",
            "max": num(crit.max_points),
            "indicators": indicators,
        })
    return rows


def _common(data: dict[str, Any], year: int | None) -> dict[str, Any]:
    subject = data.get("subject") or {}
    issuer = data.get("issuer") or subject.get("unit")
    return {
        "issuer": _text(issuer, "TÊN CƠ QUAN, ĐƠN VỊ").upper(),
        "doc_number": _text(data.get("doc_number"), "……/……"),
        "place_date": place_date(data.get("place"), _date(data.get("date")), year),
        "year": str(year) if year else "……",
        "recipients": [nfc(str(r)) for r in data.get("recipients") or ["Như trên", "Lưu: VT"]],
        "head_title": _text(data.get("head_title"), "THỦ TRƯỞNG ĐƠN VỊ").upper(),
        "head_name": _text(data.get("head_name"), ""),
        "addressee": _text(data.get("addressee")),
        "notes": _text(data.get("notes"), ""),
    }


def _criteria_part(cset: CriteriaSet, data: dict[str, Any]) -> dict[str, Any]:
    scores = data.get("scores") or {}
    evidence = data.get("evidence") or {}
    filled = [scores.get(i.id) for i in cset.indicators]
    total = ""
    if data.get("total_declared") not in (None, ""):
        total = _score(data["total_declared"])
    elif filled and all(isinstance(v, int | float) for v in filled):
        total = num(sum(Decimal(str(v)) for v in filled))
    src = cset.source
    return {
        "criteria": _criteria_rows(cset, scores, evidence),
        "total_max": num(cset.total_max),
        "total": total,
        "committee_total": "",
        "criteria_source": f"Bộ tiêu chí: {src.document}{', ' + src.appendix if src.appendix else ''}"
                           f" ({cset.id} v{cset.version})",
        "provisional_note": "" if cset.fully_verified else f"Lưu ý: {PROVISIONAL_NOTE}.",
    }


def _people(items: list[dict[str, Any]] | None, keys: list[str]) -> list[dict[str, str]]:
    if not items:
        return [{"n": "", **{k: "" for k in keys}} for _ in range(BLANK_ROWS)]
    out = []
    for n, item in enumerate(items, start=1):
        row = {"n": str(n)}
        for k in keys:
            value = item.get(k)
            if k == "group_label":
                group = require_group(item.get("group"))
                value = group.short_label if group else None
            row[k] = _score(value) if k in ("total", "self_total", "agreed_total") else _text(value, "")
        out.append(row)
    return out


def build_context(form: FormInfo, data: dict[str, Any] | None, registry: CriteriaRegistry) -> dict[str, Any]:
    data = data or {}
    year_raw = data.get("year")
    try:
        year = int(year_raw) if year_raw not in (None, "") else None
    except (TypeError, ValueError) as exc:
        raise InputError(f"Năm «{year_raw}» không hợp lệ.", code="bad_year") from exc
    ctx = _common(data, year)
    subject = data.get("subject") or {}
    group = require_group(subject.get("group"))
    ctx.update({
        "full_name": _text(subject.get("full_name")),
        "full_name_signature": _text(subject.get("full_name"), ""),
        "birth_year": _text(subject.get("birth_year"), SHORT_DOTS),
        "unit": _text(subject.get("unit")),
        "group_label": group.short_label if group else _text(subject.get("group")),
    })
    set_id = data.get("criteria_set") or form.default_criteria_set
    if "criteria" in form.context:
        cset = registry.get(set_id) if set_id else None
        if cset is None:
            raise InputError("Biểu mẫu này cần bộ tiêu chí (criteria_set).", code="criteria_set_required")
        if cset.outcome.type == "levels" or cset.kind != form.kind:
            # A points table would print "tối đa 1" for a met/not-met indicator, or CDHT criteria on a
            # ĐVHT form: a form that cannot be filled in correctly is refused rather than printed.
            raise InputError(
                f"Bộ tiêu chí «{cset.id}» không in được trên biểu mẫu «{form.id}» "
                f"({'công nhận theo mức độ, không chấm điểm' if cset.outcome.type == 'levels' else 'khác loại'}).",
                code="criteria_set_not_printable",
                hint="Chọn bộ tiêu chí chấm điểm cùng loại với biểu mẫu (xem 'formsvc criteria list').")
        ctx.update(_criteria_part(cset, data))
        ctx["indicators"] = [{"number": str(i.number), "title": i.title, "evidence_hint": i.evidence_hint or "",
                              "tick": "☐"} for i in cset.indicators]
        ctx["committee_signer"] = ""
    result = data.get("result") or {}
    ctx["band_label"] = _text(result.get("band_label"), DOTS)
    if "minutes" in form.context:
        try:
            minutes = MinutesData.model_validate(data.get("minutes") or {})
        except Exception as exc:
            raise InputError(f"Dữ liệu biên bản không hợp lệ: {exc}", code="minutes_invalid") from exc
        ctx.update({
            "meeting_start": (f"{minutes.meeting_start:%H} giờ {minutes.meeting_start:%M}, ngày "
                              f"{minutes.meeting_start:%d/%m/%Y}") if minutes.meeting_start else DOTS,
            "meeting_end": f"{minutes.meeting_end:%H} giờ {minutes.meeting_end:%M}" if minutes.meeting_end
            else SHORT_DOTS,
            "place": _text(minutes.place),
            "chair": _text(minutes.chair), "secretary": _text(minutes.secretary),
            "chair_signature": _text(minutes.chair, ""), "secretary_signature": _text(minutes.secretary, ""),
            "members_present": _text(minutes.members_present, SHORT_DOTS),
            "members_total": _text(minutes.members_total, SHORT_DOTS),
            "votes_for": _text(minutes.votes_for, SHORT_DOTS), "votes_total": _text(minutes.votes_total, SHORT_DOTS),
            "candidates": _people(
                [c.model_dump() | {"proposed": {True: "Có", False: "Không", None: ""}[c.proposed]}
                 for c in minutes.candidates], ["full_name", "birth_year", "self_total", "agreed_total", "proposed"]),
            # Why a reviewed person is not proposed (the dossier fills it from the validation's reasons).
            "not_proposed": [{"n": _text(r.get("n"), ""), "full_name": _text(r.get("full_name"), ""),
                              "reasons": _text(r.get("reasons"), "")} for r in data.get("not_proposed") or []
                             if isinstance(r, dict)],
            "proposed_count": _text(data.get("proposed_count"), SHORT_DOTS),
        })
    if "registration_list" in form.context:
        ctx["people"] = _people(data.get("people"), ["full_name", "birth_year", "unit", "group_label"])
        ctx["preparer_name"] = _text(data.get("preparer_name"), "")
    if "decision" in form.context:
        people = data.get("people") or []
        ctx["people"] = _people(people, ["full_name", "birth_year", "unit", "total"])
        ctx["count"] = str(len(people)) if people else SHORT_DOTS
        ctx["bases"] = [nfc(str(b)) for b in data.get("bases") or [
            "Căn cứ Quyết định số 324/QĐ-KHVN ngày 25/10/2023 của Hội Khuyến học Việt Nam ban hành Bộ tiêu chí "
            "và Hướng dẫn đánh giá, công nhận danh hiệu “Công dân học tập” giai đoạn 2021-2030",
            "Xét đề nghị của Tổ đánh giá, công nhận “Công dân học tập” của đơn vị",
        ]]
    if "unit_report" in form.context:
        counts = data.get("counts") or {}
        staff = counts.get("staff")
        ctx.update({
            "issuer_name": _text(data.get("issuer") or subject.get("unit"), "Đơn vị"),
            "staff": _text(staff, ""), "registered": _text(counts.get("registered"), ""),
            "self_assessed": _text(counts.get("self_assessed"), ""),
            "recognised": _text(counts.get("recognised"), ""),
            "registered_rate": _rate(counts.get("registered"), staff) if staff else "",
            "self_assessed_rate": _rate(counts.get("self_assessed"), staff) if staff else "",
            "recognised_rate": _rate(counts.get("recognised"), staff) if staff else "",
        })
    if "dvht_registration" in form.context:
        ctx.update({
            "next_year": str(year + 1) if year else "……",
            "address": _text(data.get("address")),
            "members": _text(data.get("members"), SHORT_DOTS),
        })
    return ctx
