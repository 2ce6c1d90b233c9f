"""Pydantic model of an assessed document; published as JSON Schema (formsvc/schemas/)."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from formsvc.text import nfc

RecordStatus = Literal["valid", "needs_review", "rejected"]
STATUS_LABELS: dict[RecordStatus, str] = {"valid": "Hợp lệ", "needs_review": "Cần kiểm tra",
                                          "rejected": "Không hợp lệ"}
Severity = Literal["error", "review", "warning", "info"]

_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def _coerce_score(value: Any) -> Any:
    """Numbers stay numbers; '7' and '7,5' (Vietnamese decimal comma) become floats.

    Anything else is kept as given, so the validation engine can name it instead of the
    parser refusing the whole record.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        if _NUMBER.match(text):
            return float(text.replace(",", "."))
        return text
    return str(value)


Score = Annotated[float | str | None, BeforeValidator(_coerce_score)]


def _nfc_or_none(value: Any) -> Any:
    return nfc(value) if isinstance(value, str) else value


NfcStr = Annotated[str, BeforeValidator(_nfc_or_none)]


class Subject(BaseModel):
    """Who (CDHT: a person) or what (ĐVHT: a unit) was assessed."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Roster / upstream id, when known")
    full_name: NfcStr
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    unit: Annotated[str | None, BeforeValidator(_nfc_or_none)] = None
    group: str | None = Field(default=None, description="Audience group code (farmer, worker, official)")


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable machine code, e.g. score_above_max")
    indicator: str | None = Field(default=None, description="Indicator id the reason is about")
    field: str | None = Field(default=None, description="Record field the reason is about")
    severity: Severity = "error"
    message: str = Field(description="Vietnamese message for the user")


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")

    total: float = Field(description="Computed total: indicators without evidence or a valid score count 0")
    max_total: float
    recognised: bool | None = Field(default=None, description="CDHT / recognition sets")
    band: str | None = Field(default=None, description="ĐVHT ranking band code")
    band_label: str | None = None
    reasons: list[Reason] = Field(default_factory=list)


class FieldProvenance(BaseModel):
    """Where a value came from: extraction fills these, a reviewer's correction adds one."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Dotted record path, e.g. scores.ct6 or subject.full_name")
    value: Any = None
    confidence: float = Field(ge=0, le=1)
    page: int | None = Field(default=None, ge=1)
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="x0, y0, x1, y1 in page pixels at the extraction dpi"
    )
    source: Literal["qr", "text_layer", "ocr", "handwriting", "known_value", "manual", "input"] = "input"
    # Optional so records stored before it (and every non-score field) stay valid: the review queue offers
    # these as one-key choices.
    candidates: list[float] | None = Field(
        default=None, max_length=5, description="Score fields read in doubt: the reader's allowed values, best first")

    @field_validator("confidence")
    @classmethod
    def _finite(cls, v: float) -> float:
        if math.isnan(v):
            raise ValueError("confidence must be a number")
        return v


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="Assigned by the store")
    form: str = Field(description="Form id from the form registry, e.g. cdht-self-assessment")
    criteria_set: str
    year: int = Field(ge=1900, le=2100)
    subject: Subject
    scores: dict[str, Score] = Field(default_factory=dict, description="indicator id -> score or null")
    evidence: dict[str, Annotated[str | None, BeforeValidator(_nfc_or_none)]] = Field(default_factory=dict)
    total_declared: Score = None
    assessment_date: dt.date | None = None
    registered_on: dt.date | None = None
    result: Result | None = None
    status: RecordStatus | None = None
    fields: list[FieldProvenance] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict, description="Form-specific fields (minutes, reports)")


def record_json_schema() -> dict[str, Any]:
    schema = Record.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://formsvc.invalid/schemas/record.schema.json"
    return schema
