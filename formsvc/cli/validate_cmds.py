"""`formsvc validate FILE.json` and `formsvc schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from formsvc.criteria import default_registry
from formsvc.errors import InputError
from formsvc.records import record_json_schema
from formsvc.records.parse import parse_records
from formsvc.settings import get_settings
from formsvc.validation import validate_with_registry


def read_json_file(path: Path) -> Any:
    limit = get_settings().max_json_bytes
    try:
        raw = sys.stdin.buffer.read(limit + 1) if str(path) == "-" else path.open("rb").read(limit + 1)
    except OSError as exc:
        raise InputError(f"Không đọc được tệp {path}: {exc.strerror}.", code="file_unreadable") from exc
    if len(raw) > limit:
        raise InputError(f"Tệp {path} lớn hơn giới hạn {limit} byte.", code="json_too_large")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"Tệp {path} không phải JSON hợp lệ: {exc}.", code="json_invalid") from exc


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        file: Annotated[Path, typer.Argument(help="JSON file with one record or a list ('-' = stdin)")],
    ) -> None:
        """Validate records against their criteria sets and print them as JSON."""
        data = read_json_file(file)
        records = parse_records(data, str(file))
        registry = default_registry()
        threshold = get_settings().review_confidence
        out = [validate_with_registry(r, registry, review_confidence=threshold).model_dump(mode="json")
               for r in records]
        # One record in, one record out; a list (or a {"documents": [...]} file) in, a list out.
        single = isinstance(data, dict) and "documents" not in data
        typer.echo(json.dumps(out[0] if single else out, ensure_ascii=False, indent=2))

    @app.command("schema")
    def schema_cmd() -> None:
        """Print the JSON Schema of the record model."""
        typer.echo(json.dumps(record_json_schema(), ensure_ascii=False, indent=2))
