"""ĐVHT recognition as Thông tư 24/2023 defines it: met / not met indicators, thresholds per level, mức độ 2
only after a year at mức độ 1, and the share of members holding CDHT computed from stored records."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from formsvc.criteria import CriteriaSet, load_registry
from formsvc.db import session_scope
from formsvc.errors import InputError
from formsvc.records import Record
from formsvc.reports import unit_report
from formsvc.reports.dvht_measures import cdht_shares, fill_computed
from formsvc.service.auth import Principal
from formsvc.service.recognition import unit_cdht_shares, with_computed_shares
from formsvc.service.records import store_record
from formsvc.validation import validate
from tests.factories import full_record
from tests.service_app import migrated_store

REG = load_registry()
HUYEN = REG.get("dvht-tt24-2023")
TINH = REG.get("dvht-tt24-2023-tinh")
PL4 = REG.get("cdht-324-pl4")
LEARNERS = REG.get("cdht-324-g4-learners")
UNIT = "Trường THCS Hòa Bình"


def tt24_record(cset: CriteriaSet = HUYEN, *, percent: float = 96, learners_percent: float | None = None,
                not_met: tuple[str, ...] = (), recognition: dict[str, Any] | None = None, year: int = 2024) -> Record:
    """A unit's recognition record: plain indicators 1 (met) or 0, measured ones at `percent`."""
    scores: dict[str, Any] = {}
    for ind in cset.indicators:
        if ind.only_for and learners_percent is None:
            continue
        if ind.measure is None:
            scores[ind.id] = 0 if ind.id in not_met else 1
        else:
            scores[ind.id] = learners_percent if ind.only_for else percent
    return Record.model_validate({
        "form": "dvht-self-assessment", "criteria_set": cset.id, "year": year,
        "subject": {"full_name": UNIT, "unit": "Phòng GD&ĐT Dương Kinh"}, "scores": scores,
        "extra": {"recognition": recognition or {}},
    })


def reasons(record: Record, code: str) -> list[str]:
    assert record.result is not None
    return [r.message for r in record.result.reasons if r.code == code]


def test_level_1_met_explains_every_indicator() -> None:
    out = validate(tt24_record(percent=92), HUYEN)
    assert out.status == "valid" and out.result is not None
    assert (out.result.recognised, out.result.band, out.result.band_label) == (True, "muc_do_1", "Đạt mức độ 1")
    # One explanation per applicable indicator (the learners' one does not apply outside schools).
    assert len(reasons(out, "indicator_met")) == 9 and reasons(out, "indicator_not_met") == []
    assert reasons(out, "indicator_not_applicable") == [
        "Chỉ tiêu 8 (Tỷ lệ người học đạt danh hiệu “Công dân học tập” (cơ sở giáo dục)): không áp dụng "
        "(chỉ dùng cho cơ sở giáo dục)."]
    assert "Chỉ tiêu 7 (Tỷ lệ thành viên đạt danh hiệu “Công dân học tập”): 92% thành viên đạt danh hiệu " \
           "“Công dân học tập”, đạt ngưỡng 90% của mức độ 1." in reasons(out, "indicator_met")
    assert reasons(out, "recognition_level") == [
        "Kết quả: đạt mức độ 1 (cấp huyện); công nhận có giá trị 3 năm (đến khoảng 15/01/2028)."]
    assert (out.result.total, out.result.max_total) == (9, 9)


def test_one_indicator_not_met_is_named_in_vietnamese() -> None:
    out = validate(tt24_record(not_met=("ct4",)), HUYEN)
    assert out.status == "valid" and out.result is not None
    assert (out.result.recognised, out.result.band, out.result.band_label) == (False, "chua_dat_muc_do",
                                                                              "Chưa đạt mức độ 1")
    assert reasons(out, "indicator_not_met") == [
        "Chỉ tiêu 4 (Thành viên có kế hoạch tự học, tự bồi dưỡng hằng năm được lãnh đạo đơ…): không đạt."]
    assert reasons(out, "recognition_level") == ["Kết quả: chưa đạt mức độ 1 (cấp huyện): không đạt chỉ tiêu 4."]


