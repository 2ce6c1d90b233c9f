"""The web UI end to end in a real browser (Debian's headless Chromium driven by Playwright) against the whole
service: API under uvicorn, an rq worker, Redis and SQLite, started the way production starts them.

Real scans of formsvc's own forms are uploaded through the page (file input and drag-and-drop), processed by
the worker while the page polls, reviewed, corrected and approved; each screen is saved as a screenshot into
$FORMSVC_SCREENSHOT_DIR (or the test's tmp dir) so people can look at them.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, expect, sync_playwright

from fixtures.scans import degrade, random_record, rasterise, save_scan
from tests.servers import RedisServer
from tests.stack import Stack, running_stack

pytestmark = [pytest.mark.timeout(600), pytest.mark.browser, pytest.mark.service]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
UNIT = "Trường THCS Hòa Bình"
OTHER_UNIT = "Trường TH Tân Lập"
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}
MIN_SHOT_BYTES = 10 * 1024
JOB_TIMEOUT_MS = 180_000


# -- fixtures ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with RedisServer() as redis, running_stack(tmp_path_factory.mktemp("web-stack"), redis=redis) as s:
        yield s


@pytest.fixture(scope="module")
def keys(stack: Stack) -> dict[str, str]:
    return {"clerk": stack.new_key("clerk", UNIT), "reviewer": stack.new_key("reviewer", UNIT),
            "other": stack.new_key("clerk", OTHER_UNIT)}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("FORMSVC_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two people's self-assessments, rendered by formsvc, printed and scanned slightly askew (2 pages each),
    then a third person's first page scanned twice and the second page lost (a page error and a gap)."""
    from formsvc.render import render_document
    from formsvc.render.converter import get_converter

    folder = tmp_path_factory.mktemp("scans")
    out = []
    try:
        for i, seed in enumerate((311, 312)):
            pdf = render_document("cdht-self-assessment", random_record(seed))
            out.append(save_scan(degrade(rasterise(pdf), "rotate", seed=1 + i), folder / f"phieu-{seed}.tif"))
        first_page = rasterise(render_document("cdht-self-assessment", random_record(313)))[0]
        out.append(save_scan([first_page, first_page], folder / "trang-trung.tif"))
    finally:
        get_converter().close()  # LibreOffice is not needed again in this process
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (Debian package 'chromium')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Session:
    """One browser context (its own cookies) with the page's script errors and CSP violations collected."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        # Failed resource loads are expected where we test errors; a CSP violation or a JS error never is.
        if msg.type == "error" and ("Content Security Policy" in msg.text or "Uncaught" in msg.text):
            self.problems.append(msg.text)

    def login(self, key: str) -> None:
        self.page.goto("/login")
        self.page.fill("#key", key)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_url(f"{self.base}/")

    def shot(self, folder: Path, name: str) -> Path:
        path = folder / f"{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")  # sticky panels are drawn where the viewport last was
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > MIN_SHOT_BYTES, f"{path} is suspiciously small"
        return path

    def no_horizontal_overflow(self, width: int) -> None:
        scroll = self.page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, f"{self.page.url}: page is {scroll}px wide on a {width}px screen"


@contextmanager
def session(browser: Browser, stack: Stack, key: str | None = None,
            viewport: ViewportSize | None = None) -> Iterator[Session]:
    context = browser.new_context(base_url=stack.url, viewport=viewport or DESKTOP, locale="vi-VN",
                                  accept_downloads=True)
    context.set_default_timeout(30_000)
    try:
        s = Session(context.new_page(), stack.url)
        if key:
            s.login(key)
        yield s
        assert s.problems == [], s.problems
    finally:
        context.close()


def _api_record(stack: Stack, key: str, record_id: str) -> dict[str, Any]:
    with stack.client(key) as c:
        r = c.get(f"/v1/records/{record_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def _vn(value: float) -> str:
    """How the UI writes a number: decimal comma, no trailing zeros."""
    return f"{round(value, 2):.2f}".rstrip("0").rstrip(".").replace(".", ",")


@pytest.fixture(scope="module")
def uploaded(browser: Browser, stack: Stack, keys: dict[str, str], scans: list[Path],
             shots: Path) -> dict[str, Any]:
    """Upload both scans through the upload page (one chosen with the file input, one dropped on the zone)
    and follow the job to the end; returns what the page showed."""
    with session(browser, stack, keys["clerk"]) as s:
        page = s.page
        polls: list[str] = []
        page.on("request", lambda r: polls.append(r.url) if re.search(r"/v1/jobs/[0-9a-f]+$", r.url) else None)
        page.goto("/upload")
        page.set_input_files("#upload-input", str(scans[0]))
        page.evaluate(
            """([name, b64]) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const data = new DataTransfer();
                data.items.add(new File([bytes], name, {type: "image/tiff"}));
                const zone = document.querySelector("#dropzone");
                for (const type of ["dragenter", "dragover", "drop"]) {
                    zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
                }
            }""",
            [scans[1].name, base64.b64encode(scans[1].read_bytes()).decode()])
        expect(page.locator("#upload-list li")).to_have_count(2)
        expect(page.locator("#upload-summary")).to_contain_text("2 tệp")
        page.click("#upload-submit")
        panel = page.locator("#upload-job")
        expect(panel).to_be_visible()
        expect(panel).to_have_attribute("data-status", re.compile(r"queued|running|done"))
        s.shot(shots, "04-upload-in-progress")
        expect(panel).to_have_attribute("data-status", "done", timeout=JOB_TIMEOUT_MS)
        expect(panel.locator("[data-role=status]")).to_have_text("Xong")
        expect(panel.locator("[data-role=pages]")).to_have_text("4/4 trang · 100%")
        assert panel.locator("progress").evaluate("el => el.value") == 100
        records = page.locator("#upload-records li")
        expect(records).to_have_count(2)
        s.shot(shots, "05-upload-done")
        ids = [records.nth(i).get_attribute("data-record") for i in range(2)]
        badges = [records.nth(i).locator(".badge").inner_text() for i in range(2)]
        names = [records.nth(i).locator("a").inner_text() for i in range(2)]
        return {"ids": ids, "badges": badges, "names": names, "polls": polls}


# -- tests ---------------------------------------------------------------------------------------------------

def test_login_rejects_a_bad_key_and_lets_a_clerk_in(browser: Browser, stack: Stack, keys: dict[str, str],
                                                     shots: Path) -> None:
    with session(browser, stack) as s:
        page = s.page
        page.goto("/records?status=valid")
        assert page.url.endswith("/login?next=%2Frecords%3Fstatus%3Dvalid"), page.url
        expect(page.locator("h1")).to_have_text("Đăng nhập")
        s.shot(shots, "01-login")

        page.fill("#key", "fsk_abc_khong-phai-khoa-that")
        page.click("form[action='/login'] button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Khóa truy cập không hợp lệ hoặc đã bị thu hồi.")
        assert not page.context.cookies()

        page.fill("#key", keys["clerk"])
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url("**/records?status=valid")  # back where the user was sent away from
        [cookie] = page.context.cookies()
        assert cookie["name"] == "formsvc_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert keys["clerk"].split("_", 2)[2] not in cookie["value"]  # a session id, never the key
        assert page.evaluate("document.cookie") == ""  # scripts cannot read the session id

        page.goto("/")
        expect(page.locator("h1")).to_contain_text("Xin chào")
        expect(page.locator(".user")).to_contain_text("Cán bộ đơn vị")
        expect(page.locator(".user")).to_contain_text(UNIT)
        expect(page.locator("nav.nav a")).to_have_text(["Trang chủ", "In biểu mẫu", "Tải lên", "Hồ sơ", "Công việc"])

        page.click("text=Đăng xuất")  # a POST with the page's CSRF token
        page.wait_for_url("**/login")
        assert not page.context.cookies()
        page.goto("/upload")
        assert "/login?next=%2Fupload" in page.url
        # Logging out ended the session on the server: the old cookie, put back, lets nobody in.
        page.context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": stack.url}])
        page.goto("/jobs")
        assert "/login" in page.url

    # A session cookie planted by hand (or an API key put in the cookie) sends the user to the login page.
    with session(browser, stack) as s:
        for value in ("made-up-session-id", keys["clerk"]):
            s.page.context.add_cookies([{"name": "formsvc_session", "value": value, "url": stack.url}])
            s.page.goto("/jobs")
            assert "/login" in s.page.url


def test_forms_page_downloads_blank_forms_and_builds_a_print_pack(browser: Browser, stack: Stack,
                                                                    keys: dict[str, str], shots: Path,
                                                                    tmp_path: Path) -> None:
    from formsvc.render import list_forms

    roster = tmp_path / "danh-sach.csv"
    roster.write_text("Mã,Họ và tên,Năm sinh,Đơn vị,Đối tượng\n"
                      f"nv-1,Nguyễn Thị Hương,1985,{UNIT},Giáo viên\n"
                      f"nv-2,Trần Văn Bình,1979,{UNIT},Nhân viên\n"
                      f"nv-3,,1990,{UNIT},Giáo viên\n", encoding="utf-8")
    with session(browser, stack, keys["clerk"]) as s:
        page = s.page
        page.goto("/forms")
        items = page.locator(".form-item")
        expect(items).to_have_count(len(list_forms()))
        self_assessment = page.locator(".form-item[data-form='cdht-self-assessment']")
        expect(self_assessment).to_contain_text("Đọc lại được")
        s.shot(shots, "03-forms")

        with page.expect_download() as pdf_dl:
            self_assessment.locator("button[data-format=pdf]").click()
        assert pdf_dl.value.suggested_filename == "cdht-self-assessment.pdf"
        assert Path(pdf_dl.value.path()).read_bytes()[:5] == b"%PDF-"
        with page.expect_download() as docx_dl:
            self_assessment.locator("button[data-format=docx]").click()
        assert Path(docx_dl.value.path()).read_bytes()[:2] == b"PK"

        # The print pack: roster in, progress polled, a PDF link out, the bad row reported.
        expect(page.locator("#pack-unit")).to_have_count(0)  # a clerk's key already names the unit
        page.set_input_files("#pack-roster", str(roster))
        page.select_option("#pack-form-id", "cdht-self-assessment")
        page.fill("#pack-year", "2025")
        page.click("#pack-form button[type=submit]")
        panel = page.locator("#pack-job")
        expect(panel).to_have_attribute("data-status", "done", timeout=JOB_TIMEOUT_MS)
        link = panel.locator("[data-role=result-link]")
        expect(link).to_be_visible()
        expect(panel.locator(".problems")).to_contain_text("thiếu họ và tên")
        href = link.get_attribute("href")
        assert href and re.fullmatch(r"/v1/jobs/[0-9a-f]+/result", href)
        s.shot(shots, "03b-forms-print-pack")
        # The link works with the page's own cookie (no key in the URL).
        body = page.evaluate("async (u) => { const r = await fetch(u); "
                             "return [r.status, (await r.text()).slice(0, 5)]; }", href)
        assert body == [200, "%PDF-"]


def test_upload_shows_live_progress_and_the_records_made(uploaded: dict[str, Any], shots: Path) -> None:
    assert len(set(uploaded["ids"])) == 2
    assert all(b in ("Hợp lệ", "Cần kiểm tra", "Không hợp lệ") for b in uploaded["badges"]), uploaded["badges"]
    assert all(n and n != "(chưa đọc được tên)" for n in uploaded["names"]), uploaded["names"]
    assert uploaded["polls"], "the page never polled the job"
    for name in ("04-upload-in-progress", "05-upload-done"):
        assert (shots / f"{name}.png").stat().st_size > MIN_SHOT_BYTES


def test_home_records_and_jobs_lists(browser: Browser, stack: Stack, keys: dict[str, str],
                                     uploaded: dict[str, Any], scans: list[Path], shots: Path) -> None:
    # Other tests of this module may have run first (any order): they add an upload and review these records, so
    # the expected badges are the records' statuses now, and the upload is found by its file.
    status_code = {"Hợp lệ": "valid", "Cần kiểm tra": "needs_review", "Không hợp lệ": "rejected"}
    label = {code: text for text, code in status_code.items()}
    badges = [label[_api_record(stack, keys["clerk"], record_id)["status"]] for record_id in uploaded["ids"]]
    with session(browser, stack, keys["clerk"]) as s:
        page = s.page
        with stack.client(keys["clerk"]) as c:
            total = c.get("/v1/records", params={"limit": 1}).json()["total"]
        assert total >= 2
        expect(page.locator("[data-count=total]")).to_have_text(str(total))
        counted = sum(int(page.locator(f"[data-count={k}]").inner_text())
                      for k in ("valid", "needs_review", "rejected"))
        assert counted == total
        expect(page.locator(".jobs-table")).to_contain_text("Tải lên phiếu")
        s.shot(shots, "02-home")

        page.goto("/records")
        rows = page.locator("tr[data-record]")
        expect(rows).to_have_count(total)
        for record_id, badge, name in zip(uploaded["ids"], badges, uploaded["names"], strict=True):
            row = page.locator(f"tr[data-record='{record_id}']")
            expect(row.locator(".badge").first).to_have_text(badge)
            expect(row.locator("a.record-link")).to_have_text(name)
        s.shot(shots, "06-records")

        # Filters: by name (part of it), by status, by a year with nothing in it.
        first_name = uploaded["names"][0]
        page.fill("input[name=q]", first_name.split()[-1])
        page.click(".filters button[type=submit]")
        expect(page.locator(f"tr[data-record='{uploaded['ids'][0]}']")).to_have_count(1)
        page.goto(f"/records?status={status_code[badges[0]]}")
        expect(page.locator(f"tr[data-record='{uploaded['ids'][0]}']")).to_have_count(1)
        page.goto("/records?year=1999")
        expect(page.locator("tr[data-record]")).to_have_count(0)
        expect(page.locator(".empty")).to_have_text("Không có bản ghi nào khớp bộ lọc.")

        page.goto("/jobs")
        upload_row = page.locator(".jobs-table tbody tr", has_text="Tải lên phiếu").filter(has_text=scans[0].name)
        expect(upload_row).to_have_count(1)
        expect(upload_row).to_contain_text("Xong")
        expect(upload_row).to_contain_text("2 bản ghi")
        s.shot(shots, "07-jobs")
        upload_row.get_by_role("link", name="2 bản ghi").click()  # the job's own records only
        expect(page.locator("tr[data-record]")).to_have_count(2)
        expect(page.locator(".chip")).to_contain_text("một lần tải lên")


def test_pages_are_hardened_and_stay_out_of_the_openapi_schema(stack: Stack) -> None:
    with stack.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
        assert paths and all(p.startswith("/v1/") for p in paths), sorted(paths)
        page = c.get("/login")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert c.get("/static/app.js").status_code == 200
        away = c.get("/records", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"] == "/login?next=%2Frecords"
        # A login posted from another site is refused (login CSRF), and ?next= cannot leave the site.
        foreign = c.post("/login", data={"key": stack.admin_key}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
        ok = c.post("/login", data={"key": stack.admin_key, "next": "//evil.example/x"}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/"


@contextmanager
def _logged_in(stack: Stack, key: str) -> Iterator[Any]:
    """An HTTP client logged in through the login form (it keeps the session cookie)."""
    with stack.client() as client:
        r = client.post("/login", data={"key": key}, follow_redirects=False)
        assert r.status_code == 303 and "formsvc_session" in client.cookies, r.text
        yield client


def test_pages_adapt_to_the_role_of_the_key(stack: Stack, keys: dict[str, str]) -> None:
    """An admin key has no unit, so uploads and print packs ask for one; a reviewer cannot upload at all."""
    with _logged_in(stack, stack.admin_key) as admin:
        assert 'id="upload-unit"' in admin.get("/upload").text
        assert 'id="pack-unit"' in admin.get("/forms").text
        assert "<th>Đơn vị</th>" in admin.get("/records").text
    with _logged_in(stack, keys["reviewer"]) as reviewer:
        upload = reviewer.get("/upload").text
        assert 'id="upload-form"' not in upload and "Chỉ cán bộ đơn vị hoặc quản trị viên" in upload
        assert 'href="/upload"' not in reviewer.get("/").text


def test_review_corrects_a_score_with_a_live_total_and_approves(browser: Browser, stack: Stack,
                                                                  keys: dict[str, str], uploaded: dict[str, Any],
                                                                  shots: Path) -> None:
    record_id = uploaded["ids"][0]
    before = _api_record(stack, keys["reviewer"], record_id)
    scores = before["record"]["scores"]
    old = scores["ct3"]
    new = 7.5 if old != 7.5 else 8.0
    expected_total = sum(v for k, v in scores.items() if isinstance(v, int | float) and k != "ct3") + new

    with session(browser, stack, keys["reviewer"]) as s:
        page = s.page
        response = page.goto(f"/records/{record_id}")
        assert response is not None and response.status == 200
        page.wait_for_load_state("networkidle")
        expect(page.locator("#subject-name")).to_have_text(before["record"]["subject"]["full_name"])
        expect(page.locator(".user")).to_contain_text("Người duyệt")

        # Every field with a box on a stored page shows its crop, and the crops really load.
        widths = page.locator("img[data-crop]").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) >= 11 and all(w > 0 for w in widths), widths
        expect(page.locator(".ind-row")).to_have_count(11)  # 10 indicators + the declared total

        # Reasons of severity review/error highlight their fields, like low confidence does.
        flagged = page.locator(".is-flagged").count()
        review_reasons = [r for r in before["record"]["result"]["reasons"] if r["severity"] in ("review", "error")]
        if review_reasons:
            assert flagged >= 1

        score = page.locator("[data-field='scores.ct3']")
        expect(score).to_have_value(_vn(old))
        score.fill(_vn(new))  # typed the Vietnamese way, with a decimal comma
        expect(page.locator("#live-total")).to_have_text(_vn(expected_total))
        expect(score).to_have_class(re.compile("is-changed"))
        expect(page.locator("#dirty-info")).to_have_text("1 trường đã sửa, chưa lưu.")

        # Not a number: refused in the page, nothing sent.
        score.fill("bảy")
        expect(page.locator("#save-btn")).to_be_disabled()
        score.fill(_vn(new))
        s.shot(shots, "08a-review-editing")

        with page.expect_request(lambda r: r.method == "PATCH") as sent:
            page.click("#save-btn")
        assert json.loads(sent.value.post_data or "{}") == {"fields": {"scores.ct3": new},
                                                            "version": before["version"]}
        page.wait_for_url(f"**/records/{record_id}?msg=saved")
        expect(page.locator("#flash")).to_have_text("Đã lưu các thay đổi và kiểm tra lại bản ghi.")
        expect(page.locator("[data-field='scores.ct3']")).to_have_value(_vn(new))
        change = page.locator("#history li[data-change='scores.ct3']")
        expect(change.locator(".old")).to_have_text(_vn(old) if old is not None else "(trống)")
        expect(change.locator(".new")).to_have_text(_vn(new))
        s.shot(shots, "08-review")

        page.click("#approve-btn")
        page.wait_for_url(f"**/records/{record_id}?msg=approved")
        expect(page.locator("#approved-badge")).to_have_text("Đã duyệt")
        expect(page.locator("#history li[data-change='approved']")).to_contain_text("Duyệt")
        s.shot(shots, "08b-review-approved")

    after = _api_record(stack, keys["reviewer"], record_id)
    assert after["approved"] is True
    assert after["version"] == before["version"] + 2  # one correction, one approval
    assert after["record"]["scores"]["ct3"] == new


def test_review_tells_the_user_when_someone_else_changed_the_record(browser: Browser, stack: Stack,
                                                                   keys: dict[str, str],
                                                                   uploaded: dict[str, Any]) -> None:
    record_id = uploaded["ids"][1]
    ct2 = _api_record(stack, keys["reviewer"], record_id)["record"]["scores"]["ct2"]
    with session(browser, stack, keys["reviewer"]) as s:
        page = s.page
        page.goto(f"/records/{record_id}")
        with stack.admin() as c:  # meanwhile, someone else corrects the same record over the API
            r = c.patch(f"/v1/records/{record_id}", json={"fields": {"evidence.ct1": "Sổ tay học tập"}})
            assert r.status_code == 200, r.text
        page.locator("[data-field='scores.ct2']").fill("5" if ct2 != 5 else "6")
        page.click("#save-btn")
        message = page.locator("#review-message")
        expect(message).to_contain_text("đã được người khác sửa")
        expect(message).to_contain_text("tải lại trang")


def test_a_clerk_of_another_unit_gets_the_vietnamese_404_page(browser: Browser, stack: Stack,
                                                             keys: dict[str, str], uploaded: dict[str, Any],
                                                             shots: Path) -> None:
    with session(browser, stack, keys["other"]) as s:
        page = s.page
        response = page.goto(f"/records/{uploaded['ids'][0]}")
        assert response is not None and response.status == 404
        expect(page.locator("h1")).to_have_text("Không tìm thấy")
        expect(page.locator("#error-message")).to_have_text("Không tìm thấy bản ghi.")
        s.shot(shots, "09-not-found")
        page.goto("/records")
        expect(page.locator("tr[data-record]")).to_have_count(0)
        page.goto("/")
        expect(page.locator("[data-count=total]")).to_have_text("0")


def test_upload_shows_the_api_message_for_a_broken_file(browser: Browser, stack: Stack, keys: dict[str, str],
                                                        tmp_path: Path) -> None:
    broken = tmp_path / "hong.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really a pdf\n")
    with session(browser, stack, keys["clerk"]) as s:
        page = s.page
        page.goto("/upload")
        page.set_input_files("#upload-input", str(broken))
        with page.expect_response("**/v1/submissions") as answer:
            page.click("#upload-submit")
        assert answer.value.status in (413, 422)
        error = page.locator("#upload-job [data-role=error]")
        expect(error).to_contain_text("Có tệp không nhận được")
        expect(error).to_contain_text("hong.pdf")
        expect(error.locator(".hint")).to_have_text("Sửa hoặc bỏ các tệp đã nêu rồi tải lên lại; chưa có gì được lưu.")
        # Files of other types are refused in the page before anything is sent.
        page.set_input_files("#upload-input", {"name": "ghi-chu.txt", "mimeType": "text/plain", "buffer": b"x"})
        expect(page.locator("#upload-skipped")).to_contain_text("ghi-chu.txt")


def test_upload_lists_page_errors_with_file_and_page(browser: Browser, stack: Stack, keys: dict[str, str],
                                                     scans: list[Path], shots: Path) -> None:
    with session(browser, stack, keys["clerk"]) as s:
        page = s.page
        page.goto("/upload")
        page.set_input_files("#upload-input", str(scans[2]))
        page.click("#upload-submit")
        panel = page.locator("#upload-job")
        expect(panel).to_have_attribute("data-status", "done", timeout=JOB_TIMEOUT_MS)
        expect(panel.locator("#upload-records li")).to_have_count(1)
        problem = panel.locator(".problems-table tbody tr")
        expect(problem).to_have_count(1)
        expect(problem.locator("td[data-label='Tệp']")).to_have_text("trang-trung.tif")
        expect(problem.locator("td[data-label='Trang']")).to_have_text("2")
        s.shot(shots, "05b-upload-page-errors")


def test_phone_screens_fit_without_sideways_scrolling(browser: Browser, stack: Stack, keys: dict[str, str],
                                                      uploaded: dict[str, Any], shots: Path) -> None:
    with session(browser, stack, keys["clerk"], viewport=PHONE) as s:
        page = s.page
        for path in ("/", "/forms", "/upload", "/records", "/jobs", f"/records/{uploaded['ids'][0]}"):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            s.no_horizontal_overflow(PHONE["width"])
        s.shot(shots, "10-phone-review")
        page.goto("/records")
        s.shot(shots, "10b-phone-records")
    with session(browser, stack, viewport=PHONE) as s:
        s.page.goto("/login")
        s.no_horizontal_overflow(PHONE["width"])

