"""ĐVHT percentages computed from stored CDHT records, never typed (Thông tư 24/2023 recognition).

`cdht_shares` is pure: it takes the records (store rows or bare Records) and returns, for the unit and
year, the share of members — and of learners — holding "Công dân học tập". It counts like the unit
report (formsvc.reports.unit_report): the same unit matching, one person once (latest record wins),
and only `valid` recognised records count as holding the title, so a record still waiting for review
never lifts a unit over a threshold.

The denominator is the number of members (learners) the unit declares, because people who never
self-assessed are members too; without it the share is of those assessed and says so (`basis`).
Percentages are rounded DOWN to 0.1 so that rounding can never carry a unit over a threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Literal

from formsvc.criteria.groups import resolve_group
from formsvc.criteria.model import CriteriaSet
from formsvc.errors import InputError
from formsvc.exports import ExportRow
from formsvc.forms import is_self_assessment
from formsvc.records import Record
from formsvc.records.model import FieldProvenance
from formsvc.reports.unit_report import _belongs, _dedupe, _key

MeasureName = Literal["cdht_members_share", "cdht_learners_share"]
LEARNER = "learner"


@dataclass(frozen=True)
class Share:
    measure: MeasureName
    recognised: int
    denominator: int
    basis: Literal["declared", "assessed"]  # declared: the unit's head count; assessed: records found
    percent: Decimal | None  # None when the denominator is 0


def _share(measure: MeasureName, recognised: int, assessed: int, declared: int | None, what: str) -> Share:
    if declared is not None:
        if declared < 0:
            raise InputError(f"Số {what} không được âm ({declared}).", code="bad_member_count")
        if recognised > declared:
            raise InputError(
                f"Có {recognised} {what} đạt danh hiệu “Công dân học tập” trong dữ liệu nhưng đơn vị chỉ khai "
                f"{declared} {what}.", code="bad_member_count",
                hint=f"Kiểm tra lại tổng số {what} của đơn vị.")
    denominator = declared if declared is not None else assessed
    percent = (Decimal(recognised * 100) / denominator).quantize(Decimal("0.1"), ROUND_DOWN) if denominator else None
    return Share(measure=measure, recognised=recognised, denominator=denominator,
                 basis="declared" if declared is not None else "assessed", percent=percent)


def cdht_shares(records: Iterable[Record | ExportRow], *, unit: str, year: int, members: int | None = None,
                learners: int | None = None) -> dict[MeasureName, Share]:
    """Share of the unit's members (and learners) recognised as "Công dân học tập" in `year`."""
    unit_key = _key(unit)
    items: list[Record | ExportRow] = []
    for item in records:
        rec = item.record if isinstance(item, ExportRow) else item
        if rec.year == year and is_self_assessment(rec.form, "cdht") and _belongs(item, unit_key, dvht=False):
            items.append(item)
    kept, _ = _dedupe(items)
    tally = {False: [0, 0], True: [0, 0]}  # is learner -> [assessed, recognised]
    for rec in kept:
        group = resolve_group(rec.subject.group)
        slot = tally[group is not None and group.code == LEARNER]
        slot[0] += 1
        slot[1] += int(rec.status == "valid" and rec.result is not None and rec.result.recognised is True)
    return {
        "cdht_members_share": _share("cdht_members_share", tally[False][1], tally[False][0], members, "thành viên"),
        "cdht_learners_share": _share("cdht_learners_share", tally[True][1], tally[True][0], learners, "người học"),
    }


def fill_computed(record: Record, cset: CriteriaSet, shares: dict[MeasureName, Share]) -> Record:
    """The record with every computed indicator set from `shares` (a typed value is replaced).

    A share that cannot be computed (nobody to count) leaves the score empty, so validation says the
    figure is missing instead of trusting a typed one. Provenance says the value is computed.
    """
    scores = dict(record.scores)
    fields = [f for f in record.fields if not any(
        f.name == f"scores.{i.id}" for i in cset.indicators if i.measure and i.measure.computed)]
    for ind in cset.indicators:
        if ind.measure is None or ind.measure.computed is None:
            continue
        share = shares[ind.measure.computed]
        value = float(share.percent) if share.percent is not None else None
        scores[ind.id] = value
        fields.append(FieldProvenance(name=f"scores.{ind.id}", value=value, confidence=1.0, source="known_value"))
    return record.model_copy(update={"scores": scores, "fields": fields})
