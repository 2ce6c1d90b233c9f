"""The pull feed's positions are given after commit: writers that commit out of order never make a reader holding
a cursor skip a change, and writers do not wait on each other for a feed number (PostgreSQL, where writers run
in parallel; SQLite serialises writers anyway)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from formsvc.criteria import default_registry
from formsvc.db import session_scope
from formsvc.service.records import store_record
from formsvc.validation import validate_document
from tests.factories import full_record
from tests.servers import RedisServer
from tests.service_app import App, service_app

UNIT = "Xã Thứ Tự Ghi"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("feed"), redis_server.url, database_url) as a:
        yield a


def _feed(app: App, key: dict[str, str], after: int) -> dict[str, Any]:
    r = app.client.get(f"/v1/records?after={after}&limit=500", headers=key)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_change_committed_late_is_not_skipped(app: App, database_url: str | None) -> None:
    if not (database_url or "").startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time: commits cannot interleave")
    reader = app.as_(app.key("integration", UNIT))
    cursor = _feed(app, reader, 0)["next_cursor"]
    record = validate_document(full_record(default_registry().get("cdht-324-pl4")), default_registry())
    early_written = threading.Event()
    release = threading.Event()
    early: dict[str, str] = {}

    def slow_writer() -> None:
        """Writes its change first (so it has the lower insertion id) and commits last."""
        with session_scope() as s:
            row = store_record(s, unit=UNIT, job_id=None, doc_key=uuid.uuid4().hex, record=record, pages={})
            assert row is not None
            early["id"] = row.id
            early_written.set()
            assert release.wait(30)

    t = threading.Thread(target=slow_writer)
    t.start()
    try:
        assert early_written.wait(30)
        start = time.monotonic()
        late = app.add_record(UNIT, name="Người Ghi Sau")  # a second writer: it must not wait for the first
        assert time.monotonic() - start < 5
        page = _feed(app, reader, cursor)
        assert [i["id"] for i in page["items"]] == [late.id]
        cursor = page["next_cursor"]
    finally:
        release.set()
        t.join(30)
    page = _feed(app, reader, cursor)  # the early change, committed after the reader moved past the late one
    assert [i["id"] for i in page["items"]] == [early["id"]]
    assert page["next_cursor"] > cursor


def test_feed_positions_follow_changes_and_a_corrected_record_moves_to_the_end(app: App) -> None:
    reader = app.as_(app.key("integration", UNIT))
    reviewer = app.as_(app.key("reviewer", UNIT))
    cursor = _feed(app, reader, 0)["next_cursor"]
    a, b = app.add_record(UNIT, name="Người A"), app.add_record(UNIT, name="Người B")
    page = _feed(app, reader, cursor)
    assert [i["id"] for i in page["items"]] == [a.id, b.id]
    seqs = [i["change_seq"] for i in page["items"]]
    assert seqs == sorted(seqs) and seqs[0] > cursor
    r = app.client.patch(f"/v1/records/{a.id}", json={"fields": {"year": 2025}}, headers=reviewer)
    assert r.status_code == 200, r.text
    again = _feed(app, reader, page["next_cursor"])
    assert [i["id"] for i in again["items"]] == [a.id] and again["items"][0]["version"] == 2
    assert _feed(app, reader, again["next_cursor"])["items"] == []
