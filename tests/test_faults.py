"""Faults: a worker killed mid-job, Redis restarted, the API killed during uploads, the database away,
the webhook receiver down. Each test bounds its own time; nothing may be lost or stored twice."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fixtures.roster_gen import write_roster
from fixtures.scans import save_scan
from formsvc.render.converter import get_converter
from formsvc.render.pack import print_pack
from tests.polling import holds_for, wait_until
from tests.receiver import Receiver
from tests.servers import PostgresServer, RedisServer
from tests.stack import Stack, running_stack

pytestmark = [pytest.mark.timeout(420), pytest.mark.service]
UNIT = "UBND xã Tam Hưng"


@pytest.fixture(scope="module")
def pack_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """100 people's pre-filled self-assessments as formsvc prints them: a 200-page file."""
    folder = tmp_path_factory.mktemp("pack")
    print_pack("cdht-self-assessment", write_roster(folder / "roster.csv", 100, seed=3), folder / "pack.pdf",
               year=2024)
    get_converter().close()
    return (folder / "pack.pdf").read_bytes()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with RedisServer() as server:  # its own: these tests restart it
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("faults"), redis=redis, workers=1) as s:
        yield s


def _png(seed: int, path: Path) -> bytes:
    img = np.full((1169, 827), 255, np.uint8)
    img[seed % 1000, seed % 800] = 0  # distinct bytes per file, so none is a duplicate upload
    save_scan([img], path, dpi=100)
    return path.read_bytes()


def _supervise(stack: Stack) -> None:
    """What `formsvc up` does: a worker that died is started again."""
    for name in [n for n, p in stack.procs.items() if n.startswith("worker") and p.poll() is not None]:
        stack.procs.pop(name)
        stack.start_worker(int(name.removeprefix("worker")) + 10)


def test_worker_killed_mid_job_every_page_ends_once(stack: Stack, pack_pdf: bytes) -> None:
    c = stack.client(stack.new_key("clerk", UNIT))
    r = c.post("/v1/submissions", files={"files": ("200-trang.pdf", pack_pdf, "application/pdf")})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    wait_until(lambda: c.get(f"/v1/jobs/{job_id}").json()["progress"]["pages_done"] >= 30, 120, 0.2, "30 pages done")
    stack.kill("worker0")  # SIGKILL to the worker and its work horse
    killed_at = c.get(f"/v1/jobs/{job_id}").json()
    assert killed_at["status"] == "running" and killed_at["progress"]["pages_done"] < 200
    stack.start_worker(1)
    job = stack.wait_job(c, job_id, timeout=300)
    assert job["status"] == "done", job
    assert job["attempts"] >= 2, "the job was retried after the kill"
    assert job["errors"] == []
    assert len(job["records"]) == 100
    people = [c.get(f"/v1/records/{rec['id']}").json()["record"]["subject"]["id"] for rec in job["records"]]
    assert len(set(people)) == 100, "a document was stored twice"
    assert job["progress"]["pages_done"] == job["progress"]["pages_total"] == 200


def test_redis_restart_during_processing_loses_nothing(stack: Stack, redis: RedisServer, tmp_path: Path) -> None:
    c = stack.client(stack.new_key("clerk", UNIT))
    before = [c.post("/v1/submissions", files={"files": (f"a{i}.png", _png(i, tmp_path / f"a{i}.png"),
                                                         "image/png")}).json()["id"] for i in range(3)]
    redis.stop()  # everything queued in Redis is gone with it (no persistence here)
    assert c.get("/v1/records").status_code == 200, "reads do not need Redis"
    during = c.post("/v1/submissions", files={"files": ("b.png", _png(99, tmp_path / "b.png"), "image/png")})
    assert during.status_code == 202, during.text  # kept in the database, queued when Redis is back
    time.sleep(2)  # the outage itself (a length, not a wait for something): the processes meet a Redis that is gone
    redis.start()
    jobs = [*before, during.json()["id"]]

    def all_done() -> list[dict[str, Any]] | None:
        _supervise(stack)
        states = [c.get(f"/v1/jobs/{j}").json() for j in jobs]
        return states if all(s["status"] == "done" for s in states) else None

    try:
        states = wait_until(all_done, 120, 0.5, "jobs done after the Redis restart")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.log('dispatcher')}") from None
    for s in states:
        assert [e["code"] for e in s["errors"]] == ["page_unidentified"]  # each blank page: exactly one error


