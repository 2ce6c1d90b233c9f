"""Criteria sets accepted from official files, stored per deployment, every version kept.

A set is referred to as `ID` (its newest version) or `ID@VERSION` (that version for ever). Forms print the pinned
reference in their QR once a set has stored versions, so a form printed before a newer import still reads and
validates against the version it was printed with. QR codes that predate this carry the bare id; they were
printed from the version shipped in the data files, which `read_ref` names.

Storage is a folder of YAML files, one per accepted version (`sets/ID@VERSION.yaml`, written once, atomically,
never overwritten), beside the file store under FORMSVC_DATA_DIR, on the same shared mount when several machines
serve one deployment. Every process sees a newly accepted version on its next lookup: the registry is rebuilt
when the folder's listing changes, which costs one directory scan per lookup.
Imports waiting for an administrator's decision are kept in `pending/` until accepted or rejected.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from formsvc.criteria.loader import CriteriaRegistry
from formsvc.criteria.model import CriteriaSet
from formsvc.errors import ConflictError, CriteriaFileError, NotFoundError

_STORED = re.compile(r"^(?P<id>[A-Za-z0-9._-]+)@(?P<version>[1-9][0-9]{0,5})\.yaml$")
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
PENDING_DAYS = 14
_REF = re.compile(r"^(?P<id>[A-Za-z0-9._-]+)@(?P<version>[0-9]{1,6})$")


def split_ref(ref: str) -> tuple[str, int | None]:
    """'ID@3' -> ('ID', 3); 'ID' -> ('ID', None)."""
    m = _REF.match(ref)
    return (m["id"], int(m["version"])) if m else (ref, None)


def set_id_of(ref: str) -> str:
    return split_ref(ref)[0]


@dataclass
class VersionedRegistry(CriteriaRegistry):
    """The data files' sets overlaid with stored versions; `sets` holds each id's newest version."""

    history: dict[str, dict[int, CriteriaSet]] = field(default_factory=dict)
    file_versions: dict[str, int] = field(default_factory=dict)  # version shipped in the data files, per id
    stored_ids: set[str] = field(default_factory=set)

    def get(self, set_id: str) -> CriteriaSet:
        base_id, version = split_ref(set_id)
        if version is None:
            return super().get(set_id)
        found = self.history.get(base_id, {}).get(version)
        if found is None:
            raise NotFoundError(f"Không tìm thấy bộ tiêu chí '{base_id}' phiên bản {version}.",
                                code="criteria_set_not_found",
                                hint="Dùng lệnh 'formsvc criteria list' để xem các bộ tiêu chí hiện có.")
        return found

    def __contains__(self, set_id: object) -> bool:
        if not isinstance(set_id, str):
            return False
        base_id, version = split_ref(set_id)
        return base_id in self.sets if version is None else version in self.history.get(base_id, {})

    def versions_of(self, set_id: str) -> list[int]:
        return sorted(self.history.get(set_id, {})) or [super().get(set_id).version]

    def print_ref(self, set_id: str) -> str:
        """What a form printed now carries: pinned to the version once the set has stored versions."""
        base_id, version = split_ref(set_id)
        if version is not None or base_id not in self.stored_ids:
            return set_id
        return f"{base_id}@{self.get(base_id).version}"

    def read_ref(self, set_id: str) -> str:
        """The set a returned form was printed with: a bare id (printed before any import) is the data files'."""
        base_id, version = split_ref(set_id)
        if version is not None or base_id not in self.stored_ids or base_id not in self.file_versions:
            return set_id
        return f"{base_id}@{self.file_versions[base_id]}"


def overlay(files: CriteriaRegistry, stored: list[CriteriaSet]) -> VersionedRegistry:
    out = VersionedRegistry(sets=dict(files.sets))
    for cset in files:
        out.history.setdefault(cset.id, {})[cset.version] = cset
        out.file_versions[cset.id] = cset.version
    for cset in stored:
        out.history.setdefault(cset.id, {})[cset.version] = cset  # a stored version wins a tie with the files
        out.stored_ids.add(cset.id)
    for set_id, versions in out.history.items():
        out.sets[set_id] = versions[max(versions)]
    return out


