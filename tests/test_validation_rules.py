"""The validation engine at every boundary, table-driven, plus properties that the outcome follows the rule."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from formsvc import criteria as criteria_pkg
from formsvc.cli import app
from formsvc.criteria import CriteriaRegistry, CriteriaSet, load_registry
from formsvc.errors import NotFoundError
from formsvc.records import FieldProvenance, Record
from formsvc.validation import validate, validate_with_registry
from tests.factories import full_record

REG = load_registry()
PL4 = REG.get("cdht-324-pl4")
TT22 = REG.get("dvht-tt22-2020")


def scores_for_total(cset: CriteriaSet, total: float, low: tuple[str, float] | None = None) -> dict[str, float]:
    """Spread `total` over the indicators (at most max each), optionally pinning one indicator."""
    scores: dict[str, float] = {}
    remaining = Decimal(str(total))
    inds = cset.indicators
    if low is not None:
        scores[low[0]] = low[1]
        remaining -= Decimal(str(low[1]))
    for ind in inds:
        if ind.id in scores:
            continue
        take = min(Decimal(str(ind.max_points)), remaining)
        scores[ind.id] = float(take)
        remaining -= take
    assert remaining == 0, "total not reachable"
    return scores


def codes(record: Record) -> set[str]:
    assert record.result is not None
    return {r.code for r in record.result.reasons}


# --- CDHT recognition boundaries -------------------------------------------------------------

@pytest.mark.parametrize(("total", "recognised"), [(80, True), (79.5, False), (100, True), (0, False)])
def test_total_boundary_80(total: float, recognised: bool) -> None:
    # Keep every indicator >= 5 so only the total decides (79.5 = 7x8 + 3x7.5 + ... spread evenly).
    per = Decimal(str(total)) / 10
    scores = {i.id: float(per) for i in PL4.indicators} if total else {i.id: 0.0 for i in PL4.indicators}
    if per % Decimal("0.5"):
        scores = {i.id: 8.0 for i in PL4.indicators}
        scores["ct1"] = 7.5  # 79.5
    out = validate(full_record(PL4, scores=scores), PL4)
    assert out.result is not None
    assert out.result.total == total
    assert out.result.recognised is recognised
    assert out.status == "valid"
    assert ("total_below_min" in codes(out)) is (total < 80)


@pytest.mark.parametrize(("low_score", "recognised"), [(5, True), (4.5, False), (0, False)])
def test_indicator_minimum_5(low_score: float, recognised: bool) -> None:
    scores = {i.id: 10.0 for i in PL4.indicators}
    scores["ct6"] = low_score
    out = validate(full_record(PL4, scores=scores), PL4)
    assert out.result is not None and out.result.total >= 90
    assert out.result.recognised is recognised
    below = [r for r in out.result.reasons if r.code == "indicator_below_min"]
    assert [r.indicator for r in below] == ([] if recognised else ["ct6"])
    if below:
        assert "Chỉ tiêu 6" in below[0].message


@pytest.mark.parametrize(("value", "code", "status"), [
    (10, None, "valid"),
    (11, "score_above_max", "rejected"),
    (10.5, "score_above_max", "rejected"),
    (-1, "score_below_zero", "rejected"),
    (-0.5, "score_below_zero", "rejected"),
    ("abc", "score_not_numeric", "rejected"),
    ("7,5", None, "valid"),
    ("8", None, "valid"),
    (7.3, "score_wrong_step", "rejected"),
    (float("nan"), "score_not_numeric", "rejected"),
    (float("inf"), "score_not_numeric", "rejected"),
    (None, "score_missing", "needs_review"),
    ("", "score_missing", "needs_review"),
])
def test_single_score_checks(value: Any, code: str | None, status: str) -> None:
    scores: dict[str, Any] = {i.id: 9.0 for i in PL4.indicators}
    scores["ct3"] = value
    out = validate(full_record(PL4, scores=scores), PL4)
    assert out.status == status
    found = [r for r in out.result.reasons if r.severity in ("error", "review")]  # type: ignore[union-attr]
    if code is None:
        assert found == []
    else:
        assert [(r.code, r.indicator) for r in found] == [(code, "ct3")]
        assert "Chỉ tiêu 3" in found[0].message
        # An invalid or missing score counts 0, so the rule cannot recognise the person.
        assert out.result.recognised is False  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [7.4, 9.4, 484, 11, "7?"])
@pytest.mark.parametrize(("source", "status"), [("handwriting", "needs_review"), ("ocr", "needs_review"),
                                                ("manual", "rejected"), ("text_layer", "rejected")])
def test_value_the_criteria_forbid_is_review_when_machine_read(value: Any, source: str, status: str) -> None:
    """A misread (7,4 / 9,4 / 484 from a scan) sends that box to review; the same value typed or corrected by a
    person is the person's and rejects the record."""
    scores: dict[str, Any] = {i.id: 9.0 for i in PL4.indicators}
    scores["ct3"] = value
    rec = full_record(PL4, scores=scores)
    rec = rec.model_copy(update={"fields": [FieldProvenance(name="scores.ct3", value=value, confidence=0.3,
                                                            source=source)]})
    out = validate(rec, PL4)
    assert out.status == status
    bad = [r for r in out.result.reasons if r.field == "scores.ct3" and r.code != "low_confidence"]  # type: ignore[union-attr]
    assert len(bad) == 1
    assert bad[0].severity == ("review" if status == "needs_review" else "error")
    if status == "needs_review":
        assert "máy đọc" in bad[0].message


