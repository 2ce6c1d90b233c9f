"""Validation engine: pure functions over (record, criteria set)."""

from formsvc.validation.engine import status_for, validate, validate_document, validate_with_registry

__all__ = ["status_for", "validate", "validate_document", "validate_with_registry"]
