"""Recognition by levels (Thông tư 24/2023/TT-BGDĐT): every applicable indicator met -> "đạt mức độ N".

Pure functions over a record's effective values. A "met / not met" indicator is scored 1 / 0, or — when
it has a measure — carries the measured percentage, which meets a level when it reaches that level's
threshold. The outcome is the highest level L such that every level up to L is met and L's prerequisite
(a lower level held for long enough, still valid) is satisfied. Each indicator gets one reason saying
whether it is met at the level asked for, so a unit reads why without opening the criteria file.

What a ĐVHT record adds for this rule lives in `record.extra["recognition"]` (RecognitionInput): the
level asked for, whether the unit is an education institution (learner indicators apply), the unit's
previous recognition (level and date) and the date the dossier went in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from formsvc.criteria.model import CriteriaSet, DayMonth, Indicator, LevelsRule
from formsvc.records.model import Reason, Record
from formsvc.validation.messages import indicator_label, num

EXTRA_KEY = "recognition"
NOT_REACHED = "chua_dat_muc_do"  # distinct from the ranking band "chua_dat": the two never merge in reports
SCOPE_LABELS = {"huyen": "cấp huyện", "tinh": "cấp tỉnh"}


class PreviousRecognition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(ge=1, description="Level the unit was recognised at")
    date: dt.date = Field(description="Date of that recognition decision")


class RecognitionInput(BaseModel):
    """What a recognition dossier states besides the indicators (record.extra['recognition'])."""

    model_config = ConfigDict(extra="forbid")

    requested_level: int = Field(default=1, ge=1, description="Level the unit asks to be recognised at")
    education_institution: bool = Field(default=False, description="Learner indicators apply")
    previous: PreviousRecognition | None = None
    submitted_on: dt.date | None = Field(default=None, description="Date the dossier went in")


@dataclass(frozen=True)
class LevelsOutcome:
    level: int  # 0: no level reached
    met: int  # applicable indicators met at the level asked for
    applicable: int
    code: str
    label: str


def read_input(record: Record) -> tuple[RecognitionInput, list[Reason]]:
    raw: Any = record.extra.get(EXTRA_KEY) or {}
    try:
        return RecognitionInput.model_validate(raw), []
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(gốc)'}: {e['msg']}" for e in exc.errors())
        return RecognitionInput(), [Reason(code="recognition_input_invalid", field=f"extra.{EXTRA_KEY}",
                                           message=f"Thông tin đề nghị công nhận không hợp lệ: {problems}.")]


def applies(ind: Indicator, info: RecognitionInput) -> bool:
    return ind.only_for != "education_institution" or info.education_institution


def _on(day: DayMonth, year: int) -> dt.date:
    try:
        return dt.date(year, day.month, day.day)
    except ValueError:  # 29/2 in a common year
        return dt.date(year, day.month, 28)


def dossier_deadline(rule: LevelsRule, year: int) -> dt.date:
    """Last day to hand in the dossier for figures of `year` (in the following year)."""
    return _on(rule.dossier_deadline, year + 1)


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _threshold(ind: Indicator, level: int) -> Decimal | None:
    """The percentage needed at `level`: its own, else the nearest lower level's."""
    if ind.measure is None:
        return None
    known = [lv for lv in ind.measure.thresholds if lv <= level]
    return Decimal(str(ind.measure.thresholds[max(known)])) if known else None


def _met_at(ind: Indicator, value: Decimal | None, level: int) -> bool:
    if ind.levels is not None and level not in ind.levels:
        return True  # not required at this level
    if value is None:
        return False
    threshold = _threshold(ind, level)
    if threshold is None:
        return value >= 1
    return value >= threshold


def _explain(ind: Indicator, value: Decimal | None, level: int, met: bool) -> Reason:
    label = indicator_label(ind)
    if value is None:
        return Reason(code="indicator_not_met", indicator=ind.id, severity="info",
                      message=f"{label}: chưa có kết quả nên không đạt.")
    if ind.measure is None:
        return Reason(code="indicator_met" if met else "indicator_not_met", indicator=ind.id, severity="info",
                      message=f"{label}: {'đạt' if met else 'không đạt'}.")
    threshold = _threshold(ind, level)
    measured = f"{num(value)}% {ind.measure.of}"
    if met:
        return Reason(code="indicator_met", indicator=ind.id, severity="info",
                      message=f"{label}: {measured}, đạt ngưỡng {num(threshold or 0)}% của mức độ {level}.")
    lower = [lv for lv in range(1, level) if _met_at(ind, value, lv)]
    also = f" (đạt ngưỡng của mức độ {max(lower)})" if lower else ""
    return Reason(code="indicator_not_met", indicator=ind.id, severity="info",
                  message=f"{label}: {measured}, dưới ngưỡng {num(threshold or 0)}% của mức độ {level}"
                          f"{also} — không đạt.")


