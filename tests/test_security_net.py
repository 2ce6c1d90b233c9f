"""The network and the secrets (issue 16, items 9-15): Redis and the rq worker, idempotency replays, webhook
DNS rebinding, web sessions and CSRF, failed-login throttling, roles, log redaction and file permissions."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer
from sqlalchemy import select

from formsvc.api.deps import COOKIE
from formsvc.api.idempotency import purge_expired
from formsvc.db import session_scope
from formsvc.db.tables import IdempotencyEntry, WebSession
from formsvc.service.dispatch import run_once
from formsvc.service.queue import JOB_FUNCTION
from formsvc.settings import get_settings
from tests.receiver import Receiver
from tests.servers import RedisServer
from tests.service_app import App, service_app

FORMSVC = str(Path(sys.executable).with_name("formsvc"))


class _RunsOnLoad:
    """Pickled into a job's arguments: rq's default serializer would run this while *loading* the job."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.service  # runs the real rq worker process
def test_worker_runs_only_formsvc_jobs(tmp_path: Path, redis_server: RedisServer) -> None:
    """Anything that can write to Redis must not be able to run code as the worker."""
    queue_name = f"q-allow-{os.getpid()}"
    env = {**os.environ, "FORMSVC_DATA_DIR": str(tmp_path / "data"), "FORMSVC_REDIS_URL": redis_server.url,
           "FORMSVC_QUEUE_NAME": queue_name, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    env.pop("FORMSVC_DATABASE_URL", None)
    subprocess.run([FORMSVC, "db", "upgrade"], env=env, check=True, capture_output=True)
    conn = Redis.from_url(redis_server.url)
    markers = [tmp_path / f"pwned{i}" for i in range(4)]
    plain = Queue(queue_name, connection=conn)  # rq's defaults: pickle, any function
    plain.enqueue_call("os.system", args=(f"touch {markers[0]}",))
    plain.enqueue_call("builtins.print", args=(_RunsOnLoad(markers[1]),))
    as_json = Queue(queue_name, connection=conn, serializer=JSONSerializer)
    as_json.enqueue_call("os.system", args=(f"touch {markers[2]}",))
    as_json.enqueue_call("subprocess.call", args=(["touch", str(markers[3])],))
    ours = as_json.enqueue_call(JOB_FUNCTION, args=("no-such-job", 1))  # our own job still runs afterwards

    run = subprocess.run([FORMSVC, "worker", "--burst", "--name", f"allow-{os.getpid()}"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert not [m for m in markers if m.exists()], "a job that is not formsvc's ran"
    assert FailedJobRegistry(queue_name, connection=conn).count == 4
    assert ours.id in FinishedJobRegistry(queue_name, connection=conn, serializer=JSONSerializer).get_job_ids()
    assert "not allowed" in run.stderr + run.stdout


# ------------------------------------------------------------------------------------------ API on both databases

UNIT = "Trường THCS Bảo Mật"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("sec"), redis_server.url, database_url) as a:
        yield a


def _all_idempotency_bodies() -> bytes:
    with session_scope() as s:
        return b"\n".join(e.body or b"" for e in s.scalars(select(IdempotencyEntry)))


def test_replayed_key_and_webhook_creation_never_store_or_return_the_secret(app: App, monkeypatch:
                                                                            pytest.MonkeyPatch) -> None:
    admin = app.as_(app.key("admin"))
    body = {"role": "reviewer", "unit": UNIT, "name": "Cô Mai"}
    first = app.client.post("/v1/keys", json=body, headers={**admin, "Idempotency-Key": "sec-k1"})
    again = app.client.post("/v1/keys", json=body, headers={**admin, "Idempotency-Key": "sec-k1"})
    assert first.status_code == again.status_code == 201
    secret = first.json()["key"]
    assert secret.startswith("fsk_") and again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["key"] is None
    assert again.json()["secret_redacted"] is True and "một lần" in again.json()["note"]
    assert secret.encode() not in _all_idempotency_bodies()
    assert secret.split("_", 2)[2].encode() not in _all_idempotency_bodies()

    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)
    hook = {"url": "http://127.0.0.1:9/hook", "unit": UNIT}
    made = app.client.post("/v1/webhooks", json=hook, headers={**admin, "Idempotency-Key": "sec-h1"})
    replay = app.client.post("/v1/webhooks", json=hook, headers={**admin, "Idempotency-Key": "sec-h1"})
    assert made.status_code == replay.status_code == 201 and len(made.json()["secret"]) >= 32
    assert replay.json()["id"] == made.json()["id"] and replay.json()["secret"] is None
    assert made.json()["secret"].encode() not in _all_idempotency_bodies()


def test_idempotency_entries_expire(app: App) -> None:
    admin = app.key("admin")
    key_id = admin.split("_")[1]
    body = {"role": "reviewer", "unit": UNIT, "name": "Thầy Nam"}
    headers = {**app.as_(admin), "Idempotency-Key": "sec-old"}
    first = app.client.post("/v1/keys", json=body, headers=headers).json()
    ttl = get_settings().idempotency_ttl_s
    assert ttl == 24 * 3600
    with session_scope() as s:
        entry = s.get(IdempotencyEntry, (key_id, "sec-old"))
        assert entry is not None
        entry.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl + 5)
    # Expired but not yet purged: never replayed, the request is a new one.
    fresh = app.client.post("/v1/keys", json=body, headers=headers)
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first["id"]
    with session_scope() as s:
        entry = s.get(IdempotencyEntry, (key_id, "sec-old"))
        assert entry is not None
        entry.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl + 5)
        s.add(IdempotencyEntry(key_id=key_id, idem_key="sec-young", fingerprint="x" * 64, state="done",
                               status_code=200, body=b"{}", created_at=dt.datetime.now(dt.UTC)))
    assert purge_expired() >= 1
    with session_scope() as s:
        assert s.get(IdempotencyEntry, (key_id, "sec-old")) is None
        assert s.get(IdempotencyEntry, (key_id, "sec-young")) is not None