def _write_once(path: Path, text: str) -> bool:
    """Write `text` to `path` atomically unless it exists; False when another writer got there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if the name is taken: two accepts never share a version
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def dump_set(data: dict[str, Any]) -> str:
    header = (f"# {data['id']} version {data['version']}: wording and points imported from the official file "
              f"{data.get('imported_from', {}).get('file_name', '')} (sha256 {data['source'].get('sha256', '')}).\n")
    # One line per wording (no folding), so a word can be found and corrected by hand.
    return header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100_000)


@dataclass
class Pending:
    token: str
    data: dict[str, Any]
    meta: dict[str, Any]


class CriteriaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sets_dir = root / "sets"
        self.pending_dir = root / "pending"

    # -- accepted versions --

    def files(self) -> list[Path]:
        if not self.sets_dir.is_dir():
            return []
        return sorted(p for p in self.sets_dir.iterdir() if _STORED.match(p.name))

    def signature(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.files())

    def load(self) -> list[CriteriaSet]:
        out = []
        for path in self.files():
            m = _STORED.match(path.name)
            assert m is not None
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
                cset = CriteriaSet.model_validate(data | {"file": str(path)})
            except (yaml.YAMLError, ValidationError, TypeError, OSError) as exc:
                raise CriteriaFileError(f"Tệp bộ tiêu chí đã lưu {path} bị hỏng: {exc}",
                                        detail={"file": str(path), "path": ""}) from exc
            if (cset.id, cset.version) != (m["id"], int(m["version"])):
                raise CriteriaFileError(f"Tệp bộ tiêu chí đã lưu {path} không khớp tên (id, phiên bản).",
                                        detail={"file": str(path), "path": "id"})
            out.append(cset)
        return out

    def add(self, data: dict[str, Any], registry: CriteriaRegistry) -> CriteriaSet:
        """Store `data` as the next version of its set (renumbered if another version was stored meanwhile)."""
        for _ in range(20):
            versions = registry.versions_of(data["id"]) if isinstance(registry, VersionedRegistry) else []
            stored = [int(m["version"]) for p in self.files() if (m := _STORED.match(p.name)) and m["id"] == data["id"]]
            data = data | {"version": max([*versions, *stored, 0]) + 1}
            cset = CriteriaSet.model_validate(data | {"file": "(store)"})
            if _write_once(self.sets_dir / f"{cset.id}@{cset.version}.yaml", dump_set(data)):
                return cset
        raise ConflictError("Không lưu được bộ tiêu chí: có quá nhiều lần lưu cùng lúc; hãy thử lại.",
                            code="criteria_store_busy")

    # -- imports waiting for a decision --

    def stage(self, data: dict[str, Any], meta: dict[str, Any]) -> str:
        self._forget_stale()
        token = secrets.token_hex(16)
        body = {"data": data, "meta": meta | {"staged_at": dt.datetime.now(dt.UTC).isoformat()}}
        _write_once(self.pending_dir / f"{token}.json", json.dumps(body, ensure_ascii=False))
        return token

    def _forget_stale(self) -> None:
        """Imports nobody decided on within PENDING_DAYS are dropped (the official file stays in the file store)."""
        if not self.pending_dir.is_dir():
            return
        cutoff = dt.datetime.now(dt.UTC).timestamp() - PENDING_DAYS * 86400
        for path in self.pending_dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def pending(self, token: str) -> Pending:
        path = self.pending_dir / f"{token}.json"
        if not _TOKEN.match(token) or not path.is_file():
            raise NotFoundError("Không tìm thấy bản nhập đang chờ duyệt (đã được chấp nhận, từ chối hoặc không có).",
                                code="criteria_import_not_found")
        body = json.loads(path.read_text(encoding="utf-8"))
        return Pending(token, body["data"], body["meta"])

    def discard(self, token: str) -> None:
        self.pending(token)
        (self.pending_dir / f"{token}.json").unlink(missing_ok=True)

    def accept(self, token: str, registry: CriteriaRegistry, accepted_by: str | None) -> CriteriaSet:
        item = self.pending(token)
        data = dict(item.data)
        data["imported_from"] = dict(data["imported_from"]) | {"accepted_by": accepted_by}
        cset = self.add(data, registry)
        (self.pending_dir / f"{token}.json").unlink(missing_ok=True)
        return cset


def get_store() -> CriteriaStore:
    from formsvc.settings import get_settings

    return CriteriaStore(get_settings().resolved_criteria_store_dir)


_cache: dict[tuple[int, Path], tuple[tuple[str, ...], VersionedRegistry]] = {}
_cache_lock = threading.Lock()


def with_stored(files: CriteriaRegistry, root: Path) -> VersionedRegistry:
    """`files` overlaid with the versions stored under `root`, rebuilt only when that folder's listing changed."""
    store = CriteriaStore(root)
    signature = store.signature()
    key = (id(files), root)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == signature:
            return hit[1]
    registry = overlay(files, store.load())
    with _cache_lock:
        _cache[key] = (signature, registry)
    return registry


def print_ref(registry: CriteriaRegistry, ref: str) -> str:
    """The set reference a form printed now carries in its QR (see `VersionedRegistry.print_ref`)."""
    return registry.print_ref(ref) if isinstance(registry, VersionedRegistry) else ref


def read_ref(registry: CriteriaRegistry, ref: str | None) -> str | None:
    """The set a returned form was printed with (see `VersionedRegistry.read_ref`)."""
    return registry.read_ref(ref) if ref and isinstance(registry, VersionedRegistry) else ref
