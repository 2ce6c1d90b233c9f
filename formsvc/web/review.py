"""The review screen's view of one stored record: every field with its crop, confidence and the reasons about it.

Kept apart from the routes so the shaping (which field is flagged, which has a crop, how a value is shown
in an input) is plain data the template only lays out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from formsvc.criteria import default_registry
from formsvc.criteria.groups import load_groups
from formsvc.criteria.model import CriteriaSet
from formsvc.db.tables import Correction, RecordRow
from formsvc.errors import FormsvcError
from formsvc.service.records import EDITABLE_FIELDS, EDITABLE_PREFIXES
from formsvc.settings import get_settings
from formsvc.validation.messages import label_for
from formsvc.web.format import vn_number, vn_time

Kind = Literal["score", "int", "text", "date", "group"]
SEVERITY_LABELS = {"error": "Lỗi", "review": "Cần kiểm tra", "warning": "Lưu ý", "info": "Thông tin"}
# Reasons of these severities are what a reviewer must look at; their fields are highlighted.
FLAG_SEVERITIES = ("error", "review")
SOURCE_LABELS = {"qr": "mã QR", "text_layer": "chữ trong PDF", "ocr": "nhận dạng chữ in", "handwriting": "chữ viết tay",
                 "known_value": "giá trị đã biết", "manual": "người sửa", "input": "nhập trực tiếp"}
SUBJECT_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("subject.full_name", "text"), ("subject.birth_year", "int"), ("subject.id", "text"),
    ("subject.unit", "text"), ("subject.group", "group"))
GENERAL_FIELDS: tuple[tuple[str, Kind], ...] = (
    ("year", "int"), ("assessment_date", "date"), ("registered_on", "date"))


@dataclass
class FieldView:
    name: str
    label: str
    kind: Kind
    value: str  # as shown in the input (decimal comma for scores)
    editable: bool
    confidence: float | None = None
    crop: str | None = None
    source: str | None = None
    page: int | None = None
    flagged: bool = False
    low_confidence: bool = False
    notes: list[dict[str, str]] = field(default_factory=list)
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""

    @property
    def confidence_pct(self) -> str:
        return "" if self.confidence is None else f"{round(self.confidence * 100)}%"


@dataclass
class IndicatorView:
    id: str
    number: int | None
    title: str
    max_points: float | None
    min_points: float | None
    score: FieldView
    evidence: FieldView


@dataclass
class ReviewView:
    id: str
    version: int
    unit: str
    form: str
    form_title: str
    criteria_set: str
    criteria_title: str
    year: int
    status: str
    approved: bool
    approved_at: str
    approved_by: str
    job_id: str | None
    subject_name: str
    updated_at: str
    subject: list[FieldView]
    general: list[FieldView]
    total_declared: FieldView
    indicators: list[IndicatorView]
    others: list[FieldView]
    reasons: list[dict[str, str]]
    total: float | None
    max_total: float | None
    outcome: str
    flagged_count: int
    history: list[dict[str, str]]
# History actions (formsvc.service.records): a correction, a confirmation (same value), a finding settled by it.
ACTION_LABELS = {"approve": "Duyệt", "correct": "Sửa", "confirm": "Xác nhận", "clear_finding": "Gỡ cảnh báo"}


def _editable(name: str) -> bool:
    """The same rule as the service's correction check, so the UI never offers an edit the API refuses."""
    return name in EDITABLE_FIELDS or (name.startswith(EDITABLE_PREFIXES) and name.count(".") == 1)


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _shown(kind: Kind, value: Any) -> str:
    if value is None:
        return ""
    if kind == "score":
        return vn_number(value)
    return str(value)


def _criteria(set_id: str) -> CriteriaSet | None:
    try:
        return default_registry().get(set_id)
    except FormsvcError:
        return None  # an unknown or retired set must not hide the record: show its scores without titles


def _value_text(name: str, value: Any) -> str:
    """A history value for people: '7,5', 'Có', '(trống)', the group's label."""
    if value is None or value == "":
        return "(trống)"
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, int | float):
        return vn_number(value) if name.startswith("scores.") or name == "total_declared" else str(value)
    if name == "subject.group":
        labels = {g.code: g.short_label for g in load_groups()}
        return labels.get(str(value), str(value))
    return str(value)


