"""The year-end dossier of a unit, planned from its stored records: who goes in which document, and why.

Pure: store rows in, a `DossierPlan` out (the render data of each document). Rules:

- Only the unit's CDHT self-assessments of the year count (other forms, such as ingested minutes, are not
  people). With a criteria set asked for, records of other sets are listed on the cover, not used.
- Records the caller excludes by id are listed on the cover as excluded, never dropped silently.
- One person, one record: two records of the same person (same `subject.id`, or when either has none the
  same accent-folded name and birth year) stop the dossier with `DuplicateRecordError` naming both.
- **Approved** records are reviewed in the minutes (agreed total = the approved record's computed total,
  proposed = recognised, and the validation's reasons when not); the decision lists the approved records
  that are recognised. Records not approved go to the cover sheet ("chưa duyệt: N người") and nowhere else.
- Lists of people are numbered and sorted by Vietnamese name order (formsvc.collation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from formsvc.collation import name_sort_key
from formsvc.criteria import CriteriaRegistry, CriteriaSet, default_registry
from formsvc.errors import ConflictError
from formsvc.exports import ExportRow
from formsvc.forms import is_self_assessment
from formsvc.records import STATUS_LABELS, Record
from formsvc.reports.unit_report import report_context, report_notes, unit_report
from formsvc.text import fold, nfc
from formsvc.validation.messages import num

# Reasons that explain why an approved record is not recognised (the minutes print them).
OUTCOME_CODES = ("total_below_min", "indicator_below_min", "criterion_below_min", "registration_unknown",
                 "registered_after_assessment")
NOT_MET = "Chưa đạt điều kiện công nhận."
MAX_NAMED = 10  # duplicates spelled out in the message; all of them are in the error's detail


class DuplicateRecordError(ConflictError):
    """A person has more than one record for the year: the dossier cannot choose between them."""

    code = "dossier_duplicate_person"


@dataclass(frozen=True)
class Person:
    """One record as the dossier lists it."""

    record_id: str
    full_name: str
    birth_year: int | None
    unit: str | None
    criteria_set: str
    status: str | None
    approved: bool
    self_total: float | None
    agreed_total: float | None
    recognised: bool
    reasons: tuple[str, ...]

    @property
    def status_label(self) -> str:
        if self.status in STATUS_LABELS:
            return STATUS_LABELS[self.status]
        return "Chưa kiểm tra"


@dataclass
class DossierPlan:
    unit: str
    year: int
    criteria_set: str | None
    reviewed: list[Person] = field(default_factory=list)  # approved: the minutes
    recognised: list[Person] = field(default_factory=list)  # approved and recognised: the decision
    pending: list[Person] = field(default_factory=list)  # not approved: the cover sheet
    excluded: list[Person] = field(default_factory=list)  # excluded by the caller: the cover sheet
    other_set: list[Person] = field(default_factory=list)  # another criteria set than asked: the cover sheet
    rows: list[ExportRow] = field(default_factory=list)  # approved rows, for the unit report's numbers

    @property
    def assessed(self) -> int:
        return len(self.reviewed) + len(self.pending)


def _person(row: ExportRow) -> Person:
    rec = row.record
    result = rec.result
    recognised = bool(result and result.recognised)
    reasons: tuple[str, ...] = ()
    if result is not None and not recognised:
        reasons = tuple(r.message for r in result.reasons if r.code in OUTCOME_CODES) or (NOT_MET,)
    declared = rec.total_declared if isinstance(rec.total_declared, float) else None
    return Person(record_id=row.id, full_name=rec.subject.full_name, birth_year=rec.subject.birth_year,
                  unit=rec.subject.unit, criteria_set=rec.criteria_set, status=rec.status, approved=row.approved,
                  self_total=declared, agreed_total=result.total if result else None, recognised=recognised,
                  reasons=reasons)


def _name_key(rec: Record) -> str:
    return f"{fold(rec.subject.full_name)}|{rec.subject.birth_year}"


def _clusters(rows: list[ExportRow]) -> list[list[ExportRow]]:
    """Rows of the same person: the same `subject.id`; or, when a row has no id, the same folded name and birth
    year as another row (two different ids under one name are two people who share a name)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first_by_id: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        sid = row.record.subject.id
        if sid:
            union(i, first_by_id.setdefault(sid, i))
        by_name.setdefault(_name_key(row.record), []).append(i)
    for members in by_name.values():
        anonymous = [i for i in members if not rows[i].record.subject.id]
        for i in anonymous:
            for j in members:
                union(i, j)
    groups: dict[int, list[ExportRow]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(find(i), []).append(row)
    return [g for g in groups.values() if len(g) > 1]


def _check_duplicates(rows: list[ExportRow], year: int) -> None:
    clashes = _clusters(rows)
    if not clashes:
        return
    parts = []
    for group in clashes[:MAX_NAMED]:
        described = ", ".join(
            f"bản ghi {r.id} ({'đã duyệt' if r.approved else 'chưa duyệt'}, "
            f"{STATUS_LABELS.get(r.record.status, 'chưa kiểm tra') if r.record.status else 'chưa kiểm tra'})"
            for r in group)
        who = group[0].record.subject
        ident = f", mã {who.id}" if who.id else ""
        parts.append(f"{who.full_name} ({who.birth_year or 'không rõ năm sinh'}{ident}) có {len(group)} bản ghi "
                     f"năm {year}: {described}.")
    if len(clashes) > MAX_NAMED:
        parts.append(f"Và {len(clashes) - MAX_NAMED} người khác (xem detail.duplicates).")
    raise DuplicateRecordError(
        "Một người có hơn một bản ghi trong năm nên chưa lập được hồ sơ. " + " ".join(parts),
        hint="Giữ lại một bản ghi cho mỗi người: loại bản ghi thừa khi lập hồ sơ (exclude, hoặc --exclude "
             "MÃ_BẢN_GHI ở dòng lệnh) rồi lập lại.",
        detail={"duplicates": [[{"record_id": r.id, "full_name": r.record.subject.full_name,
                                 "subject_id": r.record.subject.id, "approved": r.approved} for r in g]
                               for g in clashes]})


def _sorted(people: Iterable[Person]) -> list[Person]:
    return sorted(people, key=lambda p: (name_sort_key(p.full_name), p.birth_year or 0, p.record_id))


def plan_dossier(rows: Iterable[ExportRow], *, unit: str, year: int, criteria_set: str | None = None,
                 exclude: Iterable[str] = ()) -> DossierPlan:
    """Sort the unit's stored rows of `year` into the dossier's documents (rules in the module docstring)."""
    unit_key = nfc(unit).casefold()
    excluded_ids = set(exclude)
    plan = DossierPlan(unit=nfc(unit), year=year, criteria_set=criteria_set)
    kept: list[ExportRow] = []
    for row in rows:
        rec = row.record
        if rec.year != year or not is_self_assessment(rec.form, "cdht") or nfc(row.unit).casefold() != unit_key:
            continue
        if row.id in excluded_ids:
            plan.excluded.append(_person(row))
        elif criteria_set and rec.criteria_set != criteria_set:
            plan.other_set.append(_person(row))
        else:
            kept.append(row)
    _check_duplicates(kept, year)
    for row in kept:
        person = _person(row)
        if row.approved:
            plan.reviewed.append(person)
            plan.rows.append(row)
            if person.recognised:
                plan.recognised.append(person)
        else:
            plan.pending.append(person)
    plan.reviewed, plan.recognised, plan.pending = (_sorted(plan.reviewed), _sorted(plan.recognised),
                                                    _sorted(plan.pending))
    plan.excluded, plan.other_set = _sorted(plan.excluded), _sorted(plan.other_set)
    return plan


# -- render data of each document -------------------------------------------------------------------------

def _issuer(plan: DossierPlan, options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"year": plan.year, "issuer": options.get("issuer") or plan.unit}
    for key in ("place", "date", "head_title", "head_name", "addressee", "doc_number", "recipients"):
        if options.get(key):
            out[key] = options[key]
    return out


def minutes_data(plan: DossierPlan, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """`cdht-minutes`: every approved person; meeting time, place, attendance and votes left blank to write in."""
    options = options or {}
    candidates = [{"full_name": p.full_name, "birth_year": p.birth_year, "self_total": p.self_total,
                   "agreed_total": p.agreed_total, "proposed": p.recognised} for p in plan.reviewed]
    not_proposed = [{"n": str(n), "full_name": p.full_name, "reasons": " ".join(p.reasons)}
                    for n, p in enumerate(plan.reviewed, start=1) if not p.recognised]
    data = _issuer(plan, options)
    data.update({"subject": {"full_name": plan.unit}, "criteria_set": plan.criteria_set,
                 "minutes": {"candidates": candidates}, "not_proposed": not_proposed,
                 "proposed_count": len(plan.recognised)})
    return data


def decision_data(plan: DossierPlan, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """`cdht-decision` with its list: the approved, recognised people (name, birth year, unit, total)."""
    options = options or {}
    data = _issuer(plan, options)
    data["people"] = [{"full_name": p.full_name, "birth_year": p.birth_year, "unit": p.unit or plan.unit,
                       "total": p.agreed_total} for p in plan.recognised]
    return data


def report_data(plan: DossierPlan, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """`cdht-unit-report`: numbers from the approved records; those not yet approved are said, not counted."""
    options = options or {}
    report = unit_report(plan.rows, unit=plan.unit, year=plan.year)
    notes = (f"Số liệu tính từ {len(plan.reviewed)} bản tự đánh giá đã được duyệt. " + report_notes(report))
    if plan.pending:
        notes += f" Còn {len(plan.pending)} bản tự đánh giá chưa duyệt, chưa được tính."
    data = report_context(report, staff=options.get("staff"), notes=notes)
    data["counts"]["self_assessed"] = plan.assessed
    data["counts"]["recognised"] = len(plan.recognised)
    data.update({k: v for k, v in _issuer(plan, options).items() if k != "year"})
    return data


def progress_data(plan: DossierPlan, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """`cdht-registration-progress`: who self-assessed (every record of the year, approved or not)."""
    options = options or {}
    data = _issuer(plan, options)
    data["counts"] = {"staff": options.get("staff"), "registered": None, "self_assessed": plan.assessed}
    data["notes"] = (f"Đã tự đánh giá: {plan.assessed} người ({len(plan.reviewed)} đã duyệt, "
                     f"{len(plan.pending)} chưa duyệt). Số đăng ký tài khoản lấy từ phần mềm congdanhoctap.vn, "
                     "không có trong hồ sơ.")
    return data


@dataclass(frozen=True)
class Share:
    """Members holding the CDHT title among those assessed, from records (numerator / denominator)."""

    recognised: int
    members: int

    @property
    def percent(self) -> Decimal | None:
        if self.members <= 0:
            return None
        return (Decimal(self.recognised) * 100 / self.members).quantize(Decimal("0.1"))

    def text(self) -> str:
        """Short: it fills the evidence cell of the indicator's row (a fixed-height row on the form)."""
        pct = f"{num(self.percent)}%" if self.percent is not None else "…"
        return f"CDHT: {self.recognised}/{self.members} ({pct})"


def cdht_recognised_share(plan: DossierPlan, members: int | None = None) -> Share:
    """Share recognised: approved and recognised people over the members (the staff count when given, else
    everyone with a CDHT record of the year, approved or not)."""
    return Share(recognised=len(plan.recognised), members=members if members else plan.assessed)


def _share_indicator(cset: CriteriaSet) -> str | None:
    """The ĐVHT indicator about members holding the CDHT title, found by its text so that a reworded or
    renumbered set still finds it (or none, and nothing is pre-filled)."""
    for ind in cset.indicators:
        title = fold(ind.title)
        if "cong dan hoc tap" in title and ("ty le" in title or "thanh vien" in title):
            return ind.id
    return None


def dvht_data(plan: DossierPlan, options: dict[str, Any] | None = None,
              registry: CriteriaRegistry | None = None) -> dict[str, Any]:
    """`dvht-self-assessment` of the unit with the CDHT share written beside its indicator (the points are the
    unit's to give: the share is evidence, not a score)."""
    options = options or {}
    registry = registry or default_registry()
    set_id = options.get("dvht_criteria_set") or "dvht-tt22-2020"
    cset = registry.get(set_id)
    data = _issuer(plan, options)
    share = cdht_recognised_share(plan, options.get("staff"))
    data.update({"criteria_set": cset.id, "subject": {"full_name": plan.unit, "unit": options.get("managing_body")}})
    indicator = _share_indicator(cset)
    if indicator:
        data["evidence"] = {indicator: share.text()}
    return data
