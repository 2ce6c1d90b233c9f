"""Check a record against its criteria set and apply the outcome rule.

Every finding is a Reason with a stable code, a severity and a Vietnamese message naming the
indicator. Severity decides the status: any error -> rejected, any review -> needs_review,
otherwise valid. Scores that are missing, invalid or lack required evidence count 0 points, so
the outcome is always exactly the rule applied to the effective scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from formsvc.criteria.groups import resolve_group
from formsvc.criteria.loader import CriteriaRegistry
from formsvc.criteria.model import CriteriaSet, Indicator, LevelsRule, RankingRule, RecognitionRule
from formsvc.criteria.store import set_id_of
from formsvc.forms import document_kind
from formsvc.records.model import Reason, Record, RecordStatus, Result
from formsvc.validation.levels import applies, apply_levels, read_input
from formsvc.validation.messages import field_label, indicator_label, num

DEFAULT_REVIEW_CONFIDENCE = 0.80


@dataclass
class _Scored:
    indicator: Indicator
    raw: Decimal | None  # a valid number as written, before evidence is applied
    effective: Decimal  # points that count toward the total


def _to_decimal(value: float | str | None) -> Decimal | None:
    if value is None or isinstance(value, str):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


MACHINE_SOURCES = frozenset({"ocr", "handwriting"})
MACHINE_NOTE = " Giá trị do máy đọc từ bản quét, có thể đọc sai: cần kiểm tra lại ô này."


def machine_read(record: Record) -> set[str]:
    """Fields whose current value came from reading a scan (OCR or the handwriting recogniser), not from a person
    or a text layer. A value there that the criteria do not allow is more likely a misread than the writer's."""
    last: dict[str, str] = {}
    for f in record.fields:
        last[f.name] = f.source
    return {name for name, source in last.items() if source in MACHINE_SOURCES}


def _check_score(ind: Indicator, value: float | str | None, reasons: list[Reason],
                 machine: bool = False) -> Decimal | None:
    """The score as a number the criteria allow, or None with a finding. A finding on a machine-read value is a
    review finding on that box, never a rejection: a misread must not turn a valid sheet into a rejected one."""
    label = indicator_label(ind)
    field = f"scores.{ind.id}"

    def bad(code: str, message: str) -> None:
        if machine:
            reasons.append(Reason(code=code, indicator=ind.id, field=field, severity="review",
                                  message=message + MACHINE_NOTE))
        else:
            reasons.append(Reason(code=code, indicator=ind.id, field=field, message=message))

    if value is None:
        reasons.append(Reason(code="score_missing", indicator=ind.id, field=field,
                              severity="review", message=f"{label}: chưa có điểm."))
        return None
    score = _to_decimal(value)
    if score is None:
        bad("score_not_numeric", f"{label}: điểm «{value}» không phải là số.")
        return None
    if score < 0:
        bad("score_below_zero", f"{label}: điểm {num(score)} nhỏ hơn 0.")
        return None
    max_points = Decimal(str(ind.max_points))
    if score > max_points:
        bad("score_above_max", f"{label}: điểm {num(score)} lớn hơn điểm tối đa {num(max_points)}.")
        return None
    step = Decimal(str(ind.step))
    if score % step != 0:
        bad("score_wrong_step", f"{label}: điểm {num(score)} không đúng bước chấm {num(step)} "
                                f"(chỉ được chấm theo bội số của {num(step)}).")
        return None
    return score


def _score_indicators(record: Record, cset: CriteriaSet, reasons: list[Reason],
                      skip: frozenset[str] = frozenset()) -> list[_Scored]:
    scored: list[_Scored] = []
    machine = machine_read(record)
    for ind in cset.indicators:
        if ind.id in skip and record.scores.get(ind.id) is None:
            # Not applicable to this unit (e.g. learner indicators outside schools): nothing to fill in.
            scored.append(_Scored(indicator=ind, raw=None, effective=Decimal(0)))
            continue
        raw = _check_score(ind, record.scores.get(ind.id), reasons, f"scores.{ind.id}" in machine)
        effective = raw if raw is not None else Decimal(0)
        evidence = (record.evidence.get(ind.id) or "").strip()
        if raw is not None and raw > 0 and ind.evidence_required and not evidence:
            reasons.append(Reason(
                code="evidence_missing", indicator=ind.id, field=f"evidence.{ind.id}", severity="warning",
                message=f"{indicator_label(ind)}: không có minh chứng nên không được tính điểm "
                        f"(điểm tự chấm {num(raw)} được tính là 0).",
            ))
            effective = Decimal(0)
        scored.append(_Scored(indicator=ind, raw=raw, effective=effective))
    return scored


