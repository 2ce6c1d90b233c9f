"""Load criteria-set YAML files, resolve `extends`/`overrides`, validate, and index them by id.

A set may be composed from another: `extends: BASE` inherits everything, top-level keys of the
child replace the base's, and `overrides: {INDICATOR_ID: {...}}` patches single indicators —
`from: OTHER_SET` takes that indicator (text, points, provenance) from another set. This is how
"indicators 6 and 7 of Phụ lục IV are replaced by those of Phụ lục I" is expressed without copying.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from formsvc.criteria.model import CriteriaSet
from formsvc.errors import CriteriaFileError, NotFoundError

BUILTIN_DIR = Path(__file__).parent / "sets"
_COMPOSE_KEYS = {"extends", "overrides", "defaults"}
_INDICATOR_DEFAULT_KEYS = ("step", "min_points", "evidence_required", "kind", "source")


@dataclass
class _Raw:
    data: dict[str, Any]
    file: Path


@dataclass
class CriteriaRegistry:
    sets: dict[str, CriteriaSet] = field(default_factory=dict)

    def get(self, set_id: str) -> CriteriaSet:
        try:
            return self.sets[set_id]
        except KeyError:
            raise NotFoundError(
                f"Không tìm thấy bộ tiêu chí '{set_id}'.",
                code="criteria_set_not_found",
                hint="Dùng lệnh 'formsvc criteria list' để xem các bộ tiêu chí hiện có.",
            ) from None

    def __iter__(self) -> Iterator[CriteriaSet]:
        return iter(sorted(self.sets.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self.sets)

    def __contains__(self, set_id: object) -> bool:
        return set_id in self.sets


def _fail(file: Path, where: str, problem: str) -> CriteriaFileError:
    return CriteriaFileError(
        f"Tệp bộ tiêu chí {file}: lỗi tại '{where}': {problem}",
        detail={"file": str(file), "path": where, "problem": problem},
    )


def _read(file: Path) -> _Raw:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"dòng {mark.line + 1}" if mark is not None else "(tệp)"
        raise _fail(file, where, f"YAML không hợp lệ: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(file, "(tệp)", f"không đọc được tệp: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise _fail(file, "id", "tệp phải là một bảng (mapping) có khóa 'id' kiểu chuỗi")
    return _Raw(data=data, file=file)


def _apply_defaults(data: dict[str, Any], set_id: str, file: Path) -> None:
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise _fail(file, "defaults", "phải là một bảng (mapping)")
    unknown = set(defaults) - set(_INDICATOR_DEFAULT_KEYS)
    if unknown:
        raise _fail(file, "defaults", f"khóa không hỗ trợ: {sorted(unknown)}")
    for c_idx, criterion in enumerate(data.get("criteria") or []):
        if not isinstance(criterion, dict):
            raise _fail(file, f"criteria.{c_idx}", "phải là một bảng (mapping)")
        for i_idx, ind in enumerate(criterion.get("indicators") or []):
            if not isinstance(ind, dict):
                raise _fail(file, f"criteria.{c_idx}.indicators.{i_idx}", "phải là một bảng (mapping)")
            for key in _INDICATOR_DEFAULT_KEYS:
                if key in defaults:
                    ind.setdefault(key, defaults[key])
            ind.setdefault("verified", bool(data.get("verified", False)))
            ind.setdefault("origin", set_id)


def _find_indicator(data: dict[str, Any], indicator_id: str) -> tuple[int, int] | None:
    for c_idx, criterion in enumerate(data.get("criteria") or []):
        for i_idx, ind in enumerate(criterion.get("indicators") or []):
            if ind.get("id") == indicator_id:
                return c_idx, i_idx
    return None


class _Resolver:
    def __init__(self, raws: dict[str, _Raw]) -> None:
        self.raws = raws
        self.done: dict[str, dict[str, Any]] = {}

    def resolve(self, set_id: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
        if set_id in self.done:
            return self.done[set_id]
        raw = self.raws[set_id]
        if set_id in chain:
            raise _fail(raw.file, "extends", f"vòng lặp kế thừa: {' -> '.join((*chain, set_id))}")
        own = copy.deepcopy(raw.data)
        own["file"] = str(raw.file)
        base_id = own.get("extends")
        if base_id is None:
            _apply_defaults(own, set_id, raw.file)
            merged = own
        else:
            if base_id not in self.raws:
                raise _fail(raw.file, "extends", f"không có bộ tiêu chí gốc '{base_id}'")
            merged = copy.deepcopy(self.resolve(base_id, (*chain, set_id)))
            if "criteria" in own:
                _apply_defaults(own, set_id, raw.file)
            for key, value in own.items():
                if key not in _COMPOSE_KEYS:
                    merged[key] = value
            merged["extends"] = base_id
            self._apply_overrides(merged, own.get("overrides") or {}, raw.file, (*chain, set_id),
                                  _cite(own.get("source")))
        merged.pop("defaults", None)
        merged.pop("overrides", None)
        self.done[set_id] = merged
        return merged

    def _apply_overrides(self, merged: dict[str, Any], overrides: Any, file: Path,
                         chain: tuple[str, ...], citation: str | None) -> None:
        if not isinstance(overrides, dict):
            raise _fail(file, "overrides", "phải là một bảng: mã chỉ tiêu -> thay đổi")
        for ind_id, patch in overrides.items():
            where = f"overrides.{ind_id}"
            if not isinstance(patch, dict):
                raise _fail(file, where, "phải là một bảng (mapping)")
            pos = _find_indicator(merged, ind_id)
            if pos is None:
                raise _fail(file, where, f"bộ tiêu chí gốc không có chỉ tiêu '{ind_id}'")
            c_idx, i_idx = pos
            target = merged["criteria"][c_idx]["indicators"][i_idx]
            patch = dict(patch)
            other_id = patch.pop("from", None)
            if other_id is not None:
                if other_id not in self.raws:
                    raise _fail(file, f"{where}.from", f"không có bộ tiêu chí '{other_id}'")
                other = self.resolve(other_id, chain)
                other_ind_id = patch.pop("indicator", ind_id)
                other_pos = _find_indicator(other, other_ind_id)
                if other_pos is None:
                    raise _fail(file, f"{where}.from", f"bộ '{other_id}' không có chỉ tiêu '{other_ind_id}'")
                oc, oi = other_pos
                replacement = copy.deepcopy(other["criteria"][oc]["indicators"][oi])
                # Keep the slot's identity (id and number in this set); carry the other set's text.
                replacement["id"] = target["id"]
                replacement["number"] = target["number"]
                target = replacement
            if "title" in patch:
                patch.setdefault("origin", chain[-1])
                # New wording comes from the child's document, not the base's.
                if citation is not None:
                    patch.setdefault("source", citation)
            target.update(patch)
            merged["criteria"][c_idx]["indicators"][i_idx] = target


def _cite(source: Any) -> str | None:
    """'Document, appendix' of a set's own source mapping, for indicators whose text it supplies."""
    if not isinstance(source, dict) or not isinstance(source.get("document"), str):
        return None
    appendix = source.get("appendix")
    return f"{source['document']}, {appendix}" if isinstance(appendix, str) and appendix else source["document"]