def test_missing_evidence_scores_zero_and_says_why() -> None:
    rec = full_record(PL4, score=10)
    rec.evidence["ct9"] = "  "
    out = validate(rec, PL4)
    assert out.result is not None
    assert out.result.total == 90
    assert out.result.recognised is False  # ct9 counts 0 < 5
    ev = [r for r in out.result.reasons if r.code == "evidence_missing"]
    assert len(ev) == 1 and ev[0].indicator == "ct9" and "minh chứng" in ev[0].message
    assert out.status == "valid"  # a rule outcome, not a data error


def test_zero_score_needs_no_evidence() -> None:
    rec = full_record(PL4, score=10)
    rec.scores["ct9"] = 0
    rec.evidence.pop("ct9")
    out = validate(rec, PL4)
    assert "evidence_missing" not in codes(out)


@pytest.mark.parametrize(("declared", "status"), [(80, "valid"), ("80", "valid"), (81, "needs_review"),
                                                  (79.5, "needs_review"), ("tám mươi", "needs_review")])
def test_declared_total_is_a_checksum(declared: Any, status: str) -> None:
    out = validate(full_record(PL4, score=8, total_declared=declared), PL4)
    assert out.status == status
    if status != "valid":
        assert codes(out) & {"total_mismatch", "total_not_numeric"}


def test_declared_total_compares_with_written_scores_not_evidence_adjusted() -> None:
    rec = full_record(PL4, score=8, total_declared=80)
    rec.evidence["ct1"] = None
    out = validate(rec, PL4)
    assert "total_mismatch" not in codes(out)
    assert out.result is not None and out.result.total == 72


def test_unknown_indicator_is_rejected() -> None:
    rec = full_record(PL4, score=8)
    rec.scores["ct42"] = 5
    out = validate(rec, PL4)
    assert out.status == "rejected" and "unknown_indicator" in codes(out)


@pytest.mark.parametrize(("year", "ok"), [(2022, False), (2023, True), (2030, True), (2031, False)])
def test_year_window(year: int, ok: bool) -> None:
    out = validate(full_record(PL4, score=8, year=year), PL4)
    assert ("year_outside_window" in codes(out)) is not ok


