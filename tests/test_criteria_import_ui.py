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

from fixtures.official_tables import DVHT_TT22, docx_merged
from tests.servers import RedisServer
from tests.stack import Stack, running_stack
from tests.test_web_ui import browser, session, shots  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with RedisServer() as redis, running_stack(tmp_path_factory.mktemp("criteria-ui"), redis=redis) as s:
        yield s


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("official")
    good = folder / "Phu-luc-TT22-2020.docx"
    good.write_bytes(docx_merged(DVHT_TT22))
    doc = Document()
    table = doc.add_table(rows=0, cols=3)
    for row in (["STT", "Nội dung", "Điểm tối đa"], ["I", "Tiêu chí một", "20"], ["1", "Chỉ tiêu một", "10"],
                ["2", "Chỉ tiêu hai", "mười"]):
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    bad = folder / "bang-hong.docx"
    doc.save(str(bad))
    return {"good": good, "bad": bad}


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


def _dvht_set(stack: Stack) -> dict[str, Any]:
    with stack.admin() as c:
        r = c.get("/v1/criteria/dvht-tt22-2020")
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_admin_loads_the_official_appendix(browser: Browser, stack: Stack, files: dict[str, Path],  # noqa: F811
                                           shots: Path) -> None:  # noqa: F811
    before = _dvht_set(stack)
    assert before["version"] == 1 and len(before["criteria"]) == 4
    with session(browser, stack, stack.admin_key) as s:
        page = s.page
        page.click("nav >> text=Bộ tiêu chí")
        expect(page.locator("h1")).to_have_text("Bộ tiêu chí")
        expect(page.locator("#criteria-sets tr[data-ref='dvht-tt22-2020@1']")).to_contain_text("Đang dùng")

        # A malformed table: the error names the row, and nothing is staged.
        page.set_input_files("#criteria-file", str(files["bad"]))
        page.select_option("#criteria-base", "cdht-324-pl1")
        page.click("#criteria-submit")
        expect(page.locator("#criteria-error")).to_contain_text("Dòng 4 của bảng (chỉ tiêu «Chỉ tiêu hai»)")
        expect(page.locator("#criteria-error")).to_contain_text("không phải là một số")
        s.shot(shots, "criteria-01-malformed")

        # Upload -> diff -> reject: nothing changes.
        page.set_input_files("#criteria-file", str(files["good"]))
        page.select_option("#criteria-base", "dvht-tt22-2020")
        page.click("#criteria-submit")
        page.wait_for_url("**/admin/criteria/imports/*")
        expect(page.locator("#diff-structure")).to_contain_text(
            "Bản từ tệp: 3 tiêu chí, 10 chỉ tiêu (chia 3 / 4 / 3), tổng 100 điểm.")
        row5 = page.locator("#diff-table tr[data-label='Chỉ tiêu 5']")
        expect(row5).to_contain_text("tuân thủ kỷ luật lao động")
        expect(row5.locator("td").nth(3)).to_have_text("5")
        expect(row5).to_contain_text("thay đổi")
        expect(page.locator("#diff-table tr[data-label='Tiêu chí 4']")).to_contain_text("bỏ")
        expect(page.locator("#diff-table ins").first).to_be_visible()
        s.shot(shots, "criteria-02-diff")
        page.click("#criteria-reject")
        page.wait_for_url("**/admin/criteria?rejected=1")
        expect(page.locator("#criteria-flash")).to_contain_text("không thay đổi")
        assert _dvht_set(stack)["version"] == 1

        # Upload again -> accept: stored as version 2 and used at once.
        page.set_input_files("#criteria-file", str(files["good"]))
        page.select_option("#criteria-base", "dvht-tt22-2020")
        page.click("#criteria-submit")
        page.wait_for_url("**/admin/criteria/imports/*")
        token_url = page.url
        page.click("#criteria-accept")
        page.wait_for_url("**/admin/criteria?accepted=*")
        expect(page.locator("#criteria-flash")).to_contain_text("dvht-tt22-2020@2")
        current = page.locator("#criteria-sets tr[data-ref='dvht-tt22-2020@2']")
        expect(current).to_contain_text("Đang dùng")
        expect(current).to_contain_text(files["good"].name)
        expect(page.locator("#criteria-sets tr[data-ref='dvht-tt22-2020@1']")).to_be_visible()
        s.shot(shots, "criteria-03-accepted")
        page.goto(token_url)  # an accepted import cannot be decided twice
        expect(page.locator("main")).to_contain_text("Không tìm thấy bản nhập đang chờ duyệt")

    after = _dvht_set(stack)
    assert after["version"] == 2 and [c["max_points"] for c in after["criteria"]] == [30, 30, 40]
    assert [i["title"] for i in after["indicators"]] == [t for t, _ in DVHT_TT22.indicators]
    assert after["source"]["sha256"] and after["verified"]
    with stack.admin() as c:
        old = c.get("/v1/criteria/dvht-tt22-2020@1").json()
        assert old["version"] == 1 and len(old["criteria"]) == 4
        pdf = c.post("/v1/render/dvht-self-assessment?format=pdf", json={"year": 2025})
        assert pdf.status_code == 200, pdf.text
    with pdfplumber.open(io.BytesIO(pdf.content)) as doc:
        text = " ".join(" ".join((p.extract_text() or "") for p in doc.pages).split())
    assert "Hiệu quả, tác động" in text and "(dvht-tt22-2020 v2)" in text and "tạm thời" not in text
    qrs = _qr_texts(pdf.content)
    assert qrs and all("|dvht-tt22-2020@2|" in q for q in qrs), qrs


def test_only_administrators_load_official_files(browser: Browser, stack: Stack,  # noqa: F811
                                                 files: dict[str, Path]) -> None:
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
