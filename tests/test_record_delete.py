"""Deleting a record (issue 11: corrections are stored with their crops and deleted with the record).

The row becomes a tombstone without personal data, so the pull feed and the webhooks can still tell upstream
systems; everything a person looks at forgets it; its review samples, corrections, crops and page images go,
except files another row still uses. In-process API against real SQLite and PostgreSQL and a real file store,
then the record page's button in Debian's Chromium.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from formsvc.criteria import default_registry
from formsvc.db import session_scope
from formsvc.db.tables import Change, Correction, Delivery, Job, JobFile, RecordRow, ReviewSample, StoredFile, utcnow
from formsvc.records import FieldProvenance, Record
from formsvc.service import file_refs, ingest
from formsvc.service.auth import Principal
from formsvc.service.dispatch import run_once
from formsvc.service.dossier import dossier_rows
from formsvc.service.recognition import unit_cdht_shares
from formsvc.service.records import delete_record, stored_sheets
from formsvc.service.retrain import load_samples
from formsvc.settings import get_settings
from formsvc.storage import get_file_store
from formsvc.validation import validate_document
from tests.factories import full_record
from tests.servers import RedisServer
from tests.service_app import App, service_app
from tests.stack import Stack, running_stack
from tests.test_review_queue import _settings_of
from tests.test_web_ui import browser, session  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.timeout(600)

UNIT = "Trường THCS Xóa Bản Ghi"
OTHER = "Trường TH Đơn Vị Khác"
SET_ID = "cdht-324-pl4"
# Two score boxes, in page pixels; both sheets of a test are drawn with the same layout.
BOXES = {"scores.ct1": (60.0, 60.0, 160.0, 130.0), "scores.ct2": (60.0, 200.0, 160.0, 270.0)}
ADMIN = Principal(key_id="sys", role="admin", unit=None, name="admin")


def _page(digits: str) -> bytes:
    """A scanned page with two handwritten-looking score boxes (the digits differ per page, so do the bytes)."""
    img = np.full((400, 300), 255, np.uint8)
    for (x0, y0, x1, y1), digit in zip(BOXES.values(), digits, strict=True):
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), 0, 2)
        cv2.putText(img, digit, (int(x0) + 30, int(y1) - 15), cv2.FONT_HERSHEY_SIMPLEX, 1.6, 0, 3)
    ok, png = cv2.imencode(".png", img)
    assert ok
    return png.tobytes()


@dataclass(frozen=True)
class Stored:
    id: str
    pages: dict[int, str]


def _record(name: str, *, year: int = 2024, box_pages: dict[str, int] | None = None) -> Record:
    """A self-assessment whose two score boxes were read in doubt, validated the way extraction validates it."""
    cset = default_registry().get(SET_ID)
    record = full_record(cset, score=8, year=year)
    record = record.model_copy(update={"subject": record.subject.model_copy(update={"full_name": name})})
    box_pages = box_pages or {"scores.ct1": 1, "scores.ct2": 1}
    fields = [FieldProvenance(name=n, value=8.0, confidence=0.3, page=box_pages[n], bbox=bbox, source="handwriting",
                              candidates=[8.0, 3.0]) for n, bbox in BOXES.items()]
    checked: Record = validate_document(record.model_copy(update={"fields": fields}), default_registry(),
                                        review_confidence=get_settings().review_confidence)
    return checked


def _ingest(record: Record, pages: dict[int, bytes], *, job_id: str | None = None,
            doc_key: str | None = None) -> tuple[int, dict[int, str]]:
    """Store the pages and the record the way a job does; (records stored, page -> sha256)."""
    store = get_file_store()
    shas = {n: store.put_bytes(data) for n, data in pages.items()}
    with session_scope() as s:
        stored = ingest.store(s, unit=record.subject.unit or UNIT, job_id=job_id, records=[record], findings=[[]],
                              keys=[doc_key or uuid.uuid4().hex], pages=[shas])
    return stored, shas


def _store(unit: str, name: str, pages: dict[int, bytes], *, box_pages: dict[str, int] | None = None,
           job_id: str | None = None, doc_key: str | None = None, year: int = 2024) -> Stored:
    record = _record(name, year=year, box_pages=box_pages)
    record = record.model_copy(update={"subject": record.subject.model_copy(update={"unit": unit})})
    stored, shas = _ingest(record, pages, job_id=job_id, doc_key=doc_key)
    assert stored == 1
    with session_scope() as s:
        row = s.scalars(select(RecordRow).where(RecordRow.subject_name == name, RecordRow.status != "deleted")
                        .order_by(RecordRow.created_at.desc())).first()
        assert row is not None
        return Stored(row.id, shas)


def _exists(sha: str) -> bool:
    return get_file_store().exists(sha)


def _version(app: App, key: str, record_id: str) -> int:
    r = app.client.get(f"/v1/records/{record_id}", headers=app.as_(key))
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{r.json()["version"]}"'
    return int(r.json()["version"])


def _confirm(app: App, key: str, record_id: str, field: str, value: float) -> None:
    r = app.client.post(f"/v1/records/{record_id}/confirm", headers=app.as_(key),
                        json={"field": field, "value": value, "version": _version(app, key, record_id)})
    assert r.status_code == 200, r.text


def _crops(record_id: str) -> dict[str, str]:
    with session_scope() as s:
        return {r.field: str(r.crop_sha256) for r in s.scalars(select(ReviewSample)
                                                               .where(ReviewSample.record_id == record_id))}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("del"), redis_server.url, database_url) as a:
        yield a


# -- the deletion itself -------------------------------------------------------------------------------------

def test_a_deleted_record_is_a_tombstone_its_files_go_and_upstream_hears_once(app: App,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    reviewer, clerk = app.key("reviewer", UNIT), app.key("clerk", UNIT)
    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)
    hook = app.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=app.as_(clerk))
    assert hook.status_code == 201, hook.text
    # A's second page is the very page B was read from (the same scan sent twice): one file, two records.
    own, shared = _page("71"), _page("35")
    a = _store(UNIT, "Trần Văn Xóa", {1: own, 2: shared}, box_pages={"scores.ct1": 1, "scores.ct2": 2})
    b = _store(UNIT, "Lê Thị Giữ", {1: shared})
    assert a.pages[2] == b.pages[1]
    _confirm(app, reviewer, a.id, "scores.ct1", 7)
    _confirm(app, reviewer, a.id, "scores.ct2", 3)
    _confirm(app, reviewer, b.id, "scores.ct2", 3)  # the same box of the same page: the same crop file
    crops_a, crops_b = _crops(a.id), _crops(b.id)
    assert crops_a["scores.ct2"] == crops_b["scores.ct2"] and crops_a["scores.ct1"] not in crops_b.values()
    assert all(_exists(sha) for sha in [*a.pages.values(), *crops_a.values()])
    feed_before = app.client.get("/v1/records", params={"after": 0}, headers=app.as_(reviewer)).json()["next_cursor"]
    assert len(load_samples(UNIT)) == 3  # what `formsvc digits retrain` learns from

    version = _version(app, reviewer, a.id)
    stale = app.client.delete(f"/v1/records/{a.id}", headers={**app.as_(reviewer), "If-Match": f'"{version - 1}"'})
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict", stale.text
    bad = app.client.delete(f"/v1/records/{a.id}", headers={**app.as_(reviewer), "If-Match": "abc"})
    assert bad.status_code == 422 and bad.json()["code"] == "bad_if_match"
    assert _version(app, reviewer, a.id) == version and all(_exists(s) for s in crops_a.values())

    gone = app.client.delete(f"/v1/records/{a.id}", headers={**app.as_(reviewer), "If-Match": f'"{version}"'})
    assert gone.status_code == 204 and gone.content == b""

    # Files: A's own page and crop are gone; the page and the crop B still uses stay, and B still shows them.
    assert not _exists(a.pages[1]) and not _exists(crops_a["scores.ct1"])
    assert _exists(shared_sha := a.pages[2]) and _exists(crops_a["scores.ct2"])
    assert len(load_samples(UNIT)) == 1  # B's answer only
    crop_b = app.client.get(f"/v1/records/{b.id}/crops/scores.ct1", headers=app.as_(reviewer))
    assert crop_b.status_code == 200 and crop_b.headers["content-type"] == "image/png"
    assert b.pages[1] == shared_sha

    with session_scope() as s:
        row = s.get(RecordRow, a.id)
        assert row is not None
        assert (row.status, row.subject_name, row.pages, row.extra_reasons) == ("deleted", "", {}, [])
        assert row.data == {"deleted": True, "form": "cdht-self-assessment", "criteria_set": SET_ID, "year": 2024}
        assert row.source_key == f"deleted:{a.id}" and row.version == version + 1 and row.unit == UNIT
        assert s.scalars(select(ReviewSample).where(ReviewSample.record_id == a.id)).all() == []
        audit = s.scalars(select(Correction).where(Correction.record_id == a.id)).all()
        assert [(c.action, c.old_value, c.new_value) for c in audit] == [("delete", None, None)]
        assert len(s.scalars(select(ReviewSample).where(ReviewSample.record_id == b.id)).all()) == 1
        changes = s.scalars(select(Change).where(Change.record_id == a.id).order_by(Change.seq)).all()
        assert [c.kind for c in changes] == ["record.created", "record.corrected", "record.corrected",
                                             "record.deleted"]
        # Earlier events no longer carry the person either (their pending deliveries send the tombstone).
        assert "Trần Văn Xóa" not in json.dumps([c.payload for c in changes], ensure_ascii=False)
        deleted_event = changes[-1]
        outbox = s.scalars(select(Delivery).where(Delivery.change_seq == deleted_event.seq)).all()
        assert [(d.webhook_id, d.record_id) for d in outbox] == [(hook.json()["id"], a.id)]

    # The pull feed shows the tombstone exactly once, to an integration key too.
    integration = app.key("integration", UNIT)
    for key in (reviewer, integration):
        for after in (0, feed_before):
            feed = app.client.get("/v1/records", params={"after": after, "limit": 500}, headers=app.as_(key))
            assert feed.status_code == 200, feed.text
            mine = [i for i in feed.json()["items"] if i["id"] == a.id]
            assert len(mine) == 1 and mine[0]["status"] == "deleted" and mine[0]["version"] == version + 1
            assert mine[0]["record"] == {"deleted": True, "form": "cdht-self-assessment", "criteria_set": SET_ID,
                                         "year": 2024, "id": a.id}
            assert "Trần Văn Xóa" not in feed.text
    # A feed filtered by status or approval still hears of it (whoever got the record must learn it went).
    filtered = app.client.get("/v1/records", params={"after": feed_before, "status": "valid", "approved": True},
                              headers=app.as_(integration)).json()["items"]
    assert [i["id"] for i in filtered] == [a.id]

    # The webhook gets one record.deleted, signed like any event; nothing sent names the person.
    sent: list[dict[str, Any]] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(receiver)) as client:
        while run_once("t-delete", client):
            pass
    about_a = [e for e in sent if e["record"]["id"] == a.id]
    assert [e["type"] for e in about_a].count("record.deleted") == 1
    assert about_a[-1]["type"] == "record.deleted" and about_a[-1]["record"]["status"] == "deleted"
    assert about_a[-1]["id"] == deleted_event.event_id
    assert "Trần Văn Xóa" not in json.dumps(sent, ensure_ascii=False)

    # Everywhere a person looks, the record is gone.
    for method, path, body in [("GET", "", None), ("PATCH", "", {"fields": {"scores.ct1": 5}}),
                               ("POST", "/approve", {}), ("POST", "/revalidate", None), ("GET", "/history", None),
                               ("GET", "/crops/scores.ct1", None), ("DELETE", "", None),
                               ("POST", "/confirm", {"field": "scores.ct1", "value": 5})]:
        r = app.client.request(method, f"/v1/records/{a.id}{path}", headers=app.as_(reviewer), json=body)
        assert r.status_code == 404 and r.json()["code"] == "record_not_found", (method, path, r.text)


def test_a_rollback_keeps_every_file_and_the_record(app: App) -> None:
    reviewer = app.key("reviewer", UNIT)
    r = _store(UNIT, "Phạm Quay Lui", {1: _page("92")})
    _confirm(app, reviewer, r.id, "scores.ct1", 9)
    files = [*r.pages.values(), *_crops(r.id).values()]
    with pytest.raises(RuntimeError), session_scope() as s:
        delete_record(s, ADMIN, r.id)
        raise RuntimeError("the request failed after the deletion")
    assert all(_exists(f) for f in files)
    assert _version(app, reviewer, r.id) == 2 and len(_crops(r.id)) == 1


def test_a_file_is_removed_only_when_nothing_uses_it_and_nobody_stored_it_again(app: App) -> None:
    store = get_file_store()
    upload, result, page = b"upload bytes", b"result bytes", _page("44")
    shas = {name: store.put_bytes(data) for name, data in (("upload", upload), ("result", result), ("page", page))}
    with session_scope() as s:
        job = Job(id=uuid.uuid4().hex, kind="extract", unit=UNIT, status="done", result_sha256=shas["result"],
                  created_at=utcnow())
        s.add(job)
        s.add(StoredFile(sha256=shas["upload"], size=len(upload), media_type="image/png"))
        s.add(StoredFile(sha256=shas["page"], size=len(page), media_type="image/png"))
        s.flush()
        s.add(JobFile(job_id=job.id, sha256=shas["upload"], filename="a.png", position=0))
    later = time.time() + 5  # as if the deletion began after every put above
    # An upload and a job's result are never released; an unused page is.
    assert file_refs.release(list(shas.values()), since=later) == [shas["page"]]
    assert _exists(shas["upload"]) and _exists(shas["result"]) and not _exists(shas["page"])
    with session_scope() as s:
        assert s.get(StoredFile, shas["page"]) is None and s.get(StoredFile, shas["upload"]) is not None

    # Stored again after the deletion began (a job about to refer to it): it stays.
    began = time.time()
    time.sleep(0.02)
    again = store.put_bytes(page)  # recreated, mtime now
    assert again == shas["page"] and file_refs.release([again], since=began) == [] and _exists(again)
    time.sleep(0.02)
    began = time.time()
    time.sleep(0.02)
    assert store.put_bytes(page) == again  # already there: storing it again refreshes its mtime
    assert not store.delete_unless_touched(again, since=began) and _exists(again)
    assert store.delete_unless_touched(again, since=time.time() + 5) and not _exists(again)
    assert not list((store.root / "tmp").glob("*.deleting"))


# -- gone from what people see -------------------------------------------------------------------------------

def test_a_deleted_record_leaves_lists_exports_reports_the_queue_and_cross_checks(app: App) -> None:
    unit, year = "Trường TH Báo Cáo Xóa", 2023
    reviewer, admin = app.key("reviewer", unit), app.key("admin")
    gone = _store(unit, "Đỗ Sẽ Xóa", {1: _page("58")}, year=year)
    kept = _store(unit, "Vũ Ở Lại", {1: _page("61")}, year=year)
    h = app.as_(reviewer)

    def seen() -> dict[str, Any]:
        listed = app.client.get("/v1/records", params={"unit": unit, "limit": 500}, headers=h).json()
        csv = app.client.get("/v1/exports/records.csv", params={"year": year}, headers=h)
        report = app.client.get("/v1/reports/unit", params={"year": year}, headers=h).json()
        queue = app.client.get("/v1/review/queue", params={"limit": 500}, headers=h).json()["items"]
        with session_scope() as s:
            sheets = {r.id for r in stored_sheets(s, unit, {year})}
            dossier = {r.id for r in dossier_rows(s, ADMIN, unit, year)}
            shares = unit_cdht_shares(s, ADMIN, unit=unit, year=year)["cdht_members_share"].denominator
        return {"list": {i["id"] for i in listed["items"]}, "total": listed["total"], "csv": csv.text,
                "assessed": report["cdht"]["assessed"], "queue": {i["record_id"] for i in queue},
                "sheets": sheets, "dossier": dossier, "shares": shares}

    before = seen()
    assert before["list"] == {gone.id, kept.id} == before["sheets"] == before["dossier"] and before["total"] == 2
    assert "Đỗ Sẽ Xóa" in before["csv"] and before["assessed"] == 2 and before["shares"] == 2
    assert {gone.id, kept.id} <= before["queue"]

    # An admin (no unit) deletes with ?version= instead of If-Match.
    version = _version(app, admin, gone.id)
    assert app.client.delete(f"/v1/records/{gone.id}", params={"version": version},
                             headers=app.as_(admin)).status_code == 204
    after = seen()
    assert after["list"] == {kept.id} == after["sheets"] == after["dossier"] and after["total"] == 1
    assert "Đỗ Sẽ Xóa" not in after["csv"] and "Vũ Ở Lại" in after["csv"]
    assert after["assessed"] == 1 and after["shares"] == 1
    assert gone.id not in after["queue"] and kept.id in after["queue"]
    # Filters cannot bring it back.
    for params in ({"status": "needs_review"}, {"q": ""}, {"approved": False}, {"year": year}):
        items = app.client.get("/v1/records", params=params, headers=h).json()["items"]
        assert gone.id not in {i["id"] for i in items}


def test_keys_of_other_roles_and_units_cannot_delete(app: App) -> None:
    r = _store(UNIT, "Hoàng Không Xóa Được", {1: _page("27")})
    other = app.client.delete(f"/v1/records/{r.id}", headers=app.as_(app.key("reviewer", OTHER)))
    assert other.status_code == 404 and other.json()["code"] == "record_not_found"
    for role in ("clerk", "integration"):
        refused = app.client.delete(f"/v1/records/{r.id}", headers=app.as_(app.key(role, UNIT)))
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden", (role, refused.text)
    assert _version(app, app.key("reviewer", UNIT), r.id) == 1 and all(_exists(s) for s in r.pages.values())


def test_the_same_source_document_is_stored_again_after_its_record_was_deleted(app: App) -> None:
    """A re-run of the job stores only what is missing: the deleted document is missing again."""
    with session_scope() as s:
        job = Job(id=uuid.uuid4().hex, kind="extract", unit=UNIT, status="done", created_at=utcnow())
        s.add(job)
        job_id = job.id
    page = _page("86")
    first = _store(UNIT, "Ngô Lưu Lại", {1: page}, job_id=job_id, doc_key="phieu.tif#1")
    again = _record("Ngô Lưu Lại")
    again = again.model_copy(update={"subject": again.subject.model_copy(update={"unit": UNIT})})
    assert _ingest(again, {1: page}, job_id=job_id, doc_key="phieu.tif#1")[0] == 0  # before: nothing new
    with session_scope() as s:
        delete_record(s, ADMIN, first.id)
    assert not _exists(first.pages[1])
    second = _store(UNIT, "Ngô Lưu Lại", {1: page}, job_id=job_id, doc_key="phieu.tif#1")
    assert second.id != first.id and second.pages == first.pages and _exists(second.pages[1])
    reviewer = app.key("reviewer", UNIT)
    assert app.client.get(f"/v1/records/{second.id}/crops/scores.ct1", headers=app.as_(reviewer)).status_code == 200
    job_view = app.client.get(f"/v1/jobs/{job_id}", headers=app.as_(reviewer)).json()
    assert [r["id"] for r in job_view["records"]] == [second.id]


# -- the web UI ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FORMSVC_DATABASE_URL", raising=False)
        with RedisServer() as redis, running_stack(tmp_path_factory.mktemp("del-stack"), redis=redis,
                                                   workers=0) as s:
            yield s


def test_the_record_page_deletes_after_a_confirmation(browser: Browser, stack: Stack,  # noqa: F811
                                                      tmp_path: Path) -> None:
    with _settings_of(stack):
        r = _store(UNIT, "Đinh Thử Nút", {1: _page("19")})
    with session(browser, stack, stack.new_key("clerk", UNIT)) as s:
        s.page.goto(f"/records/{r.id}")
        expect(s.page.locator("h1")).to_have_text("Đinh Thử Nút")
        expect(s.page.locator("#delete-btn")).to_have_count(0)  # a clerk may not delete
    with session(browser, stack, stack.new_key("reviewer", UNIT)) as s:
        page = s.page
        page.goto(f"/records/{r.id}")
        confirm = page.locator("#delete-confirm")
        expect(confirm).to_be_hidden()
        page.click("#delete-btn")
        expect(confirm).to_be_visible()
        expect(confirm).to_contain_text("Xóa hẳn bản ghi của Đinh Thử Nút?")
        expect(page.locator("#delete-cancel")).to_be_focused()
        page.keyboard.press("Enter")  # "Không xóa" has the focus: nothing happens
        expect(confirm).to_be_hidden()
        page.click("#delete-btn")
        page.screenshot(path=str(tmp_path / "delete-confirm.png"), full_page=True)
        page.click("#delete-yes")
        page.wait_for_url("**/records?msg=deleted")
        expect(page.locator("#flash")).to_contain_text("Đã xóa bản ghi")
        expect(page.locator(f"a[href='/records/{r.id}']")).to_have_count(0)
        gone = page.goto(f"/records/{r.id}")
        assert gone is not None and gone.status == 404
        assert not s.problems, s.problems
    with _settings_of(stack):
        assert not _exists(r.pages[1])