def test_webhook_refuses_private_addresses_dressed_as_ipv6(app: App) -> None:
    clerk = app.as_(app.key("clerk", UNIT))
    for host in ("::ffff:127.0.0.1", "::127.0.0.1", "::10.1.2.3", "::ffff:192.168.1.1", "64:ff9b::7f00:1",
                 "64:ff9b::a01:203", "64:ff9b:1::a01:203", "2002:7f00:1::1", "2002:c0a8:0101::1", "2002:a9fe:a9fe::"):
        r = app.client.post("/v1/webhooks", json={"url": f"http://[{host}]:8000/x"}, headers=clerk)
        assert r.status_code == 422 and r.json()["code"] == "webhook_target_refused", (host, r.text)


class _Resolver:
    """getaddrinfo for one made-up name: the answers given in turn (the last one repeats); others resolve as usual."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name, self.answers, self.calls = name, answers, 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kw)
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port), 0, 0) if family == socket.AF_INET6 else (address, int(port))
        return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]


def _pending_delivery_for(app: App, unit: str, url: str) -> None:
    clerk = app.as_(app.key("clerk", unit))
    r = app.client.post("/v1/webhooks", json={"url": url}, headers=clerk)
    assert r.status_code == 201, r.text
    app.add_record(unit)


def test_webhook_connects_to_the_address_it_checked(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name answers a public address to the check, then loopback. The request must go to
    the address checked, with the original name as Host and as TLS SNI."""
    unit = "Xã Đổi Địa Chỉ"
    resolver = _Resolver("hook.example", ["93.184.215.14", "93.184.215.14", "127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    _pending_delivery_for(app, unit, "https://hook.example/in?token=abc")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert run_once("t-rebind", client) >= 1
    mine = [r for r in seen if r.headers.get("host") == "hook.example"]
    assert len(mine) == 1, [str(r.url) for r in seen]
    assert mine[0].url.host == "93.184.215.14" and mine[0].url.path == "/in" and mine[0].url.query == b"token=abc"
    assert mine[0].extensions["sni_hostname"] == "hook.example"
    assert resolver.calls == 2  # once when the webhook was made, once for the send: never again by httpx


def test_webhook_delivery_over_a_real_socket_uses_the_checked_address_and_logs_no_token(
        app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The same with httpx's real transport (loopback only): the second DNS answer points nowhere, so a
    sender that resolved again would fail; the receiver sees the original Host. httpx's INFO request log
    must not carry the receiver's token."""
    unit = "Phường Ghi Nhật Ký"
    receiver = Receiver().start()
    try:
        monkeypatch.setattr(get_settings(), "webhook_allow_private", True)
        resolver = _Resolver("rebind.test", ["127.0.0.1", "127.0.0.1", "127.0.0.2"])
        monkeypatch.setattr(socket, "getaddrinfo", resolver)
        token = "tok-" + uuid.uuid4().hex
        _pending_delivery_for(app, unit, f"http://rebind.test:{receiver.port}/hook/{token}?token={token}")
        caplog.set_level(logging.INFO)
        with httpx.Client(timeout=5) as client:
            assert run_once("t-real", client) >= 1
        assert [r.headers["host"] for r in receiver.received] == [f"rebind.test:{receiver.port}"]
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "HTTP Request: POST http://127.0.0.1" in logged and token not in logged
    finally:
        receiver.stop()


# ------------------------------------------------------------------------------------------ web sessions and CSRF

def _login(app: App, key: str, **headers: str) -> str:
    """Log in through the login form; returns the session cookie's value."""
    app.client.cookies.clear()
    r = app.client.post("/login", data={"key": key, "next": "/"}, headers=headers, follow_redirects=False)
    assert r.status_code == 303, r.text
    return str(r.cookies[COOKIE])


def _page_csrf(app: App) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', app.client.get("/").text)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_login_makes_a_server_side_session_and_changes_need_csrf(app: App) -> None:
    unit = "Trường TH Phiên Đăng Nhập"
    record = app.add_record(unit)
    key = app.key("reviewer", unit)
    session_id = _login(app, key)
    assert key not in session_id and key.split("_", 2)[2] not in session_id  # the cookie never holds the key
    with session_scope() as s:
        stored = [w.id_hash for w in s.scalars(select(WebSession))]
    assert hashlib.sha256(session_id.encode()).hexdigest() in stored and session_id not in stored
    assert app.client.get("/v1/me").json()["role"] == "reviewer"

    approve = f"/v1/records/{record.id}/approve"
    bare = app.client.post(approve)  # a cookie alone, as a form or fetch on another site would send it
    assert bare.status_code == 403 and bare.json()["code"] == "csrf_failed" and "trang" in bare.json()["message"]
    foreign = app.client.post(approve, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["code"] == "csrf_failed"
    sibling = app.client.post(approve, headers={"Origin": "http://phu.testserver", "X-CSRF-Token": "0" * 64})
    assert sibling.status_code == 403
    ok = app.client.post(approve, headers={"X-CSRF-Token": _page_csrf(app)})
    assert ok.status_code == 200 and ok.json()["approved"] is True
    same = app.client.post(f"/v1/records/{record.id}/revalidate", headers={"Origin": "http://testserver"})
    assert same.status_code == 200, same.text

    # API keys in headers are unaffected (no cookie, no CSRF token needed).
    app.client.cookies.clear()
    assert app.client.post(f"/v1/records/{record.id}/revalidate", headers=app.as_(key)).status_code == 200

    # Logging out is a POST with the page's token, and it ends the session on the server.
    session_id = _login(app, key)
    csrf = _page_csrf(app)
    assert app.client.get("/logout", follow_redirects=False).status_code == 303
    assert app.client.get("/v1/me").status_code == 200  # a GET (a link, an <img>) does not log anyone out
    refused = app.client.post("/logout", data={}, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert refused.status_code == 403
    out = app.client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    app.client.cookies.set(COOKIE, session_id)  # the old cookie, kept by a thief
    assert app.client.get("/v1/me").status_code == 401
    assert app.client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    app.client.cookies.clear()


def test_sessions_expire_and_die_with_their_key(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = app.as_(app.key("admin"))
    made = app.client.post("/v1/keys", json={"role": "clerk", "unit": UNIT}, headers=admin).json()
    session_id = _login(app, made["key"])
    with session_scope() as s:
        row = s.get(WebSession, hashlib.sha256(session_id.encode()).hexdigest())
        assert row is not None
        assert abs((row.expires_at - row.created_at).total_seconds() - get_settings().session_ttl_s) < 2
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert app.client.get("/v1/me").status_code == 401
    _login(app, made["key"])
    assert app.client.get("/v1/me").status_code == 200
    assert app.client.delete(f"/v1/keys/{made['id']}", headers=admin).status_code == 204
    assert app.client.get("/v1/me").status_code == 401
    app.client.cookies.clear()

    # The cookie is Secure whenever the public address is https, even when the proxy speaks http to us.
    monkeypatch.setattr(get_settings(), "public_url", "https://hoc-tap.example.vn")
    r = app.client.post("/login", data={"key": app.key("reviewer", UNIT)}, follow_redirects=False)
    cookie = r.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    monkeypatch.setattr(get_settings(), "public_url", "http://127.0.0.1:8000")
    r = app.client.post("/login", data={"key": app.key("reviewer", UNIT)}, follow_redirects=False)
    assert "secure" not in r.headers["set-cookie"].lower()
    app.client.cookies.clear()


# ------------------------------------------------------------------------------ throttling and auth before body

def _clear_failures(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    for k in conn.scan_iter("formsvc:authfail:*"):
        conn.delete(k)


def test_wrong_keys_from_one_address_are_throttled(app: App, redis_server: RedisServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if time.time() % 60 > 50:  # the counter is per minute: do not straddle two minutes
        time.sleep(61 - time.time() % 60)
    _clear_failures(redis_server.url)
    monkeypatch.setattr(get_settings(), "auth_failures_per_minute", 5)
    good = app.key("reviewer", UNIT)
    try:
        codes = [app.client.get("/v1/records", headers=app.as_(f"fsk_{i:012x}_wrong")).status_code
                 for i in range(8)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3, codes
        r = app.client.get("/v1/me", headers=app.as_(good))  # the address is held back, whatever key it sends
        assert r.status_code == 429 and r.json()["code"] == "auth_throttled"
        assert 0 < int(r.headers["retry-after"]) <= 60 and "thử lại sau" in r.json()["message"]
        page = app.client.post("/login", data={"key": good}, follow_redirects=False)
        assert page.status_code == 429 and "thử lại sau" in page.text and page.headers["retry-after"]
        assert "set-cookie" not in page.headers
    finally:
        _clear_failures(redis_server.url)
    assert app.client.get("/v1/me", headers=app.as_(good)).status_code == 200

    # Failed logins through the form count the same way.
    monkeypatch.setattr(get_settings(), "auth_failures_per_minute", 3)
    try:
        codes = [app.client.post("/login", data={"key": "fsk_000000000000_sai"}).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429], codes
    finally:
        _clear_failures(redis_server.url)


def test_uploads_are_authenticated_before_their_body_is_read(app: App) -> None:
    """A request with a wrong key gets 401 without the server reading (and spooling) a byte of its body."""
    asgi = app.client.app
    boundary = "formsvc-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + b"\0" * 1024 + f"\r\n--{boundary}--\r\n".encode()

    async def call(key: str) -> tuple[int, bool]:
        read = False
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal read
            read = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/submissions", "raw_path": b"/v1/submissions", "query_string": b"",
                 "root_path": "", "client": ("203.0.113.9", 5000), "server": ("testserver", 80),
                 "headers": [(b"host", b"testserver"), (b"x-api-key", key.encode()),
                             (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                             (b"content-length", str(len(body)).encode())]}
        await asgi(scope, receive, send)
        return int(sent[0]["status"]), read

    assert anyio.run(call, "fsk_000000000000_sai") == (401, False)
    assert anyio.run(call, "") == (401, False)
    status, read = anyio.run(call, app.key("clerk", UNIT))
    assert read and status in (202, 422), status  # a real key: the body is read and judged


# ------------------------------------------------------------------------------------------------------ roles

ROLES = ("admin", "clerk", "reviewer", "integration")
README = Path(__file__).resolve().parents[1] / "README.md"


def _role_table() -> dict[str, dict[str, bool]]:
    """README's role table: '`METHOD /path[?after=]`' -> {role: allowed}."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Security", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in section.splitlines() if line.startswith("| Route |"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    assert tuple(columns) == ROLES, columns
    table: dict[str, dict[str, bool]] = {}
    for line in section.splitlines():
        found = re.match(r"\|\s*`([A-Z]+ /v1/[^`]*)`[^|]*\|(.*)\|\s*$", line)
        if found:
            marks = [c.strip() for c in found.group(2).split("|")]
            assert len(marks) == len(ROLES) and set(marks) <= {"✓", "–"}, line
            table[found.group(1)] = {role: mark == "✓" for role, mark in zip(ROLES, marks, strict=True)}
    return table


def test_every_route_answers_every_role_as_the_readme_table_says(app: App, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from the app's route table, so a new route cannot be left out of README's role table; each
    route is called with a key of each role on objects of that key's own unit."""
    from tests.test_service_api import PUBLIC, _api_routes, _png

    unit = "Trường THCS Vai Trò"
    table = _role_table()
    keys = {role: app.key(role, None if role == "admin" else unit) for role in ROLES}
    record = app.add_record(unit)
    job = app.client.post("/v1/submissions", headers=app.as_(keys["clerk"]),
                          files={"files": ("r.png", _png(tmp_path / "r.png", seed=5), "image/png")})
    assert job.status_code == 202, job.text
    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)
    hook = app.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/r"}, headers=app.as_(keys["clerk"]))
    monkeypatch.setattr(get_settings(), "webhook_allow_private", False)
    spare_key = app.client.post("/v1/keys", json={"role": "reviewer", "unit": unit},
                                headers=app.as_(keys["admin"])).json()["id"]
    values = {"record_id": record.id, "job_id": job.json()["id"], "hook_id": hook.json()["id"],
              "key_id": spare_key, "field_name": "subject.full_name", "form_id": "cdht-self-assessment",
              "token": "no-such-import"}
    bodies: dict[str, Any] = {"/v1/records/{record_id}": {"fields": {"scores.ct1": 7}},
                              "/v1/webhooks": {"url": "http://127.0.0.1:9/r"},
                              "/v1/keys": {"role": "reviewer", "unit": unit}, "/v1/validate": {},
                              "/v1/dossiers": {"year": 2024},
                              "/v1/records/{record_id}/confirm": {"field": "scores.ct1", "value": 7}}

    calls: list[tuple[str, str, str, dict[str, Any]]] = []
    for route in _api_routes(app.client.app.routes):  # type: ignore[attr-defined]
        if not route.path.startswith("/v1/") or route.path in PUBLIC:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            name = f"{method} {route.path}"
            path = route.path
            fmt = "csv" if "exports" in path else "docx"
            for p in re.findall(r"{(\w+)}", path):
                path = path.replace("{" + p + "}", fmt if p == "fmt" else values[p])
            kw: dict[str, Any] = {"params": {"year": 2024, "format": "docx"}}
            if route.path in ("/v1/submissions", "/v1/print-packs"):
                kw["files"] = {"files" if "sub" in path else "roster": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")}
                kw["data"] = {"form": "cdht-self-assessment"}
            elif method in ("POST", "PATCH"):
                kw["json"] = bodies.get(route.path, {})
            elif name == "DELETE /v1/records/{record_id}":
                kw["params"] = {"version": 10**6}  # 409 once the role is let in: the record stays for the others
            calls.append((name, method, path, kw))
            if name == "GET /v1/records":
                calls.append(("GET /v1/records?after=", method, path, {"params": {"after": 0}}))
    missing = sorted({name for name, *_ in calls} - set(table))
    assert not missing, f"routes missing from README's role table: {missing}"
    assert not set(table) - {name for name, *_ in calls}, "README lists routes the app does not have"

    # Admin last: its DELETEs (a key, a webhook) must not hide the other roles' answers.
    for role in ("clerk", "reviewer", "integration", "admin"):
        for name, method, path, kw in calls:
            r = app.client.request(method, path, headers=app.as_(keys[role]), **kw)
            where = f"{name} as {role}: {r.status_code} {r.text[:200]}"
            assert r.status_code < 500 and r.status_code != 401, where
            if table[name][role]:
                assert r.status_code != 403, where
            else:
                assert r.status_code == 403 and r.json()["code"] == "forbidden", where
    assert len(calls) * len(ROLES) >= 100


def test_data_folders_and_the_database_are_private_from_the_first_byte(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever process starts first (API, worker, `db upgrade`) makes the data folder 0700, the SQLite file
    0600 (its -wal/-shm copy that mode) and the file store 0700, even under a permissive umask."""
    from formsvc.db import dispose_engines, upgrade
    from formsvc.storage import get_file_store

    data = tmp_path / "deep" / "data"
    monkeypatch.setenv("FORMSVC_DATA_DIR", str(data))
    monkeypatch.delenv("FORMSVC_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    old = os.umask(0o022)
    try:
        get_file_store().put_bytes(b"scan")
        upgrade()
        with session_scope() as s:
            s.add(IdempotencyEntry(key_id="k", idem_key="i", fingerprint="f" * 64, state="pending",
                                   created_at=dt.datetime.now(dt.UTC)))
        modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
                 for p in [tmp_path / "deep", data, data / "files", *data.glob("formsvc.db*")]}
    finally:
        os.umask(old)
        dispose_engines()
        get_settings.cache_clear()
    assert modes.pop("deep") == 0o700 and modes.pop("deep/data") == 0o700 and modes.pop("deep/data/files") == 0o700
    assert "deep/data/formsvc.db" in modes and "deep/data/formsvc.db-wal" in modes
    assert set(modes.values()) == {0o600}, modes
