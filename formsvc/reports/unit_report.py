"""The numbers of a unit's yearly report upward, computed from its stored records.

Counting rules (the report goes to the district, so nothing provisional is counted as final):

- Input may be store rows (ExportRow) or bare Records. A store row counts for the unit when the
  store's `unit` is the unit: that is the account the document was filed under, while the unit
  written on the form is free text (or misread). A bare Record counts when its `subject.unit` is
  the unit; a ĐVHT self-assessment names the assessed unit in `subject.full_name` and its managing
  body in `subject.unit`, so it counts for either. Units compare NFC and case-insensitively, and
  the year must match.
- Forms the registry calls self-assessments (document: self_assessment) count, as CDHT or ĐVHT by the
  form's kind; other forms (minutes, decisions …) are not counted.
- One person (or unit) is counted once: when several records share a `subject.id`, the most recently
  updated store row wins (for bare Records, the last one in the input) and the id is listed in
  `duplicate_subject_ids`. Records without a `subject.id` cannot be matched and all count.
- Every assessed record falls in exactly one status bucket: `valid` records are recognised or not
  (or ranked), the others are `needs_review`, `rejected` or `unvalidated` (never run through the
  validation engine). A record waiting for review is not counted as recognised even if its score
  would be enough; `pending_recognised` says how many of those would be.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from formsvc.criteria import CriteriaRegistry, RankingRule, default_registry, resolve_group
from formsvc.criteria.model import LevelsRule
from formsvc.exports import ExportRow
from formsvc.forms import find_form
from formsvc.records import Record
from formsvc.text import nfc
from formsvc.validation.levels import NOT_REACHED
from formsvc.validation.messages import num

UNKNOWN_GROUP_LABEL = "Chưa rõ đối tượng"
UNKNOWN_BAND_LABEL = "Chưa xếp loại"


class _Labelled(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def labels(cls) -> dict[str, str]:
        """Vietnamese display label of each field (its JSON Schema title)."""
        return {name: f.title or name for name, f in cls.model_fields.items()}


class GroupCount(_Labelled):
    code: str | None = Field(title="Mã đối tượng", description="Audience group code; None when missing/unknown")
    label: str = Field(title="Đối tượng")
    assessed: int = Field(title="Số tự đánh giá")
    recognised: int = Field(title="Số được công nhận")
    recognised_rate: float | None = Field(title="Tỷ lệ công nhận (%)", description="Of assessed, 1 decimal")


class BandCount(_Labelled):
    code: str = Field(title="Mã xếp loại")
    label: str = Field(title="Xếp loại")
    count: int = Field(title="Số đơn vị")


class CdhtCounts(_Labelled):
    assessed: int = Field(0, title="Số tự đánh giá")
    recognised: int = Field(0, title="Số được công nhận")
    not_recognised: int = Field(0, title="Số chưa đạt")
    needs_review: int = Field(0, title="Số cần kiểm tra")
    rejected: int = Field(0, title="Số không hợp lệ")
    unvalidated: int = Field(0, title="Số chưa kiểm tra")
    pending_recognised: int = Field(0, title="Số cần kiểm tra có điểm đạt",
                                    description="needs_review records whose computed result is recognised")
    average_total: float | None = Field(None, title="Điểm trung bình (tính lại)",
                                        description="Mean computed total of valid and needs_review records")
    recognised_rate: float | None = Field(None, title="Tỷ lệ công nhận (%)",
                                          description="recognised / assessed × 100, 1 decimal")
    groups: list[GroupCount] = Field(default_factory=list, title="Theo đối tượng")


class DvhtCounts(_Labelled):
    assessed: int = Field(0, title="Số đơn vị tự đánh giá")
    recognised: int = Field(0, title="Số đơn vị được công nhận",
                            description="Valid records of recognition sets (Thông tư 24/2023) reaching a level")
    not_recognised: int = Field(0, title="Số đơn vị chưa được công nhận")
    needs_review: int = Field(0, title="Số cần kiểm tra")
    rejected: int = Field(0, title="Số không hợp lệ")
    unvalidated: int = Field(0, title="Số chưa kiểm tra")
    bands: list[BandCount] = Field(default_factory=list, title="Theo xếp loại",
                                   description="Valid records by ranking band (Thông tư 22/2020) or level "
                                               "reached (Thông tư 24/2023, muc_do_N), best first")


class UnitReport(_Labelled):
    unit: str = Field(title="Đơn vị")
    year: int = Field(title="Năm")
    cdht: CdhtCounts = Field(title="Công dân học tập")
    dvht: DvhtCounts = Field(title="Đơn vị học tập")
    duplicate_subject_ids: list[str] = Field(default_factory=list, title="Mã có nhiều bản ghi")


def _key(text: str | None) -> str | None:
    return nfc(text).casefold() if text else None


def _rate(part: int, whole: int) -> float | None:
    if whole <= 0:
        return None
    return float((Decimal(part) * 100 / whole).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _belongs(item: Record | ExportRow, unit_key: str | None, dvht: bool) -> bool:
    if unit_key is None:  # otherwise a blank unit would claim every record that has none
        return False
    if isinstance(item, ExportRow):
        return _key(item.unit) == unit_key
    if _key(item.subject.unit) == unit_key:
        return True
    return dvht and _key(item.subject.full_name) == unit_key


def _newer(a: Record | ExportRow, b: Record | ExportRow) -> bool:
    """Whether `a` (later in the input) supersedes `b`: by store time when both have one, else by position."""
    if isinstance(a, ExportRow) and isinstance(b, ExportRow):
        try:
            return a.updated_at >= b.updated_at
        except TypeError:  # naive vs aware timestamps: no reliable order, fall back to position
            return True
    return True


def _dedupe(items: list[Record | ExportRow]) -> tuple[list[Record], list[str]]:
    winner: dict[str, int] = {}
    seen: dict[str, int] = {}
    records = [item.record if isinstance(item, ExportRow) else item for item in items]
    for n, rec in enumerate(records):
        sid = rec.subject.id
        if sid is None:
            continue
        seen[sid] = seen.get(sid, 0) + 1
        if sid not in winner or _newer(items[n], items[winner[sid]]):
            winner[sid] = n
    kept = [rec for n, rec in enumerate(records) if rec.subject.id is None or winner[rec.subject.id] == n]
    return kept, sorted(sid for sid, count in seen.items() if count > 1)


def _cdht_counts(records: list[Record]) -> CdhtCounts:
    counts: dict[str, int] = dict.fromkeys(
        ("recognised", "not_recognised", "needs_review", "rejected", "unvalidated", "pending_recognised"), 0)
    totals: list[Decimal] = []
    by_group: dict[str | None, list[int]] = {}  # code -> [assessed, recognised]
    for rec in records:
        recognised = rec.status == "valid" and rec.result is not None and rec.result.recognised is True
        if rec.status == "valid":
            counts["recognised" if recognised else "not_recognised"] += 1
        elif rec.status is None or rec.result is None:
            counts["unvalidated"] += 1
        else:
            counts[rec.status] += 1
            if rec.status == "needs_review" and rec.result.recognised:
                counts["pending_recognised"] += 1
        # A rejected record's total is not a score (an unknown criteria set computes 0), so it would
        # only drag the mean down.
        if rec.result is not None and rec.status in ("valid", "needs_review"):
            totals.append(Decimal(str(rec.result.total)))
        group = resolve_group(rec.subject.group)
        slot = by_group.setdefault(group.code if group else None, [0, 0])
        slot[0] += 1
        slot[1] += int(recognised)
    numbered: list[tuple[int, GroupCount]] = []
    for code, (assessed, recognised_n) in by_group.items():
        group = resolve_group(code)
        # Official group order (1 farmers, 2 workers, 3 officials), unknown last.
        numbered.append((group.number if group else 1_000, GroupCount(
            code=code, label=group.short_label if group else UNKNOWN_GROUP_LABEL, assessed=assessed,
            recognised=recognised_n, recognised_rate=_rate(recognised_n, assessed))))
    groups = [g for _, g in sorted(numbered, key=lambda item: item[0])]
    average = (float((sum(totals, Decimal(0)) / len(totals)).quantize(Decimal("0.01"), ROUND_HALF_UP))
               if totals else None)
    return CdhtCounts(assessed=len(records), **counts, average_total=average,
                      recognised_rate=_rate(counts["recognised"], len(records)), groups=groups)


def _band_order(registry: CriteriaRegistry) -> dict[str, int]:
    # Band codes across all ranking sets, best first: reports list Tốt before Khá whatever the input order.
    order: dict[str, int] = {}
    for cset in registry:
        if isinstance(cset.outcome, RankingRule):
            for band in [*cset.outcome.bands, cset.outcome.fallback]:
                order.setdefault(band.code, len(order))
    for cset in registry:
        if isinstance(cset.outcome, LevelsRule):
            for level in sorted(cset.outcome.levels, key=lambda lv: -lv.level):
                order.setdefault(f"muc_do_{level.level}", len(order))
            order.setdefault(NOT_REACHED, len(order))
    return order


def _dvht_counts(records: list[Record], registry: CriteriaRegistry) -> DvhtCounts:
    counts: dict[str, int] = dict.fromkeys(
        ("recognised", "not_recognised", "needs_review", "rejected", "unvalidated"), 0)
    bands: dict[str, tuple[str, int]] = {}
    for rec in records:
        result = rec.result
        if rec.status is None or result is None:
            counts["unvalidated"] += 1
        elif rec.status != "valid":
            counts[rec.status] += 1
        elif result.band is not None or result.recognised is not None:
            # Ranking sets give a band; TT 24/2023 recognition gives both a level ("muc_do_1") and a yes/no.
            if result.band is not None:
                label, n = bands.get(result.band, (result.band_label or result.band, 0))
                bands[result.band] = (label, n + 1)
            if result.recognised is not None:
                counts["recognised" if result.recognised else "not_recognised"] += 1
        else:
            # Valid but neither ranked nor recognised cannot come out of the engine; keep the sum whole.
            counts["unvalidated"] += 1
    order = _band_order(registry)
    band_list = sorted((BandCount(code=code, label=label, count=n) for code, (label, n) in bands.items()),
                       key=lambda b: (order.get(b.code, len(order)), b.code))
    return DvhtCounts(assessed=len(records), **counts, bands=band_list)


def unit_report(records: Iterable[Record | ExportRow], *, unit: str, year: int,
                registry: CriteriaRegistry | None = None) -> UnitReport:
    """Count the unit's CDHT and ĐVHT self-assessments of `year` (rules in the module docstring).

    `registry` only orders ĐVHT bands (best first); the default is the built-in criteria sets.
    """
    unit_key = _key(unit)
    cdht_items: list[Record | ExportRow] = []
    dvht_items: list[Record | ExportRow] = []
    for item in records:
        rec = item.record if isinstance(item, ExportRow) else item
        if rec.year != year:
            continue
        form = find_form(rec.form)
        if form is None or form.document != "self_assessment":
            continue
        if form.kind == "cdht" and _belongs(item, unit_key, dvht=False):
            cdht_items.append(item)
        elif form.kind == "dvht" and _belongs(item, unit_key, dvht=True):
            dvht_items.append(item)
    cdht, cdht_dupes = _dedupe(cdht_items)
    dvht, dvht_dupes = _dedupe(dvht_items)
    return UnitReport(unit=nfc(unit), year=year, cdht=_cdht_counts(cdht),
                      dvht=_dvht_counts(dvht, registry or default_registry()),
                      duplicate_subject_ids=sorted({*cdht_dupes, *dvht_dupes}))


def _pct(value: float | None) -> str:
    return f"{num(value)}%" if value is not None else "…"


def report_notes(report: UnitReport) -> str:
    """A one-paragraph Vietnamese breakdown for the report's notes: what the one-row table cannot show."""
    c = report.cdht
    parts = [
        f"Trong {c.assessed} bản tự đánh giá: {c.recognised} được công nhận ({_pct(c.recognised_rate)}), "
        f"{c.not_recognised} chưa đạt, {c.needs_review} cần kiểm tra"
        + (f" (trong đó {c.pending_recognised} có điểm đạt)" if c.pending_recognised else "")
        + f", {c.rejected} không hợp lệ"
        + (f", {c.unvalidated} chưa kiểm tra" if c.unvalidated else "")
        + "."
    ]
    if c.average_total is not None:
        parts.append(f"Điểm trung bình: {num(c.average_total)}.")
    if c.groups:
        parts.append("Theo đối tượng: " + "; ".join(
            f"{g.label}: {g.recognised}/{g.assessed} được công nhận" for g in c.groups) + ".")
    d = report.dvht
    if d.assessed:
        ranked = ", ".join(f"{b.label} {b.count}" for b in d.bands)
        dvht = f"“Đơn vị học tập”: {d.assessed} đơn vị tự đánh giá"
        if ranked:
            dvht += f"; xếp loại: {ranked}"
        if d.recognised or d.not_recognised:
            dvht += f"; {d.recognised} được công nhận, {d.not_recognised} chưa được công nhận"
        if d.needs_review or d.rejected or d.unvalidated:
            dvht += f"; {d.needs_review + d.rejected + d.unvalidated} chưa có kết quả chính thức"
        parts.append(dvht + ".")
    return " ".join(parts)