@pytest.mark.parametrize(("date", "ok"), [(dt.date(2024, 1, 1), True), (dt.date(2024, 12, 31), True),
                                          (dt.date(2023, 12, 31), False), (dt.date(2025, 1, 1), False)])
def test_data_window_is_the_assessed_year(date: dt.date, ok: bool) -> None:
    out = validate(full_record(PL4, score=8, year=2024, assessment_date=date), PL4)
    assert ("date_outside_window" in codes(out)) is not ok


@pytest.mark.parametrize(("group", "code", "status"), [
    ("official", None, "valid"), ("Giáo viên", None, "valid"), ("farmer", "wrong_group", "rejected"),
    ("học sinh", "wrong_group", "rejected"), ("thợ lặn", "group_unknown", "rejected"),
    (None, "group_missing", "needs_review"),
])
def test_audience_group(group: str | None, code: str | None, status: str) -> None:
    out = validate(full_record(PL4, score=8, group=group), PL4)
    assert out.status == status
    if code:
        assert code in codes(out)


@pytest.mark.parametrize(("source", "status"), [("ocr", "needs_review"), ("manual", "rejected")])
def test_a_group_read_from_a_scan_as_another_groups_is_review(source: str, status: str) -> None:
    """A group line misread as another group ("farmer" on a form for officials) sends that line to review; the same
    group typed or corrected by a person is the person's and rejects the record."""
    rec = full_record(PL4, score=8, group="farmer")
    rec = rec.model_copy(update={"fields": [FieldProvenance(name="subject.group", value="farmer", confidence=0.7,
                                                            source=source)]})
    out = validate(rec, PL4)
    assert out.status == status
    found = [r for r in out.result.reasons if r.code == "wrong_group"]  # type: ignore[union-attr]
    assert len(found) == 1 and found[0].severity == ("review" if source == "ocr" else "error")
    assert ("máy đọc" in found[0].message) is (source == "ocr")


def test_unknown_criteria_set_is_rejected_not_raised() -> None:
    rec = full_record(PL4, score=8).model_copy(update={"criteria_set": "no-such"})
    out = validate_with_registry(rec, REG)
    assert out.status == "rejected" and codes(out) == {"criteria_set_unknown"}


def test_low_confidence_field_needs_review_naming_it() -> None:
    rec = full_record(PL4, score=8, fields=[
        {"name": "scores.ct4", "value": 8, "confidence": 0.55, "page": 1, "source": "handwriting"},
        {"name": "scores.ct5", "value": 8, "confidence": 0.99, "page": 1, "source": "handwriting"},
    ])
    out = validate(rec, PL4)
    low = [r for r in out.result.reasons if r.code == "low_confidence"]  # type: ignore[union-attr]
    assert out.status == "needs_review"
    assert [(r.field, r.indicator) for r in low] == [("scores.ct4", "ct4")]


# --- ĐVHT ranking and recognition -------------------------------------------------------------

@pytest.fixture(scope="module")
def fine_step_tt22(tmp_path_factory: pytest.TempPathFactory) -> CriteriaSet:
    """TT22 with step 0.1 on one indicator, so totals like 84.9 are reachable."""
    folder: Path = tmp_path_factory.mktemp("sets")
    (folder / "fine.yaml").write_text(textwrap.dedent("""\
        id: dvht-fine
        extends: dvht-tt22-2020
        overrides:
          ct1: {step: 0.1}
        """), encoding="utf-8")
    return load_registry([folder]).get("dvht-fine")


@pytest.mark.parametrize(("total", "band"), [
    (100, "tot"), (85, "tot"), (84.9, "kha"), (70, "kha"), (69.9, "trung_binh"),
    (50, "trung_binh"), (49.9, "chua_dat"), (0, "chua_dat"),
])
def test_dvht_ranking_bands(fine_step_tt22: CriteriaSet, total: float, band: str) -> None:
    frac = Decimal(str(total)) % 1
    rest = Decimal(str(total)) - frac
    low = ("ct1", float(frac)) if frac else None
    scores = scores_for_total(fine_step_tt22, float(rest) + (float(frac) if low else 0), low)
    out = validate(full_record(fine_step_tt22, scores=scores), fine_step_tt22)
    assert out.result is not None and out.result.total == total
    assert out.result.band == band and out.result.recognised is None
    assert out.status == "valid"


