"""Records from untrusted JSON (a file or a request body): one record, a list, or {"documents": [...]}."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from formsvc.errors import InputError
from formsvc.records.model import Record


def parse_records(data: Any, origin: str) -> list[Record]:
    items = data if isinstance(data, list) else data.get("documents", [data]) if isinstance(data, dict) else None
    if items is None:
        raise InputError(f"{origin}: cần một bản ghi (object) hoặc một danh sách bản ghi.", code="json_shape")
    records: list[Record] = []
    for n, item in enumerate(items, start=1):
        try:
            records.append(Record.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
            raise InputError(f"{origin}: bản ghi thứ {n} không đúng cấu trúc: {problems}",
                             code="record_invalid") from exc
    return records