def _prerequisite(rule: LevelsRule, level: int, info: RecognitionInput, on: dt.date) -> str | None:
    """Why `level` cannot be granted yet, or None when its prerequisite holds on date `on`."""
    spec = rule.level(level)
    if spec is None or spec.requires_level is None:
        return None
    need = f"mức độ {spec.requires_level}"
    years = spec.min_years_at_required
    prev = info.previous
    if prev is None or prev.level < spec.requires_level:
        return (f"chưa có quyết định công nhận {need} trước đó (phải giữ {need} ít nhất {years} năm "
                f"trước khi xét {spec.label.lower()})")
    held_since = _add_years(prev.date, years)
    if held_since > on:
        return (f"được công nhận {need} ngày {prev.date:%d/%m/%Y}, đến ngày {on:%d/%m/%Y} chưa đủ {years} năm "
                f"(đủ từ ngày {held_since:%d/%m/%Y})")
    expires = _add_years(prev.date, rule.validity_years)
    if expires <= on:
        return (f"quyết định công nhận {need} ngày {prev.date:%d/%m/%Y} đã hết thời hạn {rule.validity_years} năm "
                f"(đến ngày {expires:%d/%m/%Y})")
    return None


def apply_levels(rule: LevelsRule, record: Record, cset: CriteriaSet, values: dict[str, Decimal | None],
                 info: RecognitionInput, reasons: list[Reason]) -> LevelsOutcome:
    """Decide the level reached; append one reason per indicator, prerequisite and the outcome."""
    top = max(lv.level for lv in rule.levels)
    asked = min(info.requested_level, top)
    if info.requested_level > top:
        reasons.append(Reason(code="level_unknown", field=f"extra.{EXTRA_KEY}.requested_level", severity="info",
                              message=f"Bộ tiêu chí không có mức độ {info.requested_level}; xét đến mức độ {top}."))
    on = info.submitted_on or dossier_deadline(rule, record.year)
    inds = [i for i in cset.indicators if applies(i, info)]
    for ind in cset.indicators:
        if ind not in inds:
            reasons.append(Reason(code="indicator_not_applicable", indicator=ind.id, severity="info",
                                  message=f"{indicator_label(ind)}: không áp dụng (chỉ dùng cho cơ sở giáo dục)."))
    met_asked = 0
    for ind in inds:
        ok = _met_at(ind, values.get(ind.id), asked)
        met_asked += ok
        reasons.append(_explain(ind, values.get(ind.id), asked, ok))
    reached = 0
    for level in range(1, asked + 1):
        failing = [i for i in inds if not _met_at(i, values.get(i.id), level)]
        blocked = _prerequisite(rule, level, info, on)
        if blocked is not None:
            reasons.append(Reason(code="level_requires_previous", field=f"extra.{EXTRA_KEY}.previous", severity="info",
                                  message=f"Chưa đủ điều kiện xét mức độ {level}: {blocked}."))
        if failing or blocked is not None:
            break
        reached = level
    if info.submitted_on is not None and info.submitted_on > dossier_deadline(rule, record.year):
        reasons.append(Reason(
            code="dossier_late", field=f"extra.{EXTRA_KEY}.submitted_on", severity="warning",
            message=f"Hồ sơ nộp ngày {info.submitted_on:%d/%m/%Y}, sau hạn "
                    f"{dossier_deadline(rule, record.year):%d/%m/%Y}.",
        ))
    scope = SCOPE_LABELS[rule.scope]
    if reached:
        label = f"Đạt mức độ {reached}"
        until = _add_years(on, rule.validity_years)
        text = (f"Kết quả: đạt mức độ {reached} ({scope}); công nhận có giá trị {rule.validity_years} năm "
                f"(đến khoảng {until:%d/%m/%Y}).")
        if reached < asked:
            text += f" Chưa đạt mức độ {asked} như đề nghị."
    else:
        label = "Chưa đạt mức độ 1"
        missing = [i.number for i in inds if not _met_at(i, values.get(i.id), 1)]
        text = (f"Kết quả: chưa đạt mức độ 1 ({scope})"
                + (f": không đạt chỉ tiêu {', '.join(str(n) for n in missing)}." if missing else "."))
    reasons.append(Reason(code="recognition_level", severity="info", message=text))
    return LevelsOutcome(level=reached, met=met_asked, applicable=len(inds),
                         code=f"muc_do_{reached}" if reached else NOT_REACHED, label=label)