# Every TT 22/2020 indicator at its own maximum: the maximum and one step under it pass, one step over fails.
TT22_MAXIMA = [("ct1", 10), ("ct2", 10), ("ct3", 10), ("ct4", 10), ("ct5", 5), ("ct6", 10), ("ct7", 5),
               ("ct8", 25), ("ct9", 10), ("ct10", 5)]


@pytest.mark.parametrize(("ind_id", "maximum"), TT22_MAXIMA)
@pytest.mark.parametrize(("delta", "code"), [(0, None), (-0.5, None), (0.5, "score_above_max")])
def test_tt22_per_indicator_maximum(ind_id: str, maximum: float, delta: float, code: str | None) -> None:
    assert TT22.indicator(ind_id).max_points == maximum  # type: ignore[union-attr]
    scores = {i.id: 0.0 for i in TT22.indicators}
    scores[ind_id] = maximum + delta
    out = validate(full_record(TT22, scores=scores), TT22)
    errors = [(r.code, r.indicator) for r in out.result.reasons if r.severity == "error"]  # type: ignore[union-attr]
    assert errors == ([] if code is None else [(code, ind_id)])
    if code is not None:
        msg = next(r.message for r in out.result.reasons if r.code == code)  # type: ignore[union-attr]
        assert f"điểm tối đa {maximum}" in msg


def test_tt22_full_marks_is_100_and_tot() -> None:
    scores = {ind_id: float(m) for ind_id, m in TT22_MAXIMA}
    out = validate(full_record(TT22, scores=scores), TT22)
    assert out.status == "valid" and out.result is not None
    assert (out.result.total, out.result.max_total, out.result.band) == (100, 100, "tot")


# --- properties -------------------------------------------------------------------------------

score_values = st.one_of(
    st.sampled_from([x / 2 for x in range(0, 21)]),  # every valid value 0..10 step 0.5
    st.floats(min_value=-5, max_value=15),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.none(), st.sampled_from(["abc", "", "7,5", "10", "x"]),
)


def _effective(value: Any, evidence: bool) -> Decimal:
    if isinstance(value, str):
        value = value.strip().replace(",", ".")
        try:
            value = float(value) if value else None
        except ValueError:
            return Decimal(0)
    if value is None or math.isnan(value) or math.isinf(value):
        return Decimal(0)
    d = Decimal(str(value))
    if d < 0 or d > 10 or d % Decimal("0.5"):
        return Decimal(0)
    return d if (evidence or d == 0) else Decimal(0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(score_values, st.booleans()), min_size=10, max_size=10))
@example([(8.0, True)] * 10)  # exactly 80
@example([(7.5, True)] + [(8.0, True)] * 9)  # 79.5
@example([(4.5, True)] + [(10.0, True)] * 9)  # 94.5 with one indicator under 5
def test_cdht_outcome_never_contradicts_the_rule(items: list[tuple[Any, bool]]) -> None:
    inds = PL4.indicators
    rec = full_record(PL4, score=0)
    rec = Record.model_validate({
        **rec.model_dump(),
        "scores": {ind.id: v for ind, (v, _) in zip(inds, items, strict=True)},
        "evidence": {ind.id: ("mc" if e else None) for ind, (_, e) in zip(inds, items, strict=True)},
    })
    out = validate(rec, PL4)
    assert out.result is not None
    eff = [_effective(v, e) for v, e in items]
    assert Decimal(str(out.result.total)) == sum(eff)
    assert out.result.recognised is (sum(eff) >= 80 and min(eff) >= 5)
    severities = {r.severity for r in out.result.reasons}
    assert out.status == ("rejected" if "error" in severities else
                          "needs_review" if "review" in severities else "valid")


