"""The review queue ("Ô cần kiểm tra"): flagged score boxes across records, one after another.

In-process API tests on sheets with real handwriting (rendered forms, held-out MNIST digits written into the
boxes, each box read by the recogniser), then the page in Debian's Chromium driven by Playwright with the
keyboard only, on a desktop and a phone screen.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import delete, select

from fixtures.review_seed import SeededBox, seed_flagged
from formsvc.db import dispose_engines, session_scope
from formsvc.db.tables import RecordRow, ReviewSample
from formsvc.settings import get_settings
from formsvc.storage import get_file_store
from tests.servers import RedisServer
from tests.service_app import App, service_app
from tests.stack import Stack, running_stack
from tests.test_web_ui import PHONE, browser, session, shots  # noqa: F401  (browser, shots: fixtures)

pytestmark = pytest.mark.timeout(900)

UNIT = "Trường THCS Kiểm Tra"
OTHER = "Trường TH Nơi Khác"


def _vn(value: float) -> str:
    return f"{value:g}".replace(".", ",")


# -- extraction keeps the candidates ---------------------------------------------------------------------------

def test_a_box_read_in_doubt_keeps_its_candidates_in_the_records_provenance() -> None:
    """What the queue offers as one-key choices comes from extraction: the reader's allowed values, best first,
    for boxes under the review threshold only (a confident box has nothing to choose)."""
    from formsvc.criteria import default_registry
    from formsvc.extract.parse import build_record
    from tests.test_score_boxes import _form, _hand, _page

    form = _form(_hand("total_declared", "73", 0.9, (73.0, 0.9)))
    # Read 1,5 at 0.75: nearly trusted, so the sheet cannot say it was the misread box (at 0.5 it would).
    form[1] = _hand("scores.ct2", "1,5", 0.75, (1.5, 0.5), (7.5, 0.3), (4.5, 0.1))
    record, _ = build_record([_page(form)], missing_pages=[], registry=default_registry())
    prov = {f.name: f for f in record.fields}
    assert prov["scores.ct2"].confidence < get_settings().review_confidence
    assert prov["scores.ct2"].candidates is not None and prov["scores.ct2"].candidates[0] == record.scores["ct2"]
    assert set(prov["scores.ct2"].candidates) >= {1.5, 7.5}
    # The sheet needed a change (1,5 -> 7,5), so its other boxes are flagged too, each offering its own reading.
    assert prov["scores.ct3"].confidence < get_settings().review_confidence
    assert prov["scores.ct3"].candidates == [record.scores["ct3"]]
    # A sheet whose readings add up as read: a confident box has nothing to choose.
    record, _ = build_record([_page(_form(_hand("total_declared", "67", 0.9, (67.0, 0.9))))], missing_pages=[],
                             registry=default_registry())
    prov = {f.name: f for f in record.fields}
    assert prov["scores.ct3"].confidence >= get_settings().review_confidence
    assert prov["scores.ct3"].candidates is None


# -- the API -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[tuple[App, list[SeededBox]]]:
    with service_app(tmp_path_factory.mktemp("rq"), redis_server.url, database_url) as app:
        yield app, seed_flagged(UNIT, records=2, per_record=3, seed=810)


def test_the_queue_lists_a_units_flagged_boxes_with_candidates_and_sums(api: tuple[App, list[SeededBox]]) -> None:
    app, boxes = api
    reviewer = app.key("reviewer", UNIT)
    r = app.client.get("/v1/review/queue", headers=app.as_(reviewer))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {(i["record_id"], i["field"]) for i in items} == {(b.record_id, b.field) for b in boxes}
    assert r.json()["total"] == len(boxes) == 6
    first = items[0]
    seeded = next(b for b in boxes if (b.record_id, b.field) == (first["record_id"], first["field"]))
    assert first["choices"] == list(seeded.choices) and first["choices"][0] == first["value"]
    assert first["confidence"] < get_settings().review_confidence
    assert re.fullmatch(r"Chỉ tiêu \d+ – điểm", first["label"]), first["label"]
    crop = app.client.get(first["crop"], headers=app.as_(reviewer))
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/png"
    with session_scope() as s:
        row = s.get(RecordRow, first["record_id"])
        assert row is not None
        assert first["scores_sum"] == pytest.approx(sum(v for v in row.data["scores"].values() if v is not None))
    # Another unit's reviewer sees none of it; a clerk may not review.
    assert app.client.get("/v1/review/queue", headers=app.as_(app.key("reviewer", OTHER))).json()["items"] == []
    clerk = app.client.get("/v1/review/queue", headers=app.as_(app.key("clerk", UNIT)))
    assert clerk.status_code == 403 and clerk.json()["code"] == "forbidden"


def test_confirming_a_box_corrects_it_clears_its_finding_and_keeps_the_crop(api: tuple[App, list[SeededBox]]) -> None:
    app, boxes = api
    reviewer = app.key("reviewer", UNIT)
    box = boxes[0]
    before = app.client.get(f"/v1/records/{box.record_id}", headers=app.as_(reviewer)).json()
    other_value = next(v for v in (0.5, 1.0, 1.5) if v != box.truth)
    url = f"/v1/records/{box.record_id}/confirm"
    stale = app.client.post(url, json={"field": box.field, "value": box.truth, "version": before["version"] - 1},
                            headers=app.as_(reviewer))
    assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
    not_a_box = app.client.post(url, json={"field": "subject.full_name", "value": 1, "version": before["version"]},
                                headers=app.as_(reviewer))
    assert not_a_box.status_code == 422 and not_a_box.json()["code"] == "field_not_a_box"

    r = app.client.post(url, json={"field": box.field, "value": other_value, "version": before["version"]},
                        headers=app.as_(reviewer))
    assert r.status_code == 200, r.text
    after = r.json()
    key = box.field.split(".", 1)[1]
    assert after["version"] == before["version"] + 1 and after["record"]["scores"][key] == other_value
    reasons = after["record"]["result"]["reasons"]
    assert not [x for x in reasons if x.get("field") == box.field and x["severity"] == "review"]
    queue = app.client.get("/v1/review/queue", headers=app.as_(reviewer)).json()["items"]
    assert (box.record_id, box.field) not in {(i["record_id"], i["field"]) for i in queue}
    history = app.client.get(f"/v1/records/{box.record_id}/history", headers=app.as_(reviewer)).json()
    assert [(h["field"], h["old"], h["new"]) for h in history] == [(box.field, box.read, other_value)]

    with session_scope() as s:
        sample = s.scalars(select(ReviewSample).where(ReviewSample.record_id == box.record_id)).one()
        assert (sample.unit, sample.field, sample.value, sample.read_value) == (UNIT, box.field, other_value, box.read)
        assert sample.crop_sha256 is not None
        crop = cv2.imdecode(np.frombuffer(get_file_store().read_bytes(sample.crop_sha256), np.uint8),
                            cv2.IMREAD_GRAYSCALE)
        assert crop is not None
        field = next(f for f in before["record"]["fields"] if f["name"] == box.field)
        x0, y0, x1, y1 = (round(v) for v in field["bbox"])
        assert crop.shape == (y1 - y0, x1 - x0)  # the box as the recogniser saw it, not the padded view
        assert (crop < 128).mean() > 0.01  # with the handwriting in it
        # Deleted with its record.
        s.execute(delete(RecordRow).where(RecordRow.id == box.record_id))
    with session_scope() as s:
        assert s.scalars(select(ReviewSample).where(ReviewSample.record_id == box.record_id)).all() == []


# -- the page in Chromium ------------------------------------------------------------------------------------

@contextmanager
def _settings_of(stack: Stack) -> Iterator[None]:
    """This process pointed at the running stack's database and file store (to seed records into them)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("FORMSVC_DATA_DIR", "FORMSVC_DATABASE_URL"):  # the stack may run on PostgreSQL
            if name in stack.env:
                mp.setenv(name, stack.env[name])
            else:
                mp.delenv(name, raising=False)
        get_settings.cache_clear()
        dispose_engines()
        try:
            yield
        finally:
            dispose_engines()
            get_settings.cache_clear()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FORMSVC_DATABASE_URL", raising=False)  # not the in-process tests' database: its own SQLite
        with RedisServer() as redis, running_stack(tmp_path_factory.mktemp("rq-stack"), redis=redis,
                                                   workers=0) as s:
            yield s


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> list[SeededBox]:
    with _settings_of(stack):
        return seed_flagged(UNIT, records=3, per_record=3, seed=820)


