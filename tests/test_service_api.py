"""The service API on a real database (SQLite and PostgreSQL) and Redis: keys and roles, unit isolation on
every route, upload limits, idempotency, rate limits, feed, exports, webhook target rules, audit."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select, text

from fixtures.bad_inputs import build_corpus, read_body
from fixtures.scans import save_scan
from formsvc.db import session_scope
from formsvc.db.tables import ApiKey, Job, ReadAudit, StoredFile
from formsvc.settings import get_settings
from tests.servers import RedisServer
from tests.service_app import App, service_app

UNIT_A, UNIT_B = "Trường THCS Hòa Bình", "Trường Tiểu học Bí Mật"
SECRET_NAME = "Bùi Bí Mật"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("svc"), redis_server.url, database_url,
                     FORMSVC_MAX_UPLOAD_BYTES=str(3 * 1024 * 1024), FORMSVC_MAX_PAGES_PER_FILE="20") as a:
        yield a


def _png(path: Path, seed: int = 0) -> bytes:
    img = np.full((1169, 827), 255, np.uint8)
    img[0, seed] = 0  # distinct bytes per seed: not a duplicate upload
    save_scan([img], path, dpi=100)
    return path.read_bytes()


def test_keys_are_hashed_and_required(app: App) -> None:
    key = app.key("clerk", UNIT_A)
    with session_scope() as s:
        stored = s.scalars(select(ApiKey)).all()
    assert all(key not in (k.key_hash, k.id) and len(k.key_hash) == 64 for k in stored)
    secret = key.split("_", 2)[2]  # the whole secret part: it may itself hold "_"
    assert secret and secret not in repr([(k.id, k.key_hash, k.name) for k in stored])

    r = app.client.get("/v1/records")
    assert r.status_code == 401 and r.json()["code"] == "auth_missing" and "khóa" in r.json()["message"]
    r = app.client.get("/v1/records", headers=app.as_(key[:-2] + "xx"))
    assert r.status_code == 401 and r.json()["code"] == "auth_invalid"
    assert app.client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json()["unit"] == UNIT_A

    admin = app.key("admin")
    made = app.client.post("/v1/keys", json={"role": "reviewer", "unit": UNIT_A}, headers=app.as_(admin)).json()
    assert app.client.delete(f"/v1/keys/{made['id']}", headers=app.as_(admin)).status_code == 204
    assert app.client.get("/v1/me", headers=app.as_(made["key"])).status_code == 401
    assert app.client.post("/v1/keys", json={"role": "admin"}, headers=app.as_(key)).status_code == 403


# --------------------------------------------------------------------------- unit isolation, from the route table

PUBLIC = {"/v1/health", "/v1/criteria", "/v1/criteria/{set_id}", "/v1/forms"}


def _b_objects(app: App, tmp_path: Path) -> dict[str, str]:
    """Objects that belong to unit B; unit A's keys must never reach them."""
    record = app.add_record(UNIT_B, name=SECRET_NAME)
    clerk_b = app.key("clerk", UNIT_B)
    up = app.client.post("/v1/submissions", files={"files": ("b.png", _png(tmp_path / "b.png"), "image/png")},
                         headers=app.as_(clerk_b))
    assert up.status_code == 202, up.text
    get_settings().webhook_allow_private = True
    try:
        hook = app.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=app.as_(clerk_b))
    finally:
        get_settings().webhook_allow_private = False
    assert hook.status_code == 201, hook.text
    with session_scope() as s:
        key_id = s.scalars(select(ApiKey.id).where(ApiKey.unit == UNIT_B)).first()
    assert key_id
    return {"record_id": record.id, "job_id": up.json()["id"], "hook_id": hook.json()["id"], "key_id": key_id,
            "field_name": "subject.full_name", "form_id": "cdht-self-assessment", "set_id": "cdht-324-pl4",
            # A criteria import belongs to no unit (administrators only): any other key is refused, whatever token.
            "token": "0" * 32}


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every API route, including those of included routers (FastAPI keeps them behind a wrapper)."""
    out: list[APIRoute] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        elif hasattr(r, "original_router"):
            out += _api_routes(r.original_router.routes)
    return out


def _fmt(path: str) -> str:
    return "csv" if "exports" in path else "docx"


BODIES: dict[str, dict[str, Any]] = {
    "/v1/records/{record_id}": {"fields": {"subject.full_name": "Kẻ Lạ"}},
    "/v1/webhooks": {"url": "http://127.0.0.1:9/x", "unit": UNIT_B},
    "/v1/keys": {"role": "clerk", "unit": UNIT_B},
    "/v1/dossiers": {"year": 2024, "unit": UNIT_B},
    "/v1/records/{record_id}/confirm": {"field": "scores.ct1", "value": 7},
}


def test_unit_isolation_on_every_route(app: App, tmp_path: Path) -> None:
    """Every API route, found in the route table (so a new one cannot be forgotten), asked by unit A's keys
    about unit B's objects: 404 (or 403 for a role that may not call it), and never a byte of B's data."""
    b = _b_objects(app, tmp_path)
    keys = {role: app.key(role, UNIT_A) for role in ("clerk", "reviewer", "integration")}
    routes = [r for r in _api_routes(app.client.app.routes) if r.path.startswith("/v1/")]  # type: ignore[attr-defined]
    assert len(routes) >= 25
    checked = 0
    for route in routes:
        if route.path in PUBLIC:
            continue
        params = re.findall(r"{(\w+)}", route.path)
        unknown = [p for p in params if p not in b and p != "fmt"]
        assert not unknown, f"{route.path}: teach this test a unit-B value for {unknown}"
        path = route.path
        for p in params:
            path = path.replace("{" + p + "}", _fmt(route.path) if p == "fmt" else b[p])
        owns_b_object = any(p in ("record_id", "job_id", "hook_id", "key_id", "token") for p in params)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for role, key in keys.items():
                kw: dict[str, Any] = {"headers": app.as_(key), "params": {"unit": UNIT_B, "year": 2024}}
                if method in ("POST", "PATCH"):
                    if route.path in ("/v1/submissions", "/v1/print-packs"):
                        kw["files"] = {"files" if "sub" in route.path else "roster":
                                       ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")}
                        kw["data"] = {"unit": UNIT_B, "form": "cdht-self-assessment"}
                    else:
                        kw["json"] = BODIES.get(route.path, {})
                r = app.client.request(method, path, **kw)
                where = f"{method} {path} as {role}: {r.status_code} {r.text[:200]}"
                assert r.status_code < 500, where
                assert SECRET_NAME not in r.text and UNIT_B not in r.text.replace(f"unit={UNIT_B}", ""), where
                if owns_b_object:
                    assert r.status_code in (403, 404), where
                elif method != "GET" and route.path not in ("/v1/render/{form_id}", "/v1/validate"):
                    assert r.status_code in (403, 404, 422), where
                checked += 1
    assert checked > 60
    # The same calls by unit B's own clerk do reach the record: the test above is not vacuous.
    clerk_b = app.key("clerk", UNIT_B)
    assert app.client.get(f"/v1/records/{b['record_id']}", headers=app.as_(clerk_b)).json()["record"]["subject"][
        "full_name"] == SECRET_NAME


# --------------------------------------------------------------------------------------------- upload limits


def _counts() -> tuple[int, int]:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Job)) or 0, \
            s.scalar(select(func.count()).select_from(StoredFile)) or 0


def test_bad_uploads_get_clear_4xx_and_store_nothing(app: App, tmp_path: Path) -> None:
    clerk = app.as_(app.key("clerk", UNIT_A))
    corpus = {case.name: (case, path) for case, path in build_corpus(tmp_path / "bad")}
    store_files = lambda: sum(1 for p in (app.root / "files").rglob("*") if p.is_file() and "tmp" not in p.parts)  # noqa: E731
    before, files_before = _counts(), store_files()
    expected = {"zero_byte": (422, "file_empty"), "truncated_pdf": (422, "pdf_unreadable"),
                "encrypted_pdf": (422, "pdf_encrypted"), "image_decompression_bomb": (413, "image_too_large"),
                "html_as_pdf": (422, "file_type_unsupported"), "zip_as_pdf": (422, "file_type_unsupported"),
                "pdf_1000_pages": (413, "too_many_pages")}
    for name, (status, code) in expected.items():
        case, path = corpus[name]
        r = app.client.post("/v1/submissions", files={"files": (case.filename, path.read_bytes(), case.content_type)},
                            headers=clerk)
        assert (r.status_code, r.json()["code"]) == (status, code), (name, r.text)
        assert r.json()["message"] and r.json()["hint"]
    big = app.client.post("/v1/submissions", files={"files": ("to.pdf", b"%PDF" + b"0" * (4 * 1024 * 1024),
                                                              "application/pdf")}, headers=clerk)
    assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    mixed = app.client.post("/v1/submissions", headers=clerk, files=[
        ("files", ("ok.png", _png(tmp_path / "ok.png"), "image/png")),
        ("files", ("rong.pdf", b"", "application/pdf"))])
    assert mixed.status_code == 422 and "rong.pdf" in mixed.json()["message"]
    assert _counts() == before and store_files() == files_before, "a refused upload stored something"
    assert app.client.post("/v1/submissions", headers=clerk).status_code == 422

    # Hostile names are accepted but stored harmlessly.
    for i, name in enumerate(("path_traversal_name", "control_chars_name")):
        case, path = corpus[name]
        # Both cases hold the same bytes: a second unit, so the second is not a duplicate of the first.
        r = app.client.post("/v1/submissions", files={"files": (case.filename, path.read_bytes(), "image/png")},
                            headers=app.as_(app.key("clerk", f"Đơn vị {i}")))
        assert r.status_code == 202, r.text
        stored = r.json()["files"][0]["filename"]
        assert "/" not in stored and ".." not in stored[:2] and not any(ord(c) < 32 or ord(c) == 127 for c in stored)
    big_json = read_body(corpus["oversized_json"][1])
    r = app.client.post("/v1/validate", content=big_json, headers={**clerk, "content-type": "application/json"})
    assert r.status_code == 413


def test_same_file_twice_is_one_job_and_idempotency_key_replays(app: App, tmp_path: Path) -> None:
    clerk = app.as_(app.key("clerk", UNIT_A))
    png = _png(tmp_path / "p.png")
    first = app.client.post("/v1/submissions", files={"files": ("p.png", png, "image/png")}, headers=clerk)
    second = app.client.post("/v1/submissions", files={"files": ("khac-ten.png", png, "image/png")}, headers=clerk)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"] and second.json()["duplicate"] is True

    admin = app.as_(app.key("admin"))
    body = {"role": "reviewer", "unit": UNIT_A, "name": "Cô Lan"}
    one = app.client.post("/v1/keys", json=body, headers={**admin, "Idempotency-Key": "k-1"})
    two = app.client.post("/v1/keys", json=body, headers={**admin, "Idempotency-Key": "k-1"})
    assert one.status_code == two.status_code == 201
    assert two.headers["idempotent-replayed"] == "true"
    assert two.json() == {**one.json(), "key": None, "secret_redacted": True, "note": two.json()["note"]}
    other = app.client.post("/v1/keys", json={**body, "name": "khác"}, headers={**admin, "Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.name == "Cô Lan")) == 1


def test_rate_limit_per_key_is_429(app: App) -> None:
    key = app.as_(app.key("reviewer", UNIT_A))
    other = app.as_(app.key("reviewer", UNIT_A))
    settings = get_settings()
    settings.rate_limit_per_minute = 5
    try:
        codes = [app.client.get("/v1/records", headers=key).status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and set(codes[5:]) <= {429, 200} and 429 in codes
        r = app.client.get("/v1/records", headers=key)
        if r.status_code == 429:
            assert r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) > 0
        assert app.client.get("/v1/records", headers=other).status_code == 200  # per key, not global
    finally:
        settings.rate_limit_per_minute = 100000


def test_feed_exports_report_and_audit(app: App) -> None:
    unit = "Xã Tam Hưng"
    rows = [app.add_record(unit, name=f"Người {i}", score=8 if i % 2 else 4) for i in range(4)]
    injected = app.add_record(unit, name='=HYPERLINK("http://evil.example","Bấm")')
    integ_key = app.key("integration", unit)
    integ = app.as_(integ_key)
    feed = app.client.get("/v1/records", params={"after": 0, "limit": 3}, headers=integ).json()
    rest = app.client.get("/v1/records", params={"after": feed["next_cursor"]}, headers=integ).json()
    ids = [i["id"] for i in feed["items"] + rest["items"]]
    assert ids == [r.id for r in [*rows, injected]]
    assert app.client.get("/v1/records", params={"after": rest["next_cursor"]}, headers=integ).json()["items"] == []
    assert app.client.get(f"/v1/records/{rows[0].id}", headers=integ).status_code == 200
    with session_scope() as s:
        audited = s.scalars(select(ReadAudit.record_id).where(ReadAudit.key_id == integ_key.split("_")[1])).all()
    assert sorted(audited) == sorted([*ids, rows[0].id])

    reviewer = app.as_(app.key("reviewer", unit))
    csv_bytes = app.client.get("/v1/exports/records.csv", headers=reviewer).content
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    text_ = csv_bytes.decode("utf-8-sig")
    assert "'=HYPERLINK" in text_ and "\n=HYPERLINK" not in text_ and ",=HYPERLINK" not in text_
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(app.client.get("/v1/exports/records.xlsx", headers=reviewer).content))
    cells = [c for row in wb.active.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells) and len(cells) > 20
    report = app.client.get("/v1/reports/unit", params={"year": 2024}, headers=reviewer).json()
    assert report["cdht"]["assessed"] == 5 and report["cdht"]["recognised"] == 3
    docx = app.client.get("/v1/reports/unit.docx", params={"year": 2024, "staff": 10}, headers=reviewer)
    assert docx.status_code == 200 and docx.content.startswith(b"PK")


def test_webhook_targets_are_restricted(app: App) -> None:
    clerk = app.as_(app.key("clerk", UNIT_A))
    for url in ("http://127.0.0.1:8000/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x",
                "http://192.168.1.10/x", "ftp://93.184.215.14/x", "http://user:pw@93.184.215.14/x"):
        r = app.client.post("/v1/webhooks", json={"url": url}, headers=clerk)
        assert r.status_code == 422 and r.json()["code"] == "webhook_target_refused", url
    ok = app.client.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook"}, headers=clerk)
    assert ok.status_code == 201 and len(ok.json()["secret"]) >= 32
    listed = app.client.get("/v1/webhooks", headers=clerk).json()
    assert all("secret" not in h for h in listed)


def test_review_rules(app: App) -> None:
    unit = "Trường MN Sen Hồng"
    row = app.add_record(unit, score=8)
    reviewer = app.as_(app.key("reviewer", unit))
    bad = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"result.total": 100}}, headers=reviewer)
    assert bad.status_code == 422 and bad.json()["code"] == "field_not_editable"
    bad = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"year": "năm ngoái"}}, headers=reviewer)
    assert bad.status_code == 422 and bad.json()["code"] == "correction_invalid"
    over = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"scores.ct1": 15}}, headers=reviewer).json()
    assert over["status"] == "rejected" and over["version"] == 2
    assert app.client.post(f"/v1/records/{row.id}/approve", headers=reviewer).json()["code"] == "record_not_approvable"
    fixed = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"scores.ct1": "7,5"}}, headers=reviewer).json()
    assert fixed["record"]["scores"]["ct1"] == 7.5 and fixed["status"] != "rejected"
    ok = app.client.post(f"/v1/records/{row.id}/approve", headers=reviewer).json()
    assert ok["approved"] is True
    reopened = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"scores.ct2": 7}}, headers=reviewer).json()
    assert reopened["approved"] is False  # a change after approval needs a new approval
    hist = app.client.get(f"/v1/records/{row.id}/history", headers=reviewer).json()
    assert [h["field"] for h in hist] == ["scores.ct1", "scores.ct1", "approved", "scores.ct2"]
    assert hist[0]["old"] == 8 and hist[0]["new"] == 15 and hist[1]["new"] == "7,5"


def test_database_locked_is_503_and_recovers(app: App, database_url: str | None) -> None:
    if database_url is not None:
        pytest.skip("SQLite lock; PostgreSQL outage is covered by the fault tests")
    key = app.as_(app.key("reviewer", UNIT_A))
    row = app.add_record(UNIT_A)
    settings = get_settings()
    import sqlite3

    db = sqlite3.connect(settings.resolved_database_url.removeprefix("sqlite:///"), timeout=1)
    settings.db_busy_timeout_s = 0.3
    from formsvc.db import dispose_engines

    dispose_engines()
    try:
        db.execute("BEGIN EXCLUSIVE")
        r = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"scores.ct1": 6}}, headers=key)
        assert r.status_code == 503 and r.json()["code"] == "database_unavailable", r.text
        assert "thử lại" in r.json()["message"] and r.headers["retry-after"]
    finally:
        db.rollback()
        db.close()
        settings.db_busy_timeout_s = 5.0
        dispose_engines()
    r = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"scores.ct1": 6}}, headers=key)
    assert r.status_code == 200 and r.json()["version"] == 2  # the refused change left nothing behind
    with session_scope() as s:
        assert s.execute(text("select count(*) from corrections where record_id = :r"), {"r": row.id}).scalar() == 1


def test_idempotency_key_of_a_request_that_died_is_taken_over_after_a_while(app: App) -> None:
    import datetime as dt
    import hashlib

    from formsvc.db.tables import IdempotencyEntry

    admin = app.key("admin")
    key_id = admin.split("_")[1]
    body = b'{"role": "reviewer", "unit": "X", "name": "Thu"}'
    fingerprint = hashlib.sha256(b"POST /v1/keys?" + body).hexdigest()
    with session_scope() as s:  # what a request killed half-way leaves behind
        s.add(IdempotencyEntry(key_id=key_id, idem_key="dead", fingerprint=fingerprint, state="pending",
                               created_at=dt.datetime.now(dt.UTC)))
    headers = {**app.as_(admin), "Idempotency-Key": "dead", "content-type": "application/json"}
    busy = app.client.post("/v1/keys", content=body, headers=headers)
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_progress" and busy.headers["retry-after"]
    with session_scope() as s:
        entry = s.get(IdempotencyEntry, (key_id, "dead"))
        assert entry is not None
        entry.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=get_settings().idempotency_pending_s + 1)
    taken = app.client.post("/v1/keys", content=body, headers=headers)
    assert taken.status_code == 201, taken.text
    replay = app.client.post("/v1/keys", content=body, headers=headers)
    assert replay.json()["id"] == taken.json()["id"] and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["key"] is None  # the secret is shown once, never replayed


def test_a_unit_with_a_full_queue_is_told_to_wait(app: App, tmp_path: Path) -> None:
    clerk = app.as_(app.key("clerk", "Xã Hàng Đợi"))
    settings = get_settings()
    settings.max_queued_jobs_per_unit = 2
    try:
        codes = [app.client.post("/v1/submissions", headers=clerk,
                                 files={"files": (f"{i}.png", _png(tmp_path / f"{i}.png", seed=i), "image/png")}
                                 ).status_code for i in range(3)]
        r = app.client.post("/v1/submissions", headers=clerk,
                            files={"files": ("x.png", _png(tmp_path / "x.png", seed=9), "image/png")})
    finally:
        settings.max_queued_jobs_per_unit = 300
    assert codes == [202, 202, 503]
    assert r.status_code == 503 and r.json()["code"] == "queue_full" and r.headers["retry-after"] == "30"
    other = app.as_(app.key("clerk", "Xã Khác"))  # per unit: another unit is not held up
    assert app.client.post("/v1/submissions", headers=other,
                           files={"files": ("y.png", _png(tmp_path / "y.png", seed=8), "image/png")}).status_code == 202
