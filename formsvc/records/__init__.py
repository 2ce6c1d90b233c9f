"""The record model: one assessed document, as extracted, validated and stored."""

from formsvc.records.model import (
    FieldProvenance,
    Reason,
    Record,
    RecordStatus,
    Result,
    Severity,
    Subject,
    record_json_schema,
)

__all__ = [
    "FieldProvenance",
    "Reason",
    "Record",
    "RecordStatus",
    "Result",
    "Severity",
    "Subject",
    "record_json_schema",
]