def test_the_admin_page_retrains_with_a_button_and_says_why_not(browser: Browser, stack: Stack,  # noqa: F811
                                                                shots: Path) -> None:  # noqa: F811
    """Before any box is confirmed there is nothing to learn from: the run (a job a worker takes) ends at once
    and says so."""
    stack.start_worker(0)  # the retrain is a worker's job; this module's other tests need none
    try:
        with session(browser, stack, stack.admin_key) as s:
            page = s.page
            page.goto("/")
            page.click("nav a[href='/admin/digits']")
            expect(page.locator("#digits-samples")).to_have_text("0")
            expect(page.locator("#digits-model")).to_have_text("mô hình gốc")
            page.click("#digits-retrain")
            expect(page.locator("#digits-result")).to_contain_text("Chưa đủ ô đã xác nhận để học", timeout=90_000)
            expect(page.locator("#digits-retrain")).to_be_enabled()
            s.shot(shots, "22-admin-digits")
    finally:
        stack.kill("worker0")
    assert "retrain" in stack.log("worker0")  # the worker ran it, not the API process
    with session(browser, stack, stack.new_key("reviewer", UNIT)) as s:
        s.page.goto("/admin/digits")
        expect(s.page.locator("h1")).to_have_text("Không có quyền")


def _box_shown(page: Any) -> tuple[str, str]:
    box = page.locator("#rq-box")
    return str(box.get_attribute("data-record")), str(box.get_attribute("data-field"))