def _validate(data: dict[str, Any], file: Path) -> CriteriaSet:
    try:
        return CriteriaSet.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(gốc)"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(gốc)'}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(file, where, problems) from exc


def load_registry(extra_dirs: Iterable[Path] = (), *, include_builtin: bool = True) -> CriteriaRegistry:
    """Load every *.yaml under the built-in folder and `extra_dirs`; a later file with the same id wins."""
    dirs = ([BUILTIN_DIR] if include_builtin else []) + [Path(d) for d in extra_dirs]
    raws: dict[str, _Raw] = {}
    for folder in dirs:
        if not folder.is_dir():
            raise CriteriaFileError(
                f"Thư mục bộ tiêu chí không tồn tại: {folder}", detail={"file": str(folder), "path": ""}
            )
        for file in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            raw = _read(file)
            raws[raw.data["id"]] = raw
    resolver = _Resolver(raws)
    registry = CriteriaRegistry()
    for set_id, raw in raws.items():
        registry.sets[set_id] = _validate(resolver.resolve(set_id), raw.file)
    return registry


@lru_cache(maxsize=1)
def _cached(extra: tuple[Path, ...]) -> CriteriaRegistry:
    return load_registry(extra)


def default_registry() -> CriteriaRegistry:
    """The registry for this process: built-in sets plus FORMSVC_CRITERIA_DIRS, overlaid with the versions
    accepted from official files (`criteria.store`), seen without a restart."""
    from formsvc.criteria.store import with_stored
    from formsvc.settings import get_settings

    settings = get_settings()
    return with_stored(_cached(tuple(settings.criteria_dirs)), settings.resolved_criteria_store_dir)