@pytest.mark.parametrize(("percent", "met"), [(90, True), (89.9, False), (100, True), (0, False)])
def test_member_share_threshold_90_at_level_1(percent: float, met: bool) -> None:
    out = validate(tt24_record(percent=percent), HUYEN)
    assert out.result is not None and out.result.recognised is met
    failing = [r.indicator for r in out.result.reasons if r.code == "indicator_not_met"]
    assert failing == ([] if met else ["ct5", "ct7"])
    if not met:
        assert f"{str(percent).replace('.', ',').removesuffix(',0')}% thành viên tuân thủ" in reasons(
            out, "indicator_not_met")[0]
        assert "dưới ngưỡng 90% của mức độ 1 — không đạt" in reasons(out, "indicator_not_met")[0]


@pytest.mark.parametrize(("learners", "met"), [(95, True), (94.9, False)])
def test_learner_share_threshold_95_in_education_institutions(learners: float, met: bool) -> None:
    rec = tt24_record(percent=91, learners_percent=learners, recognition={"education_institution": True})
    out = validate(rec, HUYEN)
    assert out.result is not None and out.result.recognised is met
    assert reasons(out, "indicator_not_applicable") == []
    assert out.result.max_total == 10


def test_learner_share_missing_in_a_school_is_not_met() -> None:
    out = validate(tt24_record(recognition={"education_institution": True}), HUYEN)
    assert out.status == "needs_review" and out.result is not None and out.result.recognised is False
    assert reasons(out, "indicator_not_met") == [
        "Chỉ tiêu 8 (Tỷ lệ người học đạt danh hiệu “Công dân học tập” (cơ sở giáo dục)): chưa có kết quả nên "
        "không đạt."]


YEAR_AGO = {"level": 1, "date": "2024-01-10"}  # a year and more before the 15/01/2025 dossier deadline


def test_level_2_refused_without_a_year_at_level_1() -> None:
    for previous in (None, {"level": 1, "date": "2024-06-01"}):
        rec = tt24_record(percent=98, learners_percent=98,
                          recognition={"requested_level": 2, "education_institution": True, "previous": previous})
        out = validate(rec, HUYEN)
        assert out.result is not None and out.result.band == "muc_do_1" and out.result.recognised is True
        refused = reasons(out, "level_requires_previous")
        assert len(refused) == 1 and refused[0].startswith("Chưa đủ điều kiện xét mức độ 2: ")
        assert ("chưa có quyết định công nhận mức độ 1" in refused[0]) is (previous is None)
        if previous:
            assert "ngày 01/06/2024, đến ngày 15/01/2025 chưa đủ 1 năm (đủ từ ngày 01/06/2025)" in refused[0]
        assert reasons(out, "recognition_level")[0].endswith("Chưa đạt mức độ 2 như đề nghị.")


def test_level_2_granted_after_a_year_at_level_1() -> None:
    rec = tt24_record(percent=95, learners_percent=97,
                      recognition={"requested_level": 2, "education_institution": True, "previous": YEAR_AGO})
    out = validate(rec, TINH)
    assert out.result is not None and (out.result.band, out.result.band_label) == ("muc_do_2", "Đạt mức độ 2")
    assert reasons(out, "level_requires_previous") == []
    assert reasons(out, "recognition_level")[0].startswith("Kết quả: đạt mức độ 2 (cấp tỉnh)")


@pytest.mark.parametrize(("percent", "learners", "band", "failing"), [
    (94.9, 97, "muc_do_1", ["ct5", "ct7"]), (95, 96.9, "muc_do_1", ["ct8"]), (95, 97, "muc_do_2", [])])
