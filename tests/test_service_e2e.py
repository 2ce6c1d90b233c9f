"""End to end through the real service: a degraded multi-person scan stack is uploaded, processed by an rq
worker, reviewed over the API and delivered to a webhook receiver exactly once per change, signed.
Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from fixtures.scans import degrade, pdf_bytes, random_record, rasterise
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from tests.polling import holds_for, wait_until
from tests.receiver import Receiver
from tests.servers import RedisServer
from tests.stack import Stack, running_stack

pytestmark = [pytest.mark.timeout(600), pytest.mark.service]
UNIT = "Trường THCS Hòa Bình"


@pytest.fixture(scope="module")
def scan_stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[dict[str, Any]]]:
    """Three people's filled-in forms, printed, scanned with different defects, in one PDF."""
    people = [random_record(seed, blanks=1 if seed == 202 else 0) for seed in (201, 202, 203)]
    pages = []
    for i, data in enumerate(people):
        pages += degrade(rasterise(render_document("cdht-self-assessment", data)), ("rotate", "noise", "jpeg")[i],
                         seed=i)
    get_converter().close()
    return pdf_bytes(pages), people


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
          database_url: str | None) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), redis=redis_server, database_url=database_url) as s:
        yield s


def test_upload_review_approve_and_deliver(stack: Stack, scan_stack: tuple[bytes, list[dict[str, Any]]],
                                           tmp_path: Path) -> None:
    pdf, people = scan_stack
    receiver = Receiver().start()
    try:
        clerk = stack.client(stack.new_key("clerk", UNIT))
        reviewer = stack.client(stack.new_key("reviewer", UNIT))
        hook = clerk.post("/v1/webhooks", json={"url": receiver.url})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]

        files = {"files": ("xấp phiếu.pdf", pdf, "application/pdf")}
        r = clerk.post("/v1/submissions", files=files)
        assert r.status_code == 202, r.text
        job = stack.wait_job(clerk, r.json()["id"])
        assert job["status"] == "done", job
        assert job["progress"]["pages_done"] == job["progress"]["pages_total"] == len(rasterise_pages(pdf))
        assert len(job["records"]) == 3 and job["errors"] == []

        # The same file again is the same job, not new records.
        again = clerk.post("/v1/submissions", files=files)
        assert again.status_code == 200 and again.json()["id"] == job["id"] and again.json()["duplicate"] is True

        records = {rec["id"]: clerk.get(f"/v1/records/{rec['id']}").json() for rec in job["records"]}
        by_name = {v["record"]["subject"]["full_name"]: v for v in records.values()}
        assert set(by_name) == {p["subject"]["full_name"] for p in people}
        blank_person = people[1]
        flagged = by_name[blank_person["subject"]["full_name"]]
        assert flagged["status"] != "valid"
        blank_ind = next(k for k, v in blank_person["scores"].items() if v is None)
        reasons = flagged["record"]["result"]["reasons"]
        assert any(r.get("indicator") == blank_ind or r.get("field") == f"scores.{blank_ind}" for r in reasons)
        assert flagged["crops"], "flagged record has field crops"
        crop = reviewer.get(next(iter(flagged["crops"].values())))
        assert crop.status_code == 200 and crop.content.startswith(b"\x89PNG")

        # The reviewer fills the blank box; the declared total then matches again.
        fix = reviewer.patch(f"/v1/records/{flagged['id']}",
                             json={"fields": {f"scores.{blank_ind}": 5}, "version": flagged["version"]})
        assert fix.status_code == 200, fix.text
        fixed = fix.json()
        assert fixed["version"] == flagged["version"] + 1
        assert fixed["record"]["scores"][blank_ind] == 5
        stale = reviewer.patch(f"/v1/records/{flagged['id']}",
                               json={"fields": {f"scores.{blank_ind}": 6}, "version": flagged["version"]})
        assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
        history = reviewer.get(f"/v1/records/{flagged['id']}/history").json()
        assert history[0]["field"] == f"scores.{blank_ind}" and history[0]["old"] is None and history[0]["new"] == 5

        assert fixed["status"] != "rejected", fixed["record"]["result"]["reasons"]
        approved = reviewer.post(f"/v1/records/{flagged['id']}/approve", json={"version": fixed["version"]})
        assert approved.status_code == 200 and approved.json()["approved"] is True
        assert clerk.post(f"/v1/records/{flagged['id']}/approve").status_code == 403  # clerks do not approve

        # Exactly one signed event per change: 3 created + 1 corrected + 1 approved.
        expected = 3 + 1 + 1
        wait_until(lambda: len(receiver.received) >= expected, 30, what=f"{expected} webhook events")
        holds_for(lambda: len(receiver.received) == expected, 1.0, what="no further event arriving")
        assert all(item.signed_by(secret) for item in receiver.received)
        events = receiver.events()
        assert len({e["id"] for e in events}) == expected
        kinds = [e["type"] for e in events if e["record"]["id"] == flagged["id"]]
        assert kinds == ["record.created", "record.corrected", "record.approved"]
        assert [e["record"]["version"] for e in events if e["record"]["id"] == flagged["id"]] == [1, 2, 3]

        # Pull feed: change order, resumable from the cursor.
        integ = stack.client(stack.new_key("integration", UNIT))
        page1 = integ.get("/v1/records", params={"after": 0, "limit": 2}).json()
        page2 = integ.get("/v1/records", params={"after": page1["next_cursor"], "limit": 10}).json()
        seqs = [i["change_seq"] for i in page1["items"] + page2["items"]]
        assert seqs == sorted(seqs) and len(seqs) == 3
        assert page2["items"][-1]["id"] == flagged["id"]  # changed last
        assert integ.get("/v1/records").status_code == 403  # integration keys read the feed only

        # No key, signing secret or person's name ever reaches a log file of any process.
        assert clerk.get("/v1/records", params={"q": people[0]["subject"]["full_name"]}).json()["total"] == 1
        logs = "".join(p.read_text(errors="replace") for p in stack.root.glob("*.log"))
        assert "GET /v1/records" in logs  # the access log is there, without query strings
        for person in people:
            assert person["subject"]["full_name"] not in logs and quote(person["subject"]["full_name"]) not in logs
        for key in (stack.admin_key, clerk.headers["x-api-key"], reviewer.headers["x-api-key"], secret):
            secret_part = key.split("_", 2)[2] if key.startswith("fsk_") else key  # fsk_<id>_<secret>; "_" may be in it
            assert key not in logs and secret_part not in logs
    finally:
        receiver.stop()


