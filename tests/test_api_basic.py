"""The HTTP API serves criteria, forms, rendering and validation; errors are Vietnamese JSON with codes."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from formsvc.criteria import load_registry
from tests.factories import full_record
from tests.polling import wait_until
from tests.servers import RedisServer
from tests.service_app import App, service_app


class _Client:
    """The in-process API, authenticated as a clerk unless told otherwise."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.headers = app.as_(app.key("clerk", "Trường MN Tam Hưng A"))

    def get(self, path: str, **kw: Any) -> Any:
        return self.app.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.app.client.post(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[_Client]:
    with service_app(tmp_path_factory.mktemp("api"), redis_server.url, None) as app:
        yield _Client(app)


def test_health_and_criteria(client: _Client) -> None:
    health = client.get("/v1/health").json()  # no worker runs in this in-process app: the rest is up
    assert health["checks"]["database"]["ok"] and health["checks"]["redis"]["ok"], health
    ids = [s["id"] for s in client.get("/v1/criteria").json()]
    assert "cdht-324-pl4-school" in ids
    detail = client.get("/v1/criteria/cdht-324-pl4-school").json()
    assert [i["number"] for i in detail["indicators"]] == list(range(1, 11))
    missing = client.get("/v1/criteria/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "criteria_set_not_found"


def test_render_needs_a_key(client: _Client) -> None:
    r = client.app.client.post("/v1/render/cdht-minutes?format=docx")
    assert r.status_code == 401 and r.json()["code"] == "auth_missing"


@pytest.mark.slow  # LibreOffice
def test_render_pdf_and_docx(client: _Client) -> None:
    pdf = client.post("/v1/render/cdht-self-assessment", json={"year": 2024, "subject": {"full_name": "Lê Thị Mai"}})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    docx = client.post("/v1/render/cdht-minutes?format=docx")
    assert docx.status_code == 200 and docx.content.startswith(b"PK")


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/v1/render/nope", b"", 404, "form_not_found"),
    ("/v1/render/cdht-self-assessment", b"{not json", 422, "json_invalid"),
    ("/v1/render/cdht-self-assessment", b"[1, 2]", 422, "json_shape"),
    ("/v1/render/cdht-self-assessment?format=odt", b"", 422, "request_invalid"),
    ("/v1/validate", b"", 422, "json_shape"),
    ("/v1/validate", b'{"form": "x"}', 422, "record_invalid"),
])
def test_bad_requests_are_clear_4xx(client: _Client, path: str, body: bytes, status: int, code: str) -> None:
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["message"]


def test_render_with_unknown_group_is_422_listing_the_groups(client: _Client) -> None:
    r = client.post("/v1/render/cdht-self-assessment", json={"subject": {"full_name": "A", "group": "officials"}})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "group_unknown" and "Đối tượng «officials»" in body["message"]
    assert body["detail"]["allowed"] == ["farmer", "worker", "official", "learner"]
    assert "official hoặc 3 (Cán bộ, công chức, viên chức, người lao động)" in body["message"]


def test_oversized_json_is_413(client: _Client) -> None:
    big = b'{"notes": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    r = client.post("/v1/render/cdht-unit-report", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


def test_validate_over_http(client: _Client) -> None:
    cset = load_registry().get("cdht-324-pl4")
    r = client.post("/v1/validate", json=full_record(cset, score=8).model_dump(mode="json"))
    assert r.status_code == 200 and r.json()["result"]["recognised"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.service  # `formsvc up`: Redis, the API and two workers as processes
def test_up_starts_redis_and_api_and_stops_cleanly(tmp_path: Path) -> None:
    api_port, redis_port = _free_port(), _free_port()
    data = tmp_path / "data"  # made by `up` itself: private (0700)
    env = {**os.environ, "FORMSVC_DATA_DIR": str(data), "FORMSVC_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    exe = Path(sys.executable).with_name("formsvc")
    proc = subprocess.Popen([str(exe), "up", "--port", str(api_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{api_port}/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 60, 0.2, "the API to come up")
        # Redis asks for the password `up` made on first start (kept 0600 beside the data, never on a command line).
        ping = subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True, text=True, check=False)
        assert "NOAUTH" in ping.stdout + ping.stderr
        password_file = data / "redis-password.txt"
        password = password_file.read_text().strip()
        assert len(password) >= 32 and stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert not any(password in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                       for pid in os.listdir("/proc") if pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists())
        redis_cli = ["redis-cli", "-p", str(redis_port), "--no-auth-warning", "-a", password]
        ping = subprocess.run([*redis_cli, "ping"], capture_output=True, text=True, check=False)
        assert ping.stdout.strip() == "PONG"
        key_file = data / "first-admin-key.txt"
        wait_until(key_file.exists, 30, what="the first admin key file")
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "formsvc.db").stat().st_mode) == 0o600
        me = httpx.get(f"http://127.0.0.1:{api_port}/v1/me", headers={"X-API-Key": key}, timeout=5)
        assert me.status_code == 200 and me.json()["role"] == "admin"
        def workers() -> str:
            return subprocess.run([*redis_cli, "smembers", "rq:workers"], capture_output=True, text=True,
                                  check=False).stdout

        wait_until(lambda: workers().count("\n") >= 2, 30, 0.3, "two rq workers registered")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{api_port}" in out
    assert key in out and out.count(key) == 1  # shown once, on first start
    assert password not in out and f"redis://:***@127.0.0.1:{redis_port}/0" in out

    def redis_gone() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", redis_port)) != 0

    wait_until(redis_gone, 10, what="redis to stop with `up` (left running?)")
