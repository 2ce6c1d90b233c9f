"""Criteria sets load from data files, compose without copies, and reject malformed files clearly."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from formsvc.cli import app
from formsvc.criteria import load_registry, resolve_group
from formsvc.criteria.loader import BUILTIN_DIR
from formsvc.errors import CriteriaFileError, NotFoundError


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry()


def test_builtin_sets_cover_four_groups_and_every_dvht_rule(registry) -> None:  # type: ignore[no-untyped-def]
    cdht_groups = {g for s in registry if s.kind == "cdht" for g in s.audience_groups}
    assert cdht_groups == {"farmer", "worker", "official", "learner"}
    dvht = {s.id: s.outcome.type for s in registry if s.kind == "dvht"}
    assert dvht == {"dvht-tt22-2020": "ranking", "dvht-tt24-2023": "levels", "dvht-tt24-2023-tinh": "levels"}


def test_every_set_names_its_legal_source_and_totals_100(registry) -> None:  # type: ignore[no-untyped-def]
    for cset in registry:
        assert cset.source.document and cset.source.issuer and cset.source.date
        assert [c.number for c in cset.criteria] == list(range(1, len(cset.criteria) + 1))
        assert [i.number for i in cset.indicators] == list(range(1, len(cset.indicators) + 1))
        assert all(i.source for i in cset.indicators), cset.id
        if cset.outcome.type != "levels":  # levels sets count indicators met, not points
            assert sum(i.max_points for i in cset.indicators) == 100


def test_cdht_sets_have_three_core_competences_split_4_4_2(registry) -> None:  # type: ignore[no-untyped-def]
    cdht = [s for s in registry if s.kind == "cdht"]
    assert len(cdht) == 6
    for cset in cdht:
        assert [c.title for c in cset.criteria] == [
            "Năng lực tự học và học tập suốt đời",
            "Năng lực sử dụng những công cụ học tập, làm việc",
            "Năng lực xây dựng và thực hiện các mối quan hệ xã hội",
        ]
        assert [[i.id for i in c.indicators] for c in cset.criteria] == [
            ["ct1", "ct2", "ct3", "ct4"], ["ct5", "ct6", "ct7", "ct8"], ["ct9", "ct10"]], cset.id
        assert cset.total_max == 100 and all(i.max_points == 10 and i.min_points == 5 for i in cset.indicators)
        assert cset.outcome.type == "recognition" and cset.outcome.min_total == 80
        assert not cset.fully_verified  # the appendix text is still not available
    framework = next(s for s in cdht if s.id == "cdht-324-pl1")
    # Criterion 2 is IT, foreign language, calculation, critical thinking (in that order).
    assert [w in i.title.lower() for i, w in zip(framework.criteria[1].indicators,
                                                 ["internet", "ngoại ngữ", "tính toán", "tư duy phản biện"],
                                                 strict=True)] == [True] * 4
    supports = " ".join(r.supports or "" for r in framework.references)
    assert "4/4/2" in supports and "Bốn nhóm" in supports and "dưới 5" in supports


def test_fourth_group_is_learners_with_its_own_set(registry) -> None:  # type: ignore[no-untyped-def]
    learners = registry.get("cdht-324-g4-learners")
    assert learners.audience_groups == ["learner"] and learners.extends == "cdht-324-pl1"
    assert resolve_group("học sinh").code == "learner"  # type: ignore[union-attr]
    assert resolve_group("Sinh viên").number == 4  # type: ignore[union-attr]
    assert {r.url for r in learners.references} >= {"https://congdanhoctap.vn"}
    # An overridden indicator cites the learners' document, an inherited one the framework.
    assert learners.indicator("ct2").source.startswith("Quyết định 324/QĐ-KHVN, Phụ lục dùng cho người học")
    assert learners.indicator("ct3").source == registry.get("cdht-324-pl1").indicator("ct3").source


TT22_POINTS = [[10, 10, 10], [10, 5, 10, 5], [25, 10, 5]]


def test_tt22_is_the_structure_of_dieu_5(registry) -> None:  # type: ignore[no-untyped-def]
    tt22 = registry.get("dvht-tt22-2020")
    assert [[i.max_points for i in c.indicators] for c in tt22.criteria] == TT22_POINTS
    assert [c.max_points for c in tt22.criteria] == [30, 30, 40]
    assert [c.title for c in tt22.criteria] == [
        "Điều kiện để xây dựng Đơn vị học tập", "Kết quả học tập của thành viên", "Hiệu quả, tác động"]
    assert [[i.label for i in c.indicators] for c in tt22.criteria] == [
        ["a", "b", "c"], ["a", "b", "c", "d"], ["a", "b", "c"]]
    for c in tt22.criteria:
        for i in c.indicators:
            assert i.source == f"Thông tư 22/2020/TT-BGDĐT, Điều 5, khoản {c.number}, điểm {i.label}"
    # Indicators whose text we hold cut ("…") stay unverified; the rest of the set is verified.
    assert tt22.verified and {i.id for i in tt22.indicators if not i.verified} == {"ct5", "ct6", "ct7"}
    three_a = tt22.indicator("ct8")
    assert three_a is not None and len(three_a.sub_items) == 8
    assert three_a.sub_items[0].text.startswith("Có ý thức tuân thủ pháp luật")
    assert "cách ứng xử văn hóa phù hợp" in three_a.sub_items[-1].text
    assert not any(s.verified for s in three_a.sub_items) and not tt22.fully_verified
    # The old set's indicator that the Thông tư does not have is gone.
    assert not any("vi phạm pháp luật" in i.title for i in tt22.indicators)
    # The bands come from the provincial guide, with their own source.
    assert tt22.outcome.type == "ranking"
    assert [(b.code, b.min_total) for b in tt22.outcome.bands] == [("tot", 85), ("kha", 70), ("trung_binh", 50)]
    assert tt22.outcome.source is not None and tt22.outcome.source.document == "Quyết định 2316/QĐ-UBND"
    assert tt22.outcome.source.issuer == "UBND tỉnh Đắk Lắk" and tt22.source.document != tt22.outcome.source.document


def test_tt24_sets_are_met_or_not_met_with_levels(registry) -> None:  # type: ignore[no-untyped-def]
    for set_id, scope in (("dvht-tt24-2023", "huyen"), ("dvht-tt24-2023-tinh", "tinh")):
        cset = registry.get(set_id)
        rule = cset.outcome
        assert rule.type == "levels" and rule.scope == scope
        assert [(lv.level, lv.requires_level, lv.min_years_at_required) for lv in rule.levels] == [
            (1, None, 0), (2, 1, 1)]
        assert rule.validity_years == 3
        assert (rule.data_window_start.day, rule.data_window_start.month) == (1, 1)
        assert (rule.data_window_end.day, rule.data_window_end.month) == (31, 12)
        assert (rule.dossier_deadline.day, rule.dossier_deadline.month) == (15, 1)
        assert all(i.kind == "met" for i in cset.indicators) and not cset.fully_verified
        measured = {i.id: (i.measure.thresholds, i.measure.computed) for i in cset.indicators if i.measure}
        assert measured == {"ct5": ({1: 90, 2: 95}, None), "ct7": ({1: 90, 2: 95}, "cdht_members_share"),
                            "ct8": ({1: 95, 2: 97}, "cdht_learners_share")}
        assert cset.indicator("ct8").only_for == "education_institution"


@pytest.mark.parametrize(("patch", "problem"), [
    ("kind: met", "levels outcome"),  # a met/not-met indicator in a points set
    ("measure: {of: x, thresholds: {1: 90}}", "kind: met"),
    ("min_points: 11", "min_points"),
])
def test_inconsistent_indicator_kinds_are_rejected(tmp_path: Path, patch: str, problem: str) -> None:
    text = MINIMAL.format(id="kinds", max_a=10).replace('title: "A"}', f'title: "A", {patch}}}')
    _write(tmp_path, "k.yaml", text)
    with pytest.raises(CriteriaFileError, match=problem):
        load_registry([tmp_path])


def test_levels_set_rejects_points_indicators_and_bad_thresholds(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", """\
        id: lv-points
        extends: dvht-tt24-2023
        overrides:
          ct1: {kind: points, max_points: 10, step: 1}
        """)
    with pytest.raises(CriteriaFileError, match="kind: met"):
        load_registry([tmp_path])
    (tmp_path / "a.yaml").unlink()
    _write(tmp_path, "b.yaml", """\
        id: lv-threshold
        extends: dvht-tt24-2023
        overrides:
          ct5: {measure: {of: "x", thresholds: {1: 120}}}
        """)
    with pytest.raises(CriteriaFileError, match="percentage"):
        load_registry([tmp_path])


def test_school_set_takes_indicators_6_and_7_from_framework(registry) -> None:  # type: ignore[no-untyped-def]
    school, pl4, pl1 = (registry.get(x) for x in ("cdht-324-pl4-school", "cdht-324-pl4", "cdht-324-pl1"))
    for ind_id in ("ct6", "ct7"):
        assert school.indicator(ind_id) is not None
        assert school.indicator(ind_id).title == pl1.indicator(ind_id).title
        assert school.indicator(ind_id).title != pl4.indicator(ind_id).title
        assert school.indicator(ind_id).origin == "cdht-324-pl1"
    # Everything else is Phụ lục IV's.
    assert school.indicator("ct2").title == pl4.indicator("ct2").title
    assert school.audience_groups == pl4.audience_groups


def test_composed_file_does_not_copy_the_base() -> None:
    raw = yaml.safe_load((BUILTIN_DIR / "cdht-324-pl4-school.yaml").read_text(encoding="utf-8"))
    assert "criteria" not in raw
    assert raw["overrides"] == {"ct6": {"from": "cdht-324-pl1"}, "ct7": {"from": "cdht-324-pl1"}}


def test_unverified_titles_are_marked_provisional(registry) -> None:  # type: ignore[no-untyped-def]
    ind = registry.get("cdht-324-pl1").indicator("ct1")
    assert not ind.verified
    assert "tạm thời" in ind.display_title


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


MINIMAL = """\
id: {id}
title: "Bộ thử"
kind: dvht
version: 1
source: {{document: "Thông tư thử", issuer: "Bộ thử", date: 2024-01-01}}
verified: true
years: {{from: 2024, to: 2030}}
total_max: 20
defaults: {{step: 1}}
criteria:
  - id: tc1
    number: 1
    title: "Tiêu chí"
    indicators:
      - {{id: a, number: 1, max_points: {max_a}, title: "A"}}
      - {{id: b, number: 2, max_points: 10, title: "B"}}