def rasterise_pages(pdf: bytes) -> list[Any]:
    import pypdfium2 as pdfium

    return list(pdfium.PdfDocument(pdf))


def test_print_pack_job_from_hostile_rosters_prints_names_literally(stack: Stack, tmp_path: Path) -> None:
    """Rosters whose names are spreadsheet formulas or template/XML markup: the pack is built as a job with
    progress, and the names come out as plain text (nothing evaluated, nothing broken)."""
    import pdfplumber

    from fixtures.bad_inputs import CSV_INJECTION_NAMES, MARKUP_NAMES, build_corpus
    from formsvc.text import nfc

    corpus = {case.name: path for case, path in build_corpus(tmp_path / "bad")}
    clerk = stack.client(stack.new_key("clerk", UNIT))
    for case, names in (("roster_csv_injection", CSV_INJECTION_NAMES), ("roster_jinja_xml_markup", MARKUP_NAMES)):
        r = clerk.post("/v1/print-packs", data={"form": "cdht-self-assessment", "year": "2024"},
                       files={"roster": ("danh-sach.csv", corpus[case].read_bytes(), "text/csv")})
        assert r.status_code == 202, r.text
        job = stack.wait_job(clerk, r.json()["id"], timeout=180)
        assert job["status"] == "done" and job["errors"] == [], job
        assert job["progress"]["pages_done"] == job["progress"]["pages_total"] == len(names)
        pdf = clerk.get(job["result_url"])
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        path = tmp_path / f"{case}.pdf"
        path.write_bytes(pdf.content)
        with pdfplumber.open(path) as doc:
            text = nfc("\n".join(p.extract_text() or "" for p in doc.pages))
        squashed = text.replace(" ", "").replace("\n", "")
        for name in names:
            assert nfc(name).replace(" ", "") in squashed, name
        assert "Lê Thị 49" not in text and "xxxxxxxxxx" not in squashed  # the template was not evaluated
    bad = clerk.post("/v1/print-packs", data={"form": "cdht-minutes"},
                     files={"roster": ("ds.csv", b"Ho va ten\nA\n", "text/csv")})
    assert bad.status_code == 422 and bad.json()["code"] == "form_not_packable"
    bad = clerk.post("/v1/print-packs", data={"form": "cdht-self-assessment"},
                     files={"roster": ("ds.exe", b"MZ", "application/octet-stream")})
    assert bad.status_code == 422 and bad.json()["code"] == "roster_type_unsupported"


