"""The API in-process (FastAPI TestClient) against a real database and Redis, for fast service tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from formsvc.api.app import create_app
from formsvc.criteria import default_registry
from formsvc.db import dispose_engines, session_scope, upgrade
from formsvc.db.tables import RecordRow
from formsvc.records import Record
from formsvc.service.auth import create_key
from formsvc.service.records import store_record
from formsvc.settings import get_settings
from formsvc.validation import validate_document
from tests.factories import full_record


@dataclass
class App:
    client: TestClient
    root: Path

    def key(self, role: str, unit: str | None = None) -> str:
        with session_scope() as s:
            return create_key(s, role=role, unit=unit, name=f"{role} test")[1]

    def as_(self, key: str) -> dict[str, str]:
        return {"X-API-Key": key}

    def add_record(self, unit: str, *, name: str = "Nguyễn Thị Hương", score: float = 8, year: int = 2024,
                   **overrides: Any) -> RecordRow:
        return store_sample_record(unit, name=name, score=score, year=year, **overrides)


def store_sample_record(unit: str, *, name: str = "Nguyễn Thị Hương", score: float = 8, year: int = 2024,
                        **overrides: Any) -> RecordRow:
    """A validated self-assessment stored the way extraction stores one (with its change and outbox rows),
    in the database the current settings point at: records for tests without running OCR."""
    cset = default_registry().get("cdht-324-pl4")
    record = full_record(cset, score=score, year=year, **overrides)
    record = record.model_copy(update={"subject": record.subject.model_copy(update={"full_name": name})})
    checked: Record = validate_document(record, default_registry())
    with session_scope() as s:
        row = store_record(s, unit=unit, job_id=None, doc_key=uuid.uuid4().hex, record=checked, pages={})
        assert row is not None
        return row


@contextmanager
def migrated_store(root: Path, **env: str) -> Iterator[Path]:
    """Settings pointed at `root` (the embedded SQLite database and file store, unless `env` names a database),
    the schema migrated; engines and settings reset afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FORMSVC_DATABASE_URL", raising=False)
        for k, v in {"FORMSVC_DATA_DIR": str(root), **env}.items():
            mp.setenv(k, v)
        get_settings.cache_clear()
        dispose_engines()
        upgrade()
        try:
            yield root
        finally:
            dispose_engines()
            get_settings.cache_clear()


@contextmanager
def service_app(root: Path, redis_url: str, database_url: str | None, **settings: str) -> Iterator[App]:
    env = {"FORMSVC_REDIS_URL": redis_url,
           "FORMSVC_QUEUE_NAME": f"q-{uuid.uuid4().hex[:8]}", "FORMSVC_RATE_LIMIT_PER_MINUTE": "100000",
           "FORMSVC_AUTH_FAILURES_PER_MINUTE": "100000",
           **({"FORMSVC_DATABASE_URL": database_url} if database_url else {}), **settings}
    with migrated_store(root, **env), TestClient(create_app(migrate=False), raise_server_exceptions=False) as client:
        yield App(client, root)