def report_context(report: UnitReport, *, staff: int | None = None, registered: int | None = None,
                   issuer: str | None = None, addressee: str | None = None, head_title: str | None = None,
                   head_name: str | None = None, doc_number: str | None = None, place: str | None = None,
                   date: str | None = None, notes: str | None = None,
                   recipients: list[str] | None = None) -> dict[str, Any]:
    """`data` for render_document("cdht-unit-report", data, …) (also fits "cdht-registration-progress").

    From the records: `self_assessed` (= report.cdht.assessed) and `recognised` (valid and recognised
    only), the year, the issuer (defaults to the unit) and a notes paragraph with the breakdown the
    one-row table has no column for (status buckets, average, per group, ĐVHT bands).

    Not computable from records, so passed in by the caller and otherwise left blank on the form:
    - `staff` (Tổng số CB, GV, NV): a headcount from the unit's staff list;
    - `registered` (Số đăng ký): people registered on congdanhoctap.vn, including those who never
      self-assessed, so stored records can only undercount it;
    - the letter's addressee, number, place and `date` (YYYY-MM-DD), signer and recipients.
    The form computes every rate against `staff` (so without it the rate boxes stay empty); this is a
    different denominator from report.cdht.recognised_rate, which is against the number assessed.
    """
    data: dict[str, Any] = {
        "year": report.year,
        "issuer": issuer or report.unit,
        "counts": {"staff": staff, "registered": registered, "self_assessed": report.cdht.assessed,
                   "recognised": report.cdht.recognised},
        "notes": report_notes(report) if notes is None else notes,
    }
    optional = {"addressee": addressee, "head_title": head_title, "head_name": head_name,
                "doc_number": doc_number, "place": place, "date": date, "recipients": recipients}
    # Keys left out rather than None: the form prints its dotted placeholders for absent values.
    data.update({k: v for k, v in optional.items() if v is not None})
    return data
