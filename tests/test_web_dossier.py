"""The records page's "Lập hồ sơ cuối năm" button in Chromium against the whole service (API, rq worker, Redis,
SQLite): a unit with a person stored twice gets the API's Vietnamese message on the page; a unit whose records
are clean gets a job run by the worker, followed on the page, and the ZIP downloaded with the page's cookie."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from fixtures.dossier_unit import store_unit_year, unit_year
from tests.stack import Stack
from tests.test_faults_helpers import stack_database
from tests.test_web_ui import JOB_TIMEOUT_MS, browser, session, shots, stack  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.timeout(600), pytest.mark.browser, pytest.mark.service]

UNIT = "Trường THCS Hòa Bình"
CLEAN_UNIT = "Trường MN Tam Hưng A"


def test_records_page_builds_the_year_end_dossier(browser: Browser, stack: Stack,  # noqa: F811
                                                  shots: Path) -> None:  # noqa: F811
    with stack_database(stack):
        dirty = unit_year(UNIT, 2024, n=10, seed=3)  # has a person stored twice
        dup_ids = store_unit_year(dirty)[dirty.duplicate_id]
        clean = unit_year(CLEAN_UNIT, 2024, n=10, seed=4)
        clean.specs = [s for s in clean.specs if s.subject_id != clean.duplicate_id]
        store_unit_year(clean)
    with session(browser, stack, stack.new_key("clerk", UNIT)) as s:
        page = s.page
        page.goto("/records?year=2024")
        expect(page.locator("#dossier-year")).to_have_value("2024")
        expect(page.locator("#dossier-unit")).to_have_count(0)  # a clerk's key already names the unit
        page.click("#dossier-submit")
        error = page.locator("#dossier-job [data-role=error]")
        expect(error).to_be_visible()
        expect(error).to_contain_text("có 2 bản ghi năm 2024")
        expect(page.locator("#dossier-job [data-role=result]")).to_be_hidden()
        s.shot(shots, "09-records-dossier-duplicate")
        # The clerk leaves the extra (not approved) record out, as the message says: the dossier is built and the
        # left-out record is on its cover sheet.
        page.fill("#dossier-exclude", dup_ids[1])
        page.click("#dossier-submit")
        expect(page.locator("#dossier-job")).to_have_attribute("data-status", "done", timeout=JOB_TIMEOUT_MS)
        expect(error).to_be_hidden()
        with page.expect_download() as first:
            page.locator("#dossier-job [data-role=result-link]").click()
        with zipfile.ZipFile(io.BytesIO(Path(first.value.path()).read_bytes())) as zf:
            assert dup_ids[1] in zf.read("dossier.json").decode()

    with session(browser, stack, stack.new_key("reviewer", CLEAN_UNIT)) as s:
        page = s.page
        page.goto("/records")
        page.fill("#dossier-year", "2024")
        page.click("#dossier-submit")
        panel = page.locator("#dossier-job")
        expect(panel).to_have_attribute("data-status", "done", timeout=JOB_TIMEOUT_MS)
        expect(panel.locator("[data-role=pages]")).to_have_text("6/6 văn bản · 100%")
        link = panel.locator("[data-role=result-link]")
        expect(link).to_be_visible()
        s.shot(shots, "09b-records-dossier")
        href = link.get_attribute("href")
        assert href and href.startswith("/v1/jobs/")
        with page.expect_download() as dl:
            link.click()
        assert dl.value.suggested_filename.startswith("ho-so-2024-")
        with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as zf:
            names = zf.namelist()
            assert "02-quyet-dinh-cong-nhan.pdf" in names and "00-bia-ho-so.docx" in names
            manifest = zf.read("dossier.json").decode()
        # The jobs page lists it under its own kind, with the ZIP link.
        page.goto("/jobs?kind=dossier")
        expect(page.locator("td[data-label='Kết quả'] a")).to_have_text(["Tải hồ sơ (ZIP)"])
        expect(page.locator("td[data-label='Tiến độ']")).to_have_text(["6/6 văn bản"])
        s.shot(shots, "09c-jobs-dossier")
        pending = [sp.full_name for sp in clean.by_kind()["pending"]]
        assert pending and all(name in manifest for name in pending)
