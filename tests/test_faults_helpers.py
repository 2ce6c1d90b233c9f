"""Helpers for fault tests that need records without running OCR."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from formsvc.criteria import default_registry
from formsvc.db import dispose_engines, session_scope
from formsvc.service.records import store_record
from formsvc.settings import get_settings
from formsvc.validation import validate_document
from tests.factories import full_record
from tests.stack import Stack


@contextmanager
def stack_database(stack: Stack) -> Iterator[None]:
    """Point this process's settings at the stack's database for a moment."""
    keys = ("FORMSVC_DATA_DIR", "FORMSVC_DATABASE_URL")
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys:
        if k in stack.env:
            os.environ[k] = stack.env[k]
        else:
            os.environ.pop(k, None)
    get_settings.cache_clear()
    dispose_engines()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
        dispose_engines()


def add_records(stack: Stack, unit: str, n: int, names: list[str] | None = None) -> list[str]:
    cset = default_registry().get("cdht-324-pl4")
    ids = []
    with stack_database(stack):
        for i in range(n):
            record = validate_document(full_record(cset, score=8), default_registry())
            subject = record.subject.model_copy(update={"full_name": names[i] if names else f"Người {i}"})
            record = record.model_copy(update={"subject": subject})
            with session_scope() as s:
                row = store_record(s, unit=unit, job_id=None, doc_key=uuid.uuid4().hex, record=record, pages={})
                assert row is not None
                ids.append(row.id)
    return ids
