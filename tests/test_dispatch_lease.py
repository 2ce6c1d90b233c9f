"""Webhook dispatchers sharing one database: each event reaches a slow receiver exactly once and in order per
record, a delivery whose lease ran out is not sent by its old holder, and a slow receiver does not hold up the
others. Real HTTP on loopback, real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from formsvc.db import session_scope
from formsvc.db.tables import Delivery, Webhook
from formsvc.service.dispatch import claim, deliver, run_once
from tests.servers import RedisServer, free_port
from tests.service_app import App, service_app


class SlowReceiver:
    """Answers 200 after `delay` seconds; keeps every event it was sent, in arrival order."""

    def __init__(self, delay: float) -> None:
        self.delay, self.port = delay, free_port()
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(outer.delay)
                with outer.lock:
                    outer.events.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("lease"), redis_server.url, database_url,
                     FORMSVC_WEBHOOK_ALLOW_PRIVATE="true", FORMSVC_WEBHOOK_TIMEOUT_S="3",
                     FORMSVC_WEBHOOK_BATCH="4") as a:
        yield a


def _subscribe(app: App, unit: str, url: str) -> dict[str, str]:
    clerk = app.as_(app.key("clerk", unit))
    r = app.client.post("/v1/webhooks", json={"url": url}, headers=clerk)
    assert r.status_code == 201, r.text
    return clerk


def _events_for(app: App, unit: str, records: int) -> list[str]:
    """`records` records of `unit`, each created, corrected and approved: three events per record."""
    reviewer = app.as_(app.key("reviewer", unit))
    ids = []
    for i in range(records):
        row = app.add_record(unit, name=f"Người Thứ {i}")
        r = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"year": 2025}}, headers=reviewer)
        assert r.status_code == 200, r.text
        r = app.client.post(f"/v1/records/{row.id}/approve", headers=reviewer)
        assert r.status_code == 200, r.text
        ids.append(row.id)
    return ids


def _drain(owner: str, stop: threading.Event) -> None:
    with httpx.Client(timeout=3) as client:
        while not stop.is_set():
            if run_once(owner, client) == 0:
                time.sleep(0.05)


def _pending(unit_hook: str) -> int:
    with session_scope() as s:
        return len(list(s.scalars(select(Delivery.id).where(Delivery.webhook_id == unit_hook,
                                                           Delivery.status == "pending"))))


def test_two_dispatchers_one_slow_receiver_each_event_once_in_order(app: App) -> None:
    unit = "Xã Hai Người Gửi"
    receiver = SlowReceiver(delay=0.15)
    try:
        _subscribe(app, unit, receiver.url)
        ids = _events_for(app, unit, records=6)
        with session_scope() as s:
            hook = s.scalars(select(Webhook.id).where(Webhook.unit == unit)).one()
        stop = threading.Event()
        workers = [threading.Thread(target=_drain, args=(f"d{i}", stop)) for i in range(2)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 60
        while _pending(hook) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for w in workers:
            w.join(10)
        assert _pending(hook) == 0
        events = list(receiver.events)
        event_ids = [e["id"] for e in events]
        assert len(event_ids) == len(set(event_ids)) == 3 * len(ids), "an event was sent twice or lost"
        for record_id in ids:
            kinds = [e["type"] for e in events if e["record"]["id"] == record_id]
            assert kinds == ["record.created", "record.corrected", "record.approved"], kinds
            versions = [e["record"]["version"] for e in events if e["record"]["id"] == record_id]
            assert versions == sorted(versions)
    finally:
        receiver.stop()


def test_a_delivery_whose_lease_ran_out_is_not_sent_by_its_old_holder(app: App) -> None:
    """Dispatcher A claims, then stalls past its lease; B takes the delivery over. A, waking up, must not send:
    before, A sent anyway (a duplicate, and possibly after B had already sent a later event)."""
    unit = "Phường Hết Hạn Thuê"
    receiver = SlowReceiver(delay=0.0)
    try:
        _subscribe(app, unit, receiver.url)
        app.add_record(unit)
        with session_scope() as s:
            hook = s.scalars(select(Webhook.id).where(Webhook.unit == unit)).one()
            [mine] = s.scalars(select(Delivery.id).where(Delivery.webhook_id == hook))
        claimed_a = claim("A", limit=500)
        assert mine in claimed_a
        with session_scope() as s:  # A's lease runs out while it is busy elsewhere
            s.execute(update(Delivery).where(Delivery.id == mine)
                      .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
        assert mine in claim("B", limit=500)
        with httpx.Client(timeout=3) as client:
            assert deliver(mine, client, "A") is False
            assert receiver.events == []
            assert deliver(mine, client, "B") is True
        assert len(receiver.events) == 1
    finally:
        receiver.stop()


def test_a_slow_receiver_does_not_hold_up_the_others(app: App) -> None:
    slow_unit, fast_unit = "Xã Chậm Trả Lời", "Xã Trả Lời Nhanh"
    slow, fast = SlowReceiver(delay=1.0), SlowReceiver(delay=0.0)
    try:
        _subscribe(app, slow_unit, slow.url)
        _subscribe(app, fast_unit, fast.url)
        for _ in range(2):
            app.add_record(slow_unit)
            app.add_record(fast_unit)
        done_fast: list[float] = []
        start = time.monotonic()
        with httpx.Client(timeout=3) as client, ThreadPoolExecutor(max_workers=2) as pool:
            def watch() -> None:
                _wait_for(fast, 2, 10)
                done_fast.append(time.monotonic())

            watcher = threading.Thread(target=watch)
            watcher.start()
            sent = 0
            while sent < 4 and time.monotonic() - start < 30:
                sent += run_once("parallel", client, pool)
            watcher.join(10)
        assert sent == 4 and len(slow.events) == 2 and len(fast.events) == 2
        # The fast receiver had both its events while the slow one was still on its first two seconds.
        assert done_fast and done_fast[0] - start < 1.5, done_fast[0] - start if done_fast else None
    finally:
        slow.stop()
        fast.stop()


def _wait_for(receiver: SlowReceiver, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.events) < count and time.monotonic() < deadline:
        time.sleep(0.02)