def build(row: RecordRow, changes: Iterable[Correction], key_names: Mapping[str, str]) -> ReviewView:
    from formsvc.render import list_forms

    data: dict[str, Any] = row.data or {}
    cset = _criteria(row.criteria_set)
    result: dict[str, Any] = data.get("result") or {}
    reasons: list[dict[str, Any]] = list(result.get("reasons") or [])
    threshold = get_settings().review_confidence
    provenance = {f["name"]: f for f in data.get("fields", []) if isinstance(f, dict) and f.get("name")}
    # Same rule as the API's record view: a crop exists when the field has a box on a page we stored.
    crops = {name: f"/v1/records/{row.id}/crops/{name}" for name, f in provenance.items()
             if f.get("bbox") and str(f.get("page")) in (row.pages or {})}

    flagged: set[str] = set()
    notes: dict[str, list[dict[str, str]]] = {}
    for reason in reasons:
        target = reason.get("field") or (f"scores.{reason['indicator']}" if reason.get("indicator") else None)
        if not target:
            continue
        if reason.get("severity") in FLAG_SEVERITIES:
            flagged.add(target)
        if reason.get("severity") != "info":
            notes.setdefault(target, []).append({"severity": str(reason.get("severity")),
                                                 "message": str(reason.get("message", ""))})

    def view(name: str, kind: Kind, *, label: str | None = None, hint: str = "") -> FieldView:
        prov = provenance.get(name, {})
        confidence = prov.get("confidence")
        low = confidence is not None and float(confidence) < threshold
        value = _get(data, name)
        fv = FieldView(name=name, label=label or label_for(name, cset), kind=kind, value=_shown(kind, value),
                       editable=_editable(name), confidence=confidence, crop=crops.get(name),
                       source=SOURCE_LABELS.get(prov.get("source", ""), prov.get("source")), page=prov.get("page"),
                       flagged=name in flagged or low, low_confidence=low, notes=notes.get(name, []), hint=hint)
        if kind == "group":
            fv.options = [("", "(chưa rõ)")] + [(g.code, g.short_label) for g in load_groups()]
            if fv.value and fv.value not in {code for code, _ in fv.options}:
                fv.options.append((fv.value, f"{fv.value} (không nhận ra)"))
        return fv

    scores: dict[str, Any] = data.get("scores") or {}
    indicators: list[IndicatorView] = []
    known = [i.id for i in cset.indicators] if cset else []
    for ind_id in known + [k for k in scores if k not in known]:
        ind = cset.indicator(ind_id) if cset else None
        hint = (f"tối đa {vn_number(ind.max_points)}, bước {vn_number(ind.step)}" if ind else "")
        indicators.append(IndicatorView(
            id=ind_id, number=ind.number if ind else None, title=ind.title if ind else ind_id,
            max_points=ind.max_points if ind else None, min_points=ind.min_points if ind else None,
            score=view(f"scores.{ind_id}", "score", hint=hint), evidence=view(f"evidence.{ind_id}", "text")))

    shown = {n for n, _ in SUBJECT_FIELDS + GENERAL_FIELDS} | {"total_declared"}
    shown |= {f"{p}.{i.id}" for i in indicators for p in ("scores", "evidence")}
    others = [view(name, "text") for name in provenance if name not in shown]

    forms = {f.id: f.title for f in list_forms()}
    if cset is None:
        outcome = ""
    elif result.get("band_label"):
        outcome = str(result["band_label"])
    elif result.get("recognised") is not None:
        outcome = "Đạt danh hiệu" if result["recognised"] else "Chưa đạt danh hiệu"
    else:
        outcome = ""
    history = [{"at": vn_time(c.at), "by": key_names.get(c.key_id, c.key_id),
                "action": ACTION_LABELS.get(c.action, "Sửa"), "kind": c.action,
                "field": label_for(c.field, cset), "name": c.field,
                # A settled finding shows what it had said; a change shows old -> new.
                "old": (str(c.old_value.get("message", "")) if c.action == "clear_finding"
                        and isinstance(c.old_value, dict) else _value_text(c.field, c.old_value)),
                "new": _value_text(c.field, c.new_value)}
               for c in changes]
    order = {s: i for i, s in enumerate(SEVERITY_LABELS)}
    shown_reasons = [{"severity": str(r.get("severity", "error")), "code": str(r.get("code", "")),
                      "label": SEVERITY_LABELS.get(str(r.get("severity")), str(r.get("severity"))),
                      "message": str(r.get("message", "")),
                      "field": label_for(str(r["field"]), cset) if r.get("field") else ""}
                     for r in sorted(reasons, key=lambda r: order.get(str(r.get("severity")), 9))]
    subject = [view(n, k) for n, k in SUBJECT_FIELDS]
    general = [view(n, k) for n, k in GENERAL_FIELDS]
    total_declared = view("total_declared", "score")
    every = subject + general + [total_declared] + others + [i.score for i in indicators] + \
        [i.evidence for i in indicators]
    return ReviewView(
        id=row.id, version=row.version, unit=row.unit, form=row.form, form_title=forms.get(row.form, row.form),
        criteria_set=row.criteria_set, criteria_title=cset.title if cset else row.criteria_set, year=row.year,
        status=row.status, approved=row.approved, approved_at=vn_time(row.approved_at),
        approved_by=key_names.get(row.approved_by or "", row.approved_by or ""), job_id=row.job_id,
        subject_name=row.subject_name, updated_at=vn_time(row.updated_at), subject=subject, general=general,
        total_declared=total_declared, indicators=indicators, others=others, reasons=shown_reasons,
        total=result.get("total"), max_total=result.get("max_total") or (cset.total_max if cset else None),
        outcome=outcome, flagged_count=sum(1 for f in every if f.flagged), history=history)