def _check_structure(record: Record, cset: CriteriaSet, reasons: list[Reason]) -> None:
    known = {i.id for i in cset.indicators}
    for key in sorted(set(record.scores) | set(record.evidence)):
        if key not in known:
            reasons.append(Reason(code="unknown_indicator", indicator=key, field=f"scores.{key}",
                                  message=f"Chỉ tiêu «{key}» không có trong bộ tiêu chí {cset.id}."))
    if not cset.years.first <= record.year <= cset.years.last:
        reasons.append(Reason(
            code="year_outside_window", field="year",
            message=f"Năm đánh giá {record.year} nằm ngoài thời gian áp dụng của bộ tiêu chí "
                    f"({cset.years.first}–{cset.years.last}).",
        ))
    if record.assessment_date is not None and record.assessment_date.year != record.year:
        reasons.append(Reason(
            code="date_outside_window", field="assessment_date",
            message=f"Ngày đánh giá {record.assessment_date:%d/%m/%Y} nằm ngoài khoảng lấy số liệu "
                    f"01/01/{record.year} – 31/12/{record.year} của năm đánh giá.",
        ))
    if cset.audience_groups:
        allowed = ", ".join(cset.audience_groups)
        group = resolve_group(record.subject.group)
        if record.subject.group is None:
            reasons.append(Reason(
                code="group_missing", field="subject.group", severity="review",
                message=f"Chưa ghi đối tượng của người tự đánh giá (bộ tiêu chí dùng cho: {allowed}).",
            ))
        elif group is None or group.code not in cset.audience_groups:
            # A group line read from a scan as another group is more likely misread than the writer's: for review.
            machine = "subject.group" in machine_read(record)
            reasons.append(Reason(
                code="group_unknown" if group is None else "wrong_group", field="subject.group",
                severity="review" if machine else "error",
                message=(f"Đối tượng «{record.subject.group}» không thuộc nhóm đối tượng nào đã biết." if group is None
                         else f"Bộ tiêu chí {cset.id} không dùng cho đối tượng «{group.label}».")
                        + (MACHINE_NOTE if machine else ""),
            ))


def _check_total(record: Record, scored: list[_Scored], reasons: list[Reason]) -> None:
    if record.total_declared is None:
        return
    declared = _to_decimal(record.total_declared)
    if declared is None:
        reasons.append(Reason(code="total_not_numeric", field="total_declared", severity="review",
                              message=f"Tổng điểm ghi trên phiếu «{record.total_declared}» không phải là số."))
        return
    written = sum((s.raw for s in scored if s.raw is not None), Decimal(0))
    if declared != written:
        reasons.append(Reason(
            code="total_mismatch", field="total_declared", severity="review",
            message=f"Tổng điểm ghi trên phiếu ({num(declared)}) khác tổng các chỉ tiêu ({num(written)}).",
        ))


def _check_confidence(record: Record, threshold: float, reasons: list[Reason]) -> None:
    for f in record.fields:
        if f.source != "manual" and f.confidence < threshold:
            ind = f.name.split(".", 1)[1] if f.name.startswith("scores.") else None
            reasons.append(Reason(
                code="low_confidence", field=f.name, indicator=ind, severity="review",
                message=f"«{field_label(f.name)}» đọc chưa chắc chắn (độ tin cậy {f.confidence:.0%}), "
                        "cần kiểm tra lại.",
            ))


def _apply_recognition(rule: RecognitionRule, record: Record, cset: CriteriaSet, scored: list[_Scored],
                       total: Decimal, reasons: list[Reason]) -> bool:
    ok = True
    min_total = Decimal(str(rule.min_total))
    if total < min_total:
        ok = False
        reasons.append(Reason(code="total_below_min", field="result.total", severity="info",
                              message=f"Tổng điểm {num(total)} chưa đạt mức {num(min_total)} điểm để được công nhận."))
    for s in scored:
        if s.indicator.min_points is not None and s.effective < Decimal(str(s.indicator.min_points)):
            ok = False
            reasons.append(Reason(
                code="indicator_below_min", indicator=s.indicator.id, severity="info",
                message=f"{indicator_label(s.indicator)}: {num(s.effective)} điểm, dưới mức tối thiểu "
                        f"{num(s.indicator.min_points)} điểm.",
            ))
    if rule.require_registration_before_assessment:
        if record.registered_on is None or record.assessment_date is None:
            ok = False
            reasons.append(Reason(code="registration_unknown", field="registered_on", severity="info",
                                  message="Chưa có ngày đăng ký hoặc ngày đánh giá để xác nhận đã đăng ký trước."))
        elif record.registered_on > record.assessment_date:
            ok = False
            reasons.append(Reason(code="registered_after_assessment", field="registered_on", severity="info",
                                  message="Đăng ký sau thời điểm đánh giá nên chưa đủ điều kiện công nhận."))
    return ok