def test_level_2_thresholds_95_and_97(percent: float, learners: float, band: str, failing: list[str]) -> None:
    rec = tt24_record(percent=percent, learners_percent=learners,
                      recognition={"requested_level": 2, "education_institution": True, "previous": YEAR_AGO})
    out = validate(rec, HUYEN)
    assert out.result is not None and out.result.band == band
    assert [r.indicator for r in out.result.reasons if r.code == "indicator_not_met"] == failing
    for msg in reasons(out, "indicator_not_met"):
        assert "của mức độ 2 (đạt ngưỡng của mức độ 1) — không đạt" in msg


def test_expired_level_1_does_not_open_level_2() -> None:
    rec = tt24_record(percent=99, recognition={"requested_level": 2, "previous": {"level": 1, "date": "2021-12-01"}})
    out = validate(rec, HUYEN)
    assert out.result is not None and out.result.band == "muc_do_1"
    assert "đã hết thời hạn 3 năm" in reasons(out, "level_requires_previous")[0]


def test_late_dossier_and_bad_recognition_input() -> None:
    late = validate(tt24_record(recognition={"submitted_on": "2025-01-16"}), HUYEN)
    assert reasons(late, "dossier_late") == ["Hồ sơ nộp ngày 16/01/2025, sau hạn 15/01/2025."]
    bad = validate(tt24_record(recognition={"requested_level": "hai"}), HUYEN)
    assert bad.status == "rejected" and reasons(bad, "recognition_input_invalid")


def test_a_typed_score_other_than_0_or_1_is_rejected() -> None:
    rec = tt24_record()
    rec.scores["ct1"] = 2
    out = validate(rec, HUYEN)
    assert out.status == "rejected" and out.result is not None and out.result.recognised is False


# --- percentages computed from CDHT records ------------------------------------------------------------

def person(name: str, sid: str, *, group: str = "official", unit: str = UNIT) -> dict[str, Any]:
    return {"id": sid, "full_name": name, "unit": unit, "group": group}


def cdht_records() -> list[Record]:
    staff = [validate(full_record(PL4, 8.5, subject=person(f"GV {n}", f"gv{n}")), PL4) for n in range(9)]
    staff.append(validate(full_record(PL4, 6, subject=person("GV 9", "gv9")), PL4))  # 60: not recognised
    pupils = [validate(full_record(LEARNERS, 9, group="learner", subject=person(f"HS {n}", f"hs{n}", group="learner")),
                       LEARNERS) for n in range(19)]
    pupils.append(validate(full_record(LEARNERS, 7, subject=person("HS 19", "hs19", group="learner")), LEARNERS))
    other = validate(full_record(PL4, 9, subject=person("Khác", "x1", unit="Trường khác")), PL4)
    last_year = validate(full_record(PL4, 9, year=2023, subject=person("Năm trước", "y1")), PL4)
    return [*staff, *pupils, other, last_year]


def test_shares_counted_from_records() -> None:
    shares = cdht_shares(cdht_records(), unit=UNIT, year=2024)
    members, learners = shares["cdht_members_share"], shares["cdht_learners_share"]
    assert (members.recognised, members.denominator, members.basis, members.percent) == (9, 10, "assessed",
                                                                                         Decimal("90.0"))
    assert (learners.recognised, learners.denominator, learners.percent) == (19, 20, Decimal("95.0"))
    # With the declared head count, people who never self-assessed count too; rounding is down.
    declared = cdht_shares(cdht_records(), unit=UNIT, year=2024, members=11, learners=21)
    assert declared["cdht_members_share"].percent == Decimal("81.8")  # 9/11 = 81.81…
    assert declared["cdht_learners_share"].percent == Decimal("90.4")  # 19/21 = 90.476…: never rounded up