def test_a_reviewer_clears_the_queue_with_the_keyboard_only(browser: Browser, stack: Stack,  # noqa: F811
                                                            seeded: list[SeededBox], shots: Path) -> None:  # noqa: F811
    reviewer = stack.new_key("reviewer", UNIT)
    by_box = {(b.record_id, b.field): b for b in seeded}
    answers: dict[tuple[str, str], float] = {}
    with session(browser, stack, reviewer) as s:
        page = s.page
        page.goto("/")
        expect(page.locator("nav a[href='/review']")).to_have_text("Ô cần kiểm tra")
        page.goto("/review")
        expect(page.locator("#rq")).to_have_attribute("data-state", "box")
        expect(page.locator("#rq-input")).to_be_focused()
        for n in range(len(seeded)):
            shown = _box_shown(page)
            box = by_box[shown]
            expect(page.locator("#rq-crop")).to_have_js_property("complete", True)
            expect(page.locator("#rq-crop")).not_to_have_class(re.compile("is-loading"))
            assert page.locator("#rq-crop").evaluate("img => img.naturalWidth") > 50
            expect(page.locator("#rq-input")).to_have_value(_vn(box.choices[0]))
            chips = page.locator("#rq-choices button")
            expect(chips).to_have_count(len(box.choices))
            if n == 0:  # accept what was read: one key
                page.keyboard.press("Enter")
                answers[shown] = box.choices[0]
            elif n == 1 and len(box.choices) > 1:  # another candidate: one letter
                page.keyboard.press("b")
                answers[shown] = box.choices[1]
            elif n == 2:  # type a value: the live sum follows the typing, Enter sends it
                before = page.locator("#rq-sum").inner_text()
                value = next(v for v in (6.5, 7.5) if v != box.choices[0])
                page.keyboard.type(_vn(value))
                expected = float(before.replace(",", ".")) - box.choices[0] + value
                expect(page.locator("#rq-sum")).to_have_text(_vn(round(expected, 2)))
                page.keyboard.press("Enter")
                answers[shown] = value
            elif n == 3:  # out of range: refused on the page, nothing sent
                page.keyboard.type("12")
                page.keyboard.press("Enter")
                expect(page.locator("#rq-error")).to_contain_text("Điểm phải từ 0 đến")
                assert _box_shown(page) == shown
                page.keyboard.type(_vn(box.truth))
                page.keyboard.press("Enter")
                answers[shown] = box.truth
            else:
                page.keyboard.press("Enter")
                answers[shown] = box.choices[0]
            if n == 3:
                s.shot(shots, "20-review-queue")
            if n < len(seeded) - 1:
                page.wait_for_function("([r, f]) => { const b = document.querySelector('#rq-box');"
                                       " return b.dataset.record !== r || b.dataset.field !== f; }",
                                       arg=list(shown))
        expect(page.locator("#rq")).to_have_attribute("data-state", "done", timeout=30_000)
        expect(page.locator("#rq-done")).to_contain_text("Không còn ô nào cần kiểm tra")
    assert len(answers) == len(seeded)
    with stack.client(reviewer) as c:
        for (record_id, field), value in answers.items():
            record = c.get(f"/v1/records/{record_id}").json()
            assert record["record"]["scores"][field.split(".", 1)[1]] == value, (record_id, field)
            prov = next(f for f in record["record"]["fields"] if f["name"] == field)
            assert prov["source"] == "manual"
        assert c.get("/v1/review/queue").json()["items"] == []
    with _settings_of(stack), session_scope() as db:
        kept = {(x.record_id, x.field): x.value for x in db.scalars(select(ReviewSample))}
    assert kept == answers


def test_the_queue_fits_a_phone_and_is_for_reviewers_only(browser: Browser, stack: Stack,  # noqa: F811
                                                          shots: Path) -> None:  # noqa: F811
    with _settings_of(stack):
        seed_flagged(OTHER, records=1, per_record=2, seed=830)
    with session(browser, stack, stack.new_key("reviewer", OTHER), viewport=PHONE) as s:
        s.page.goto("/review")
        expect(s.page.locator("#rq")).to_have_attribute("data-state", "box")
        expect(s.page.locator("#rq-choices button").first).to_be_visible()
        expect(s.page.locator("#rq-crop")).not_to_have_class(re.compile("is-loading"))
        width, height = s.page.locator("#rq-crop").evaluate(
            "img => [img.getBoundingClientRect().width, img.getBoundingClientRect().height]")
        assert width > PHONE["width"] * 0.7 and height > 96  # the crop large
        s.no_horizontal_overflow(PHONE["width"])
        s.shot(shots, "21-review-queue-phone")
        s.page.locator("#rq-choices button").first.click()  # a tap works as well as the key
        expect(s.page.locator("#rq-progress")).to_contain_text("Đã xác nhận 1 ô")
    with session(browser, stack, stack.new_key("clerk", OTHER)) as s:
        s.page.goto("/review")
        expect(s.page.locator("h1")).to_have_text("Không có quyền")
        expect(s.page.locator("nav a[href='/review']")).to_have_count(0)