def test_api_killed_during_uploads_retries_make_exactly_one_job_each(stack: Stack, tmp_path: Path) -> None:
    key = stack.new_key("clerk", "Trường TH Nguyễn Bỉnh Khiêm")
    files = [(f"s{i}.png", _png(1000 + i, tmp_path / f"s{i}.png")) for i in range(12)]
    results: dict[str, str] = {}
    failures: list[str] = []
    refused: list[str] = []  # attempts that met no API (connection refused or reset)

    def client_loop() -> None:
        with httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=20) as c:
            for name, data in files:
                idem = str(uuid.uuid4())
                for _attempt in range(300):  # a real client retries with the same Idempotency-Key
                    try:
                        r = c.post("/v1/submissions", files={"files": (name, data, "image/png")},
                                   headers={"Idempotency-Key": idem})
                    except httpx.HTTPError:
                        refused.append(name)
                        time.sleep(0.2)  # the client's own retry pause, as a real client has one
                        continue
                    if r.status_code in (200, 202):
                        results[name] = r.json()["id"]
                        break
                    if r.status_code in (409, 503):
                        time.sleep(0.2)
                        continue
                    failures.append(f"{name}: {r.status_code} {r.text[:200]}")
                    break
                else:
                    failures.append(f"{name}: never accepted")
                time.sleep(0.1)

    t = threading.Thread(target=client_loop)
    t.start()
    wait_until(lambda: len(results) >= 2, 60, what="the first uploads accepted")  # the API dies mid-series
    stack.kill("api")
    wait_until(lambda: refused, 60, what="the client meeting the dead API")
    stack.start_api()
    t.join(120)
    assert not failures and len(results) == len(files), (failures, results)
    assert len(set(results.values())) == len(files)
    with stack.client(key) as c:
        listed = c.get("/v1/jobs", params={"limit": 200}).json()
    assert listed["total"] == len(files), "an upload made two jobs, or none"


def test_webhook_receiver_down_then_up_gets_every_event_once_in_order(stack: Stack) -> None:
    receiver = Receiver()
    unit = "Trường MN Sen Hồng"
    clerk = stack.client(stack.new_key("clerk", unit))
    reviewer = stack.client(stack.new_key("reviewer", unit))
    hook = clerk.post("/v1/webhooks", json={"url": receiver.url}).json()
    secret = hook["secret"]
    # Records made the way extraction makes them, then changed several times while the receiver is down.
    from tests.test_faults_helpers import add_records

    ids = add_records(stack, unit, 4)
    for rid in ids:
        for score in (5, 6, 7):
            assert reviewer.patch(f"/v1/records/{rid}", json={"fields": {"scores.ct1": score}}).status_code == 200
    # Many failed attempts first (with the test backoff, 0.05 s .. 0.5 s, a few seconds are ~10 min of real backoff).
    wait_until(lambda: any(d["attempts"] >= 5 for d in clerk.get(f"/v1/webhooks/{hook['id']}/deliveries").json()),
               60, 0.2, "five failed attempts at one delivery")
    receiver.start()
    try:
        wait_until(lambda: len(receiver.received) >= 16, 60, 0.2, "all events delivered")
        holds_for(lambda: len(receiver.received) == 16, 1.5, what="no event delivered twice")
        events = receiver.events()
        assert len(events) == 16 and len({e["id"] for e in events}) == 16, "each event exactly once"
        assert all(item.signed_by(secret) for item in receiver.received)
        for rid in ids:
            versions = [e["record"]["version"] for e in events if e["record"]["id"] == rid]
            assert versions == [1, 2, 3, 4], f"out of order for {rid}: {versions}"
    finally:
        receiver.stop()


def test_database_unreachable_is_503_and_recovers(tmp_path: Path, redis: RedisServer) -> None:
    with PostgresServer() as pg, running_stack(tmp_path / "pgstack", redis=redis,
                                               database_url=pg.new_database("outage"), workers=1) as stack:
        c = stack.client(stack.new_key("clerk", UNIT))
        done = c.post("/v1/submissions", files={"files": ("x.png", _png(7, tmp_path / "x.png"), "image/png")})
        pg.pause()
        try:
            for _ in range(3):
                r = c.get("/v1/records")
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "database_unavailable" and "thử lại" in r.json()["message"]
                assert int(r.headers["retry-after"]) > 0
            r = c.post("/v1/submissions", files={"files": ("y.png", _png(8, tmp_path / "y.png"), "image/png")})
            assert r.status_code == 503, r.text
            # The dispatcher meets the outage too (and must go on by itself afterwards).
            wait_until(lambda: "dispatcher:" in stack.log("dispatcher"), 60, 0.2, "the dispatcher meeting the outage")
        finally:
            pg.resume()
        wait_until(lambda: c.get("/v1/records").status_code == 200, 30, 0.2, "API recovered by itself")
        job = stack.wait_job(c, done.json()["id"], timeout=120)
        assert job["status"] == "done" and len(job["errors"]) == 1
        assert "Traceback" not in stack.log("api")
