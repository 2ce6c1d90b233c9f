"""Helpers for fault tests that need records without running OCR."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from formsvc.db import dispose_engines
from formsvc.settings import get_settings
from tests.service_app import store_sample_record
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
    with stack_database(stack):
        return [store_sample_record(unit, name=names[i] if names else f"Người {i}").id for i in range(n)]