def test_only_valid_recognised_records_count_and_a_person_counts_once() -> None:
    records = cdht_records()
    # gv0 again, later, now below 80: the latest record wins. gv1 waits for review: not counted.
    records.append(validate(full_record(PL4, 7, subject=person("GV 0", "gv0")), PL4))
    records[1] = records[1].model_copy(update={"status": "needs_review"})
    members = cdht_shares(records, unit=UNIT, year=2024)["cdht_members_share"]
    assert (members.recognised, members.denominator) == (7, 10)


def test_declared_count_below_recognised_is_an_input_error() -> None:
    with pytest.raises(InputError) as exc:
        cdht_shares(cdht_records(), unit=UNIT, year=2024, members=5)
    assert "chỉ khai 5 thành viên" in exc.value.message


def test_computed_share_replaces_a_typed_one_and_decides_the_level() -> None:
    typed = tt24_record(percent=99)  # typed 99 % for every measured indicator
    shares = cdht_shares(cdht_records(), unit=UNIT, year=2024, members=11)
    filled = fill_computed(typed, HUYEN, shares)
    assert filled.scores["ct7"] == 81.8 and filled.scores["ct5"] == 99  # ct5 is not computable: kept
    assert [f.source for f in filled.fields if f.name == "scores.ct7"] == ["known_value"]
    out = validate(filled, HUYEN)
    assert out.result is not None and out.result.recognised is False
    assert [r.indicator for r in out.result.reasons if r.code == "indicator_not_met"] == ["ct7"]
    assert "81,8% thành viên đạt danh hiệu “Công dân học tập”, dưới ngưỡng 90%" in reasons(out, "indicator_not_met")[0]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[None]:
    with migrated_store(tmp_path):
        yield


def test_service_reads_the_units_stored_records(store: None) -> None:
    with session_scope() as s:
        for rec in cdht_records():
            unit = rec.subject.unit or UNIT
            assert store_record(s, unit=unit, job_id=None, doc_key=uuid.uuid4().hex, record=rec, pages={})
    admin = Principal(key_id="k", role="admin", unit=None, name="admin")
    other_unit = Principal(key_id="k2", role="clerk", unit="Trường khác", name="clerk")
    with session_scope() as s:
        shares = unit_cdht_shares(s, admin, unit=UNIT, year=2024, members=10, learners=20)
        assert (shares["cdht_members_share"].percent, shares["cdht_learners_share"].percent) == (
            Decimal("90.0"), Decimal("95.0"))
        # A key of another unit sees none of this unit's records.
        hidden = unit_cdht_shares(s, other_unit, unit=UNIT, year=2024)
        assert hidden["cdht_members_share"].denominator == 0 and hidden["cdht_members_share"].percent is None
        rec = tt24_record(percent=0, recognition={"education_institution": True})
        filled = with_computed_shares(s, admin, rec, HUYEN, unit=UNIT, members=10, learners=20)
    rec_scores = {k: v for k, v in filled.scores.items() if k in ("ct7", "ct8")}
    assert rec_scores == {"ct7": 90.0, "ct8": 95.0}
    filled.scores["ct5"] = 93
    out = validate(filled, HUYEN)
    assert out.result is not None and out.result.band == "muc_do_1"


def test_unit_report_counts_levels() -> None:
    records = [validate(tt24_record(), HUYEN), validate(tt24_record(not_met=("ct1",)), HUYEN)]
    records[1] = records[1].model_copy(update={"subject": records[1].subject.model_copy(update={"id": "b"})})
    report = unit_report(records, unit=UNIT, year=2024)
    assert (report.dvht.recognised, report.dvht.not_recognised) == (1, 1)
    assert [(b.code, b.count) for b in report.dvht.bands] == [("muc_do_1", 1), ("chua_dat_muc_do", 1)]


def test_dossier_deadline_is_data() -> None:
    from formsvc.validation.levels import dossier_deadline

    assert HUYEN.outcome.type == "levels"
    assert dossier_deadline(HUYEN.outcome, 2024) == dt.date(2025, 1, 15)
