"""Minutes ↔ self-assessments: everyone proposed must have a self-assessment that meets the rule."""

from __future__ import annotations

from rapidfuzz import fuzz

from formsvc.forms import document_kind
from formsvc.records import Reason, Record
from formsvc.records.minutes import MinutesData
from formsvc.text import fold

NAME_MATCH = 92


def _key(record: Record, index: int) -> str:
    return record.id or str(index)


def cross_check(records: list[Record]) -> dict[str, list[Reason]]:
    """Extra reasons per record key (record.id, or its index in `records`), for every minutes record among
    `records` against the (validated) self-assessments among them."""
    sheets = [r for r in records if is_sheet(r)]
    return {_key(rec, i): check_minutes(rec, sheets) for i, rec in enumerate(records) if is_minutes(rec)}


def is_minutes(record: Record) -> bool:
    return document_kind(record.form) == "minutes"


def is_sheet(record: Record) -> bool:
    return document_kind(record.form) == "self_assessment"


def check_minutes(minutes_rec: Record, sheets: list[Record]) -> list[Reason]:
    """Findings of one minutes record against validated self-assessments (of any year: those of another year
    are left out here). Computed afresh at every validation, never stored, so they cannot go stale."""
    reasons: list[Reason] = []
    if not is_minutes(minutes_rec) or "minutes" not in minutes_rec.extra:
        return reasons
    sheets = [s for s in sheets if is_sheet(s) and s.year == minutes_rec.year]
    minutes = MinutesData.model_validate(minutes_rec.extra["minutes"])
    for cand in minutes.candidates:
        scored = []
        for si, sheet in enumerate(sheets):
            score = fuzz.ratio(fold(cand.full_name), fold(sheet.subject.full_name))
            if cand.birth_year and sheet.subject.birth_year and cand.birth_year != sheet.subject.birth_year:
                score -= 30
            scored.append((score, si, sheet))
        best = max(scored, default=None, key=lambda t: t[0])
        if best is None or best[0] < NAME_MATCH:
            if cand.proposed:
                reasons.append(Reason(code="proposed_without_self_assessment", severity="review",
                                      field="extra.minutes.candidates",
                                      message=f"{cand.full_name} được đề nghị công nhận nhưng không có bản "
                                              "tự đánh giá trong hồ sơ."))
            continue
        _, si, sheet = best
        if cand.full_name != sheet.subject.full_name:
            reasons.append(Reason(code="name_matched_without_diacritics", severity="info",
                                  message=f"«{cand.full_name}» trong biên bản được ghép với bản tự đánh giá "
                                          f"của «{sheet.subject.full_name}»."))
        recognised = bool(sheet.result and sheet.result.recognised)
        if cand.proposed and not recognised:
            reasons.append(Reason(code="proposed_not_meeting_rule", severity="review",
                                  message=f"{cand.full_name} được đề nghị công nhận nhưng bản tự đánh giá "
                                          "chưa đạt điều kiện."))
        total = sheet.result.total if sheet.result else None
        if cand.agreed_total is not None and total is not None and cand.agreed_total != total:
            reasons.append(Reason(code="agreed_total_differs", severity="review",
                                  message=f"{cand.full_name}: điểm thống nhất trong biên bản "
                                          f"({cand.agreed_total:g}) khác tổng điểm trên phiếu ({total:g})."))
    return reasons
