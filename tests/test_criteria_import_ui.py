"""Loading an official appendix through the admin page in a real browser (headless Chromium, Playwright) against
the whole service: upload -> side-by-side diff -> reject (nothing changes) / accept (stored, used at once by
rendering and validation, no restart); the next printed form carries the new set@version in its QR."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pdfplumber
import pypdfium2 as pdfium
import pytest
import zxingcpp
from docx import Document
from playwright.sync_api import Browser, expect

from fixtures.official_tables import Official, docx_merged
from tests.servers import RedisServer
from tests.stack import Stack, running_stack
from tests.test_web_ui import browser, session, shots  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.timeout(600), pytest.mark.browser, pytest.mark.service]
BASE = "cdht-324-pl4"  # the self-assessment form's default set


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with RedisServer() as redis, running_stack(tmp_path_factory.mktemp("criteria-ui"), redis=redis) as s:
        yield s


def _official_from_live(detail: dict[str, Any]) -> Official:
    """The set as the service has it now, changed the way an official text differs from a paraphrase: indicator 2
    reworded, the last indicator dropped and its points given to indicator 1 (so the total stays)."""
    by_id = {i["id"]: i for i in detail["indicators"]}
    criteria = [(c["title"], [(by_id[i]["title"], float(by_id[i]["max_points"])) for i in c["indicators"]])
                for c in detail["criteria"]]
    _, last_points = criteria[-1][1].pop()
    first_title, first_points = criteria[0][1][0]
    criteria[0][1][0] = (first_title, first_points + last_points)
    second_title, second_points = criteria[0][1][1]
    criteria[0][1][1] = (f"{second_title} theo văn bản chính thức", second_points)
    return Official(detail["id"], [c for c in criteria if c[1]])


def _live_set(stack: Stack, ref: str = BASE) -> dict[str, Any]:
    with stack.admin() as c:
        r = c.get(f"/v1/criteria/{ref}")
        assert r.status_code == 200, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def files(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("official")
    official = _official_from_live(_live_set(stack))
    good = folder / "Phu-luc-IV-324.docx"
    good.write_bytes(docx_merged(official))
    doc = Document()
    table = doc.add_table(rows=0, cols=3)
    for row in (["STT", "Nội dung", "Điểm tối đa"], ["I", "Tiêu chí một", "20"], ["1", "Chỉ tiêu một", "10"],
                ["2", "Chỉ tiêu hai", "mười"]):
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    bad = folder / "bang-hong.docx"
    doc.save(str(bad))
    return {"good": good, "bad": bad, "official": official}


def _qr_texts(pdf: bytes) -> list[str]:
    doc = pdfium.PdfDocument(pdf)
    try:
        out = []
        for i in range(len(doc)):
            img = np.asarray(doc[i].render(scale=200 / 72, grayscale=True).to_pil().convert("L"))
            out += [r.text for r in zxingcpp.read_barcodes(img)]
        return out
    finally:
        doc.close()


def test_admin_loads_the_official_appendix(browser: Browser, stack: Stack, files: dict[str, Any],  # noqa: F811
                                           shots: Path) -> None:  # noqa: F811
    before = _live_set(stack)
    v = before["version"]
    official: Official = files["official"]
    with stack.admin() as c:
        printed_before = c.post("/v1/render/cdht-self-assessment?format=pdf", json={"year": 2025})
        assert printed_before.status_code == 200, printed_before.text
    assert all(f"|{BASE}|" in q for q in _qr_texts(printed_before.content))
    with session(browser, stack, stack.admin_key) as s:
        page = s.page
        page.click("nav >> text=Bộ tiêu chí")
        expect(page.locator("h1")).to_have_text("Bộ tiêu chí")
        expect(page.locator(f"#criteria-sets tr[data-ref='{BASE}@{v}']")).to_contain_text("Đang dùng")

        # A malformed table: the error names the row, and nothing is staged.
        page.set_input_files("#criteria-file", str(files["bad"]))
        page.select_option("#criteria-base", "cdht-324-pl1")
        page.click("#criteria-submit")
        expect(page.locator("#criteria-error")).to_contain_text("Dòng 4 của bảng (chỉ tiêu «Chỉ tiêu hai»)")
        expect(page.locator("#criteria-error")).to_contain_text("không phải là một số")
        s.shot(shots, "criteria-01-malformed")

        # Upload -> diff -> reject: nothing changes.
        page.set_input_files("#criteria-file", str(files["good"]))
        page.select_option("#criteria-base", BASE)
        page.click("#criteria-submit")
        page.wait_for_url("**/admin/criteria/imports/*")
        n = len(official.indicators)
        expect(page.locator("#diff-structure")).to_contain_text(f"Bản từ tệp: {len(official.criteria)} tiêu chí, "
                                                                f"{n} chỉ tiêu")
        row1 = page.locator("#diff-table tr[data-label='Chỉ tiêu 1']")
        expect(row1.locator("td").nth(3)).to_have_text(f"{official.indicators[0][1]:g}".replace(".", ","))
        expect(row1).to_contain_text("thay đổi")
        row2 = page.locator("#diff-table tr[data-label='Chỉ tiêu 2']")
        expect(row2.locator("ins")).to_have_text("theo văn bản chính thức")
        expect(page.locator(f"#diff-table tr[data-label='Chỉ tiêu {n + 1}']")).to_contain_text("bỏ")
        s.shot(shots, "criteria-02-diff")
        page.click("#criteria-reject")
        page.wait_for_url("**/admin/criteria?rejected=1")
        expect(page.locator("#criteria-flash")).to_contain_text("không thay đổi")
        assert _live_set(stack)["version"] == v

        # Upload again -> accept: stored as the next version and used at once.
        page.set_input_files("#criteria-file", str(files["good"]))
        page.select_option("#criteria-base", BASE)
        page.click("#criteria-submit")
        page.wait_for_url("**/admin/criteria/imports/*")
        token_url = page.url
        page.click("#criteria-accept")
        page.wait_for_url("**/admin/criteria?accepted=*")
        expect(page.locator("#criteria-flash")).to_contain_text(f"{BASE}@{v + 1}")
        current = page.locator(f"#criteria-sets tr[data-ref='{BASE}@{v + 1}']")
        expect(current).to_contain_text("Đang dùng")
        expect(current).to_contain_text(files["good"].name)
        expect(page.locator(f"#criteria-sets tr[data-ref='{BASE}@{v}']")).to_be_visible()
        s.shot(shots, "criteria-03-accepted")
        page.goto(token_url)  # an accepted import cannot be decided twice
        expect(page.locator("main")).to_contain_text("Không tìm thấy bản nhập đang chờ duyệt")

    after = _live_set(stack)
    assert after["version"] == v + 1 and after["verified"] and after["source"]["sha256"]
    assert [(i["title"], i["max_points"]) for i in after["indicators"]] == official.indicators
    assert _live_set(stack, f"{BASE}@{v}")["indicators"] == before["indicators"]  # the old version stays
    with stack.admin() as c:
        pdf = c.post("/v1/render/cdht-self-assessment?format=pdf", json={"year": 2025})
        assert pdf.status_code == 200, pdf.text
        # A form printed before the import still validates against the version it was printed with.
        scores = {i["id"]: i["max_points"] for i in before["indicators"]}
        record = {"form": "cdht-self-assessment", "criteria_set": f"{BASE}@{v}", "year": 2025,
                  "subject": {"full_name": "Lê Thị Mai", "birth_year": 1980, "unit": "Trường THCS Hòa Bình",
                              "group": "official"},
                  "scores": scores, "evidence": {k: "Có" for k in scores}, "total_declared": sum(scores.values())}
        checked = c.post("/v1/validate", json=record)
        assert checked.status_code == 200, checked.text
        assert checked.json()["status"] == "valid", checked.json()
    before_text, after_text = _pdf_text(printed_before.content), _pdf_text(pdf.content)
    assert f"({BASE} v{v}) Lưu ý: Nội dung tạm thời" in before_text
    assert f"({BASE} v{v + 1})" in after_text and "tạm thời" not in after_text
    qrs = _qr_texts(pdf.content)
    assert qrs and all(f"|{BASE}@{v + 1}|" in q for q in qrs), qrs


def _pdf_text(pdf: bytes) -> str:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return " ".join(" ".join((p.extract_text() or "") for p in doc.pages).split())


def test_only_administrators_load_official_files(browser: Browser, stack: Stack,  # noqa: F811
                                                 files: dict[str, Any]) -> None:
    clerk = stack.new_key("clerk", "Trường THCS Hòa Bình")
    with session(browser, stack, clerk) as s:
        expect(s.page.locator("nav >> text=Bộ tiêu chí")).to_have_count(0)
        response = s.page.goto("/admin/criteria")
        assert response is not None and response.status == 403
        expect(s.page.locator("main")).to_contain_text("Chỉ quản trị viên")
    with stack.client(clerk) as c:
        r = c.post("/v1/criteria-imports", files={"file": (files["good"].name, files["good"].read_bytes())})
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert c.post("/v1/criteria-imports/" + "0" * 32 + "/accept").status_code == 403