def status_for(reasons: list[Reason]) -> RecordStatus:
    severities = {r.severity for r in reasons}
    if "error" in severities:
        return "rejected"
    if "review" in severities:
        return "needs_review"
    return "valid"


def validate(record: Record, cset: CriteriaSet, *, review_confidence: float = DEFAULT_REVIEW_CONFIDENCE,
             extra_reasons: list[Reason] | None = None) -> Record:
    """Return a copy of `record` with `result` and `status` filled in. Never raises on bad scores."""
    reasons: list[Reason] = list(extra_reasons or [])
    if set_id_of(record.criteria_set) != cset.id:
        reasons.append(Reason(
            code="criteria_set_mismatch", field="criteria_set",
            message=f"Phiếu ghi bộ tiêu chí «{record.criteria_set}» nhưng được kiểm tra theo «{cset.id}».",
        ))
    _check_structure(record, cset, reasons)
    rule = cset.outcome
    info, info_reasons = read_input(record)
    reasons.extend(info_reasons if isinstance(rule, LevelsRule) else [])
    skip = (frozenset(i.id for i in cset.indicators if not applies(i, info)) if isinstance(rule, LevelsRule)
            else frozenset())
    scored = _score_indicators(record, cset, reasons, skip)
    if not isinstance(rule, LevelsRule):  # a levels record holds 0/1 and percentages: no sum to check
        _check_total(record, scored, reasons)
    _check_confidence(record, review_confidence, reasons)
    total = sum((s.effective for s in scored), Decimal(0))
    max_total = cset.total_max
    recognised: bool | None = None
    band_code: str | None = None
    band_label: str | None = None
    if isinstance(rule, LevelsRule):
        outcome = apply_levels(rule, record, cset, {s.indicator.id: s.raw for s in scored}, info, reasons)
        recognised = outcome.level >= 1
        band_code, band_label = outcome.code, outcome.label
        total, max_total = Decimal(outcome.met), outcome.applicable
    elif isinstance(rule, RecognitionRule):
        recognised = _apply_recognition(rule, record, cset, scored, total, reasons)
    elif isinstance(rule, RankingRule):
        band = next((b for b in rule.bands if total >= Decimal(str(b.min_total))), rule.fallback)
        band_code, band_label = band.code, band.label
        reasons.append(Reason(code="ranking_band", severity="info",
                              message=f"Tổng điểm {num(total)}: xếp loại {band.label}."))
    result = Result(total=float(total), max_total=max_total, recognised=recognised,
                    band=band_code, band_label=band_label, reasons=reasons)
    return record.model_copy(update={"result": result, "status": status_for(reasons)})


def validate_with_registry(record: Record, registry: CriteriaRegistry, *,
                           review_confidence: float = DEFAULT_REVIEW_CONFIDENCE,
                           extra_reasons: list[Reason] | None = None) -> Record:
    """Validate against the set the record names; an unknown set is a rejection, not a crash."""
    if record.criteria_set not in registry:
        reason = Reason(code="criteria_set_unknown", field="criteria_set",
                        message=f"Không tìm thấy bộ tiêu chí «{record.criteria_set}».")
        return record.model_copy(update={
            "result": Result(total=0, max_total=0, reasons=[*(extra_reasons or []), reason]), "status": "rejected",
        })
    return validate(record, registry.get(record.criteria_set), review_confidence=review_confidence,
                    extra_reasons=extra_reasons)


def validate_document(record: Record, registry: CriteriaRegistry, *,
                      review_confidence: float = DEFAULT_REVIEW_CONFIDENCE,
                      extra_reasons: list[Reason] | None = None) -> Record:
    """Any stored document: scored forms against their criteria set; minutes only for unsure fields."""
    if document_kind(record.form) != "minutes":
        return validate_with_registry(record, registry, review_confidence=review_confidence,
                                      extra_reasons=extra_reasons)
    reasons = [*(extra_reasons or []),
               *(Reason(code="low_confidence", field=f.name, severity="review",
                        message=f"«{field_label(f.name)}» đọc chưa chắc chắn, cần kiểm tra lại.")
                 for f in record.fields if f.confidence < review_confidence)]
    return record.model_copy(update={"result": Result(total=0, max_total=0, reasons=reasons),
                                     "status": status_for(reasons)})
