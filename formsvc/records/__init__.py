"""The record model: one assessed document, as extracted, validated and stored."""

from formsvc.records.model import (
    STATUS_LABELS,
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
    "STATUS_LABELS",
    "FieldProvenance",
    "Reason",
    "Record",
    "RecordStatus",
    "Result",
    "Severity",
    "Subject",
    "record_json_schema",
]
