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


def test_builtin_sets_cover_three_groups_and_both_dvht_rules(registry) -> None:  # type: ignore[no-untyped-def]
    cdht_groups = {g for s in registry if s.kind == "cdht" for g in s.audience_groups}
    assert cdht_groups == {"farmer", "worker", "official"}
    dvht = {s.id: s.outcome.type for s in registry if s.kind == "dvht"}
    assert dvht == {"dvht-tt22-2020": "ranking", "dvht-tt24-2023": "recognition"}


def test_every_set_names_its_legal_source_and_totals_100(registry) -> None:  # type: ignore[no-untyped-def]
    for cset in registry:
        assert cset.source.document and cset.source.issuer and cset.source.date
        assert sum(i.max_points for i in cset.indicators) == 100
        assert [c.number for c in cset.criteria] == list(range(1, len(cset.criteria) + 1))


def test_cdht_sets_have_three_core_competences(registry) -> None:  # type: ignore[no-untyped-def]
    for cset in registry:
        if cset.kind == "cdht":
            assert [c.title for c in cset.criteria] == [
                "Năng lực tự học và học tập suốt đời",
                "Năng lực sử dụng những công cụ học tập, làm việc",
                "Năng lực xây dựng và thực hiện các mối quan hệ xã hội",
            ]
            assert {"ct6", "ct7"} <= {i.id for i in cset.criteria[1].indicators}


def test_school_set_takes_indicators_6_and_7_from_framework(registry) -> None:  # type: ignore[no-untyped-def]
    school, pl4, pl1 = (registry.get(x) for x in ("cdht-324-pl4-school", "cdht-324-pl4", "cdht-324-pl1"))
    for ind_id in ("ct6", "ct7"):
        assert school.indicator(ind_id) is not None
        assert school.indicator(ind_id).title == pl1.indicator(ind_id).title  # type: ignore[union-attr]
        assert school.indicator(ind_id).title != pl4.indicator(ind_id).title  # type: ignore[union-attr]
        assert school.indicator(ind_id).origin == "cdht-324-pl1"  # type: ignore[union-attr]
    # Everything else is Phụ lục IV's.
    assert school.indicator("ct2").title == pl4.indicator("ct2").title  # type: ignore[union-attr]
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


runner = CliRunner()


def test_cli_criteria_list_and_show_json() -> None:
    out = runner.invoke(app, ["criteria", "list"])
    assert out.exit_code == 0 and "cdht-324-pl4-school" in out.output
    shown = runner.invoke(app, ["criteria", "show", "cdht-324-pl4-school", "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.output)
    assert [i["number"] for i in data["indicators"]] == list(range(1, 11))
    assert {"id", "number", "title", "max_points"} <= set(data["indicators"][0])
    assert data["verified"] is False


def test_cli_show_unknown_set_fails_cleanly() -> None:
    out = runner.invoke(app, ["criteria", "show", "nope"])
    assert out.exit_code != 0
    assert isinstance(out.exception, NotFoundError)