@settings(max_examples=200, deadline=None)
@given(st.tuples(*(st.integers(0, int(m * 2)).map(lambda n: n / 2) for _, m in TT22_MAXIMA)))
def test_dvht_band_follows_total(values: tuple[float, ...]) -> None:
    rec = full_record(TT22, scores={i.id: v for i, v in zip(TT22.indicators, values, strict=True)})
    out = validate(rec, TT22)
    total = sum(values)
    assert out.result is not None and out.result.total == total
    expected = "tot" if total >= 85 else "kha" if total >= 70 else "trung_binh" if total >= 50 else "chua_dat"
    assert out.result.band == expected


# --- CLI ----------------------------------------------------------------------------------------

runner = CliRunner()


def _write_json(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_cli_validate_one_record(tmp_path: Path) -> None:
    rec = full_record(PL4, score=8, total_declared=80).model_dump(mode="json")
    out = runner.invoke(app, ["validate", str(_write_json(tmp_path, rec))])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["status"] == "valid" and data["result"]["recognised"] is True and data["result"]["total"] == 80


def test_cli_validate_list_exit_0_even_if_invalid(tmp_path: Path) -> None:
    good = full_record(PL4, score=8).model_dump(mode="json")
    bad = full_record(PL4, score=8).model_dump(mode="json")
    bad["scores"]["ct1"] = 42
    out = runner.invoke(app, ["validate", str(_write_json(tmp_path, [good, bad]))])
    assert out.exit_code == 0, out.output
    assert [r["status"] for r in json.loads(out.output)] == ["valid", "rejected"]


def _formsvc(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would."""
    exe = Path(sys.executable).with_name("formsvc")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("content", "code"), [
    (b"{not json", "json_invalid"), (b"\xff\xfe\x00garbage", "json_invalid"),
    (b'"just a string"', "json_shape"), (b'{"form": "x"}', "record_invalid"),
])
def test_cli_validate_unreadable_input_exits_2(tmp_path: Path, content: bytes, code: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    out = _formsvc("validate", str(path))
    assert out.returncode == 2
    assert f"[{code}]" in out.stderr and out.stdout == ""


def test_cli_validate_missing_file_exits_2(tmp_path: Path) -> None:
    out = _formsvc("validate", str(tmp_path / "missing.json"))
    assert out.returncode == 2 and "Không đọc được tệp" in out.stderr


def test_registry_holds_every_shipped_set_and_refuses_an_unknown_one() -> None:
    # Replaces an isinstance check that could not fail: the public registry must hold each set file shipped
    # with the package (by the id its file is named after) and name a missing set in Vietnamese.
    shipped = sorted(p.stem for p in (Path(criteria_pkg.__file__).parent / "sets").glob("*.yaml"))
    assert shipped and [s.id for s in REG] == shipped
    assert isinstance(REG, CriteriaRegistry) and "cdht-324-pl4" in REG and "cdht-999" not in REG
    with pytest.raises(NotFoundError) as exc:
        REG.get("cdht-999")
    assert exc.value.code == "criteria_set_not_found" and "'cdht-999'" in exc.value.message


@pytest.mark.parametrize(("name", "label"), [
    ("scores.ct3", "Điểm chỉ tiêu 3"),
    ("subject.full_name", "Họ và tên"),
    ("minutes.candidates.2.agreed_total", "Biên bản, người thứ 3: tổng điểm hội đồng thống nhất"),
    ("extra.minutes.candidates", "Biên bản: danh sách đề nghị"),
    ("minutes.meeting_start", "Biên bản: thời gian họp"),
])
def test_field_names_read_as_users_know_them(name: str, label: str) -> None:
    from formsvc.validation.messages import field_label

    assert field_label(name) == label