outcome:
  type: ranking
  bands: [{{code: tot, label: "Tốt", min_total: 15}}]
  fallback: {{code: chua_dat, label: "Chưa đạt", min_total: 0}}
"""


def test_new_set_loads_from_a_file_without_code_changes(tmp_path: Path) -> None:
    _write(tmp_path, "x.yaml", MINIMAL.format(id="local-unit-set", max_a=10))
    registry = load_registry([tmp_path])
    cset = registry.get("local-unit-set")
    assert cset.fully_verified and [i.id for i in cset.indicators] == ["a", "b"]
    assert "cdht-324-pl1" in registry  # built-ins still there


def test_malformed_set_names_file_and_path(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.yaml", MINIMAL.format(id="bad-set", max_a=-3))
    with pytest.raises(CriteriaFileError) as exc:
        load_registry([tmp_path])
    assert str(bad) in exc.value.message
    assert "criteria.0.indicators.0.max_points" in exc.value.message


def test_points_not_adding_up_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "sum.yaml", MINIMAL.format(id="sum-set", max_a=5))
    with pytest.raises(CriteriaFileError, match="total_max"):
        load_registry([tmp_path])


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    _write(tmp_path, "syntax.yaml", "id: x\ntitle: [unclosed\n")
    with pytest.raises(CriteriaFileError, match=r"syntax\.yaml.*dòng"):
        load_registry([tmp_path])


def test_override_of_unknown_indicator_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "child.yaml", """\
        id: child
        extends: cdht-324-pl1
        overrides:
          ct99: {title: "Không có"}
        """)
    with pytest.raises(CriteriaFileError, match=r"overrides\.ct99"):
        load_registry([tmp_path])


def test_extends_cycle_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "id: a\nextends: b\n")
    _write(tmp_path, "b.yaml", "id: b\nextends: a\n")
    with pytest.raises(CriteriaFileError, match="vòng lặp"):
        load_registry([tmp_path])


def test_unknown_set_is_a_not_found_error(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError):
        registry.get("no-such-set")


@pytest.mark.parametrize(("spelling", "code"), [
    ("Giáo viên", "official"), ("giao vien", "official"), ("Nông dân", "farmer"), ("3", "official"),
    ("Công nhân", "worker"), ("official", "official"),
])
def test_group_spellings_resolve(spelling: str, code: str) -> None:
    group = resolve_group(spelling)
    assert group is not None and group.code == code


def test_unknown_group_spelling_resolves_to_none() -> None:
    assert resolve_group("học sinh tiểu học") is None
    assert resolve_group("officials") is None


runner = CliRunner()


def test_cli_criteria_list_and_show_json() -> None:
    out = runner.invoke(app, ["criteria", "list"])
    assert out.exit_code == 0 and "cdht-324-pl4-school" in out.output
    shown = runner.invoke(app, ["criteria", "show", "cdht-324-pl4-school", "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.output)
    assert [i["number"] for i in data["indicators"]] == list(range(1, 11))
    assert {"id", "number", "title", "max_points", "source"} <= set(data["indicators"][0])
    assert data["verified"] is False


def test_cli_show_tt22_json_has_3_criteria_10_indicators_and_sources() -> None:
    shown = runner.invoke(app, ["criteria", "show", "dvht-tt22-2020", "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    by_id = {i["id"]: i for i in data["indicators"]}
    assert len(data["criteria"]) == 3 and len(data["indicators"]) == 10
    assert [[by_id[i]["max_points"] for i in c["indicators"]] for c in data["criteria"]] == TT22_POINTS
    assert all(i["source"].startswith("Thông tư 22/2020/TT-BGDĐT, Điều 5, khoản ") for i in data["indicators"])
    assert len(by_id["ct8"]["sub_items"]) == 8 and by_id["ct8"]["label"] == "a"
    assert data["outcome"]["source"]["document"] == "Quyết định 2316/QĐ-UBND"
    assert data["source"]["document"] == "Thông tư 22/2020/TT-BGDĐT"
    text = runner.invoke(app, ["criteria", "show", "dvht-tt22-2020"]).output
    assert " 8. a) 100% thành viên" in text and "Nguồn quy tắc kết quả: Quyết định 2316/QĐ-UBND" in text


def test_cli_show_unknown_set_fails_cleanly() -> None:
    out = runner.invoke(app, ["criteria", "show", "nope"])
    assert out.exit_code != 0
    assert isinstance(out.exception, NotFoundError)
