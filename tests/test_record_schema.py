"""The published JSON Schema is the record model's, and records round-trip through it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from formsvc.cli import app
from formsvc.criteria import load_registry
from formsvc.records import Record, record_json_schema
from formsvc.validation import validate
from tests.factories import full_record

SCHEMA_FILE = Path(__file__).parents[1] / "formsvc" / "schemas" / "record.schema.json"


def test_committed_schema_matches_model() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == record_json_schema(), "run: formsvc schema > formsvc/schemas/record.schema.json"


def test_cli_schema_prints_it() -> None:
    out = CliRunner().invoke(app, ["schema"])
    assert out.exit_code == 0 and json.loads(out.output) == record_json_schema()


def test_validated_record_conforms_to_schema() -> None:
    cset = load_registry().get("cdht-324-pl4")
    rec = validate(full_record(cset, score=8, fields=[
        {"name": "scores.ct1", "value": 8, "confidence": 0.97, "page": 1, "bbox": [10, 20, 60, 50],
         "source": "handwriting"}]), cset)
    data = rec.model_dump(mode="json")
    jsonschema.validate(data, record_json_schema())
    assert Record.model_validate(data) == rec


def test_names_are_stored_nfc() -> None:
    decomposed = "Nguye\u0302\u0303n Thi\u0323 Hu\u031bo\u031bng"
    rec = Record.model_validate({"form": "f", "criteria_set": "c", "year": 2024,
                                 "subject": {"full_name": decomposed}})
    assert rec.subject.full_name == "Nguyễn Thị Hương"