def test_minutes_are_cross_checked_against_self_assessments_already_stored(stack: Stack) -> None:
    """The sheets came in an earlier upload; the minutes come later: the check still finds them."""
    from fixtures.foreign import typed_minutes
    from tests.test_faults_helpers import add_records

    unit = "Trường MN Cát Linh"
    [sheet_id] = add_records(stack, unit, 1, ["Đinh Thị Hoa"])  # 8 points on each of 10 indicators: recognised
    clerk = stack.client(stack.new_key("clerk", unit))
    sheet = clerk.get(f"/v1/records/{sheet_id}").json()["record"]
    minutes = get_converter().docx_to_pdf(typed_minutes(unit, [
        {"full_name": "Đinh Thị Hoa", "birth_year": sheet["subject"]["birth_year"], "self_total": 80,
         "agreed_total": 78, "proposed": True},
        {"full_name": "Hoàng Thị Yến", "birth_year": 1990, "self_total": 88, "agreed_total": 88, "proposed": True},
    ]))
    r = clerk.post("/v1/submissions", files={"files": ("bien-ban.pdf", minutes, "application/pdf")})
    job = stack.wait_job(clerk, r.json()["id"])
    [rec] = job["records"]
    reasons = clerk.get(f"/v1/records/{rec['id']}").json()["record"]["result"]["reasons"]
    by_code: dict[str, list[str]] = {}
    for reason in reasons:
        by_code.setdefault(reason["code"], []).append(reason["message"])
    assert [m.split(" được")[0] for m in by_code["proposed_without_self_assessment"]] == ["Hoàng Thị Yến"]
    [differs] = by_code["agreed_total_differs"]  # Đinh Thị Hoa was found among the stored sheets
    assert differs.startswith("Đinh Thị Hoa") and "78" in differs and "80" in differs


def test_names_on_forms_printed_from_a_roster_come_back_from_the_roster(stack: Stack, tmp_path: Path) -> None:
    """Known values beat OCR: the QR code carries the roster id, so the name and birth year are the roster's."""
    import csv

    from fixtures.roster_gen import write_roster

    unit = "Trường TH Kim Đồng"
    roster = write_roster(tmp_path / "ds.csv", 2, seed=11)
    people = list(csv.DictReader(roster.open(encoding="utf-8")))
    clerk = stack.client(stack.new_key("clerk", unit))
    r = clerk.post("/v1/print-packs", data={"form": "cdht-self-assessment", "year": "2024"},
                   files={"roster": ("ds.csv", roster.read_bytes(), "text/csv")})
    pack = clerk.get(stack.wait_job(clerk, r.json()["id"], timeout=180)["result_url"]).content
    scanned = pdf_bytes(degrade(rasterise(pack), "blur", seed=3))
    job = stack.wait_job(clerk, clerk.post("/v1/submissions", files={"files": ("quet.pdf", scanned,
                                                                               "application/pdf")}).json()["id"])
    assert len(job["records"]) == 2, job
    got = {}
    for rec in job["records"]:
        record = clerk.get(f"/v1/records/{rec['id']}").json()["record"]
        got[record["subject"]["id"]] = record
    for person in people:
        record = got[person["Mã"]]
        assert record["subject"]["full_name"] == person["Họ và tên"]
        assert record["subject"]["birth_year"] == int(person["Năm sinh"])
        sources = {f["name"]: f["source"] for f in record["fields"]}
        assert sources["subject.full_name"] == sources["subject.birth_year"] == "known_value"
        assert not any(r["code"] == "low_confidence" and r["field"] == "subject.full_name"
                       for r in record["result"]["reasons"])
