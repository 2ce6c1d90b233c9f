"""GET /v1/health tells which part is down without saying anything secret; a worker's warm state shows in it;
logs come out as JSON lines carrying the job and stage timings; every setting is in the README's table."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rq import Worker

from formsvc.extract.pipeline import extract_files
from formsvc.logs import JsonLines, bound, configure, stage
from formsvc.service.queue import get_queue, get_redis
from formsvc.service.warm import WARM_KEY, engines_loaded, publish_warm_state, warm_up
from formsvc.settings import Settings, get_settings
from tests.servers import RedisServer, free_port
from tests.service_app import App, service_app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("health"), redis_server.url, None) as a:
        yield a


def _health(app: App) -> dict[str, object]:
    from formsvc.service import health

    health._cache = None  # the 1 s cache would hide the change this test just made
    r = app.client.get("/v1/health")  # no key: public
    assert r.status_code == 200
    return dict(r.json())


def _no_secrets(body: str) -> None:
    s = get_settings()
    for secret in (s.redis_url, str(s.data_dir), s.resolved_database_url, s.tessdata_dir, "127.0.0.1"):
        assert secret not in body, secret


def test_health_without_workers_then_with_a_warm_one(app: App) -> None:
    body = _health(app)
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"]["ok"] and checks["redis"]["ok"] and checks["tesseract_models"]["files"]
    assert checks["workers"] == {**checks["workers"], "ok": False, "count": 0}
    assert body["status"] == "degraded"
    _no_secrets(json.dumps(body))

    # A worker registers the way `formsvc worker` does: rq's registration, then its warm state.
    worker = Worker([get_queue()], connection=get_redis(), name=f"health-{free_port()}")
    worker.register_birth()
    try:
        publish_warm_state(worker.name, {})  # started, nothing loaded yet (as with warm-up switched off)
        body = _health(app)
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["workers"]["ok"] and checks["workers"]["count"] == 1
        assert checks["tesseract_models"]["workers_loaded"] == (1 if engines_loaded() else 0) and body["status"] == (
            "ok" if engines_loaded() else "degraded")
        timings = warm_up()
        assert engines_loaded() >= 5 and "tesseract_page" in timings
        publish_warm_state(worker.name, timings)
        body = _health(app)
        assert body["status"] == "ok", body
        assert body["checks"]["tesseract_models"] == {**body["checks"]["tesseract_models"],  # type: ignore[index]
                                                      "ok": True, "workers_loaded": 1}
    finally:
        worker.register_death()
        get_redis().delete(WARM_KEY.format(worker.name))


def test_health_says_which_part_is_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis away (nothing listens on its port): the API still answers 200, in time, naming only the part."""
    monkeypatch.setenv("FORMSVC_HEALTH_TIMEOUT_S", "3")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with service_app(tmp_path, dead_redis, None) as app:
        body = _health(app)
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is False and checks["workers"]["ok"] is False
    assert body["status"] == "degraded"
    _no_secrets(json.dumps(body))


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.setenv("FORMSVC_LOG_FORMAT", "json")
    get_settings.cache_clear()
    root = logging.getLogger()
    old_level = root.level
    configure()
    [handler] = [h for h in root.handlers if getattr(h, "_formsvc", False)]
    stream = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        get_settings.cache_clear()


def test_json_lines_carry_the_job_file_page_and_stage_timings(json_logs: io.StringIO, tmp_path: Path) -> None:
    import cv2

    page = np.full((1169, 827), 255, np.uint8)
    cv2.putText(page, "Khong phai bieu mau", (80, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 2)
    scan = tmp_path / "trang lạ.png"
    cv2.imwrite(str(scan), page)
    log = logging.getLogger("formsvc.test")
    with bound(job_id="job-123", attempt=2), stage(log, "extract", files=1) as fields:
        result = extract_files([scan])
        fields["documents"] = len(result.documents)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    pages = [x for x in lines if x.get("stage") == "page"]
    assert len(pages) == 1, lines
    assert pages[0]["job_id"] == "job-123" and pages[0]["attempt"] == 2
    assert pages[0]["file"] == "trang lạ.png" and pages[0]["page"] == 1 and pages[0]["ms"] > 0
    assert pages[0]["outcome"] == "page_unidentified"
    [whole] = [x for x in lines if x.get("stage") == "extract"]
    assert whole["ms"] >= pages[0]["ms"] and whole["documents"] == 0 and whole["job_id"] == "job-123"
    assert whole["level"] == "INFO" and whole["ts"].endswith("+00:00")


def test_a_failed_stage_is_logged_as_failed_with_its_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    log = logging.getLogger("formsvc.test.fail")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with pytest.raises(ValueError), bound(job_id="j"), stage(log, "render_pack"):
            raise ValueError("boom")
        log.exception("after", exc_info=(ValueError, ValueError("x"), None))
    finally:
        log.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["stage"] == "render_pack" and first["failed"] is True and first["job_id"] == "j"
    assert "ValueError" in second["exc"] and "job_id" not in second


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| Setting |"):]
    listed = set(re.findall(r"^\| `FORMSVC_([A-Z0-9_]+)` \|", table, flags=re.M))
    declared = {name.upper() for name in Settings.model_fields}
    assert declared == listed, (declared - listed, listed - declared)


def _digits_image() -> np.ndarray:
    import cv2

    img = np.full((60, 220), 255, np.uint8)
    cv2.putText(img, "4071", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 0, 3)
    return img


def _fork_read(crash: bool) -> int:
    """Read digits in a forked child with the engines the parent loaded; the exit status says what it read
    (0: "4071"). With `crash`, the child kills itself with SIGSEGV in the middle of its work, as a Tesseract
    crash would."""
    import os
    import signal

    from formsvc.extract.ocr import read_numbers_twice

    pid = os.fork()
    if pid == 0:  # the work horse
        code = 1
        try:
            if crash:
                import faulthandler

                faulthandler.disable()  # the crash is the test's own: no traceback in the test output
                os.kill(os.getpid(), signal.SIGSEGV)
            first, _ = read_numbers_twice([_digits_image()])
            code = 0 if first[0].text == "4071" else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def test_warm_engines_survive_the_fork_and_a_crashed_child() -> None:
    """What `formsvc worker` relies on: engines loaded before the fork work in the forked child without being
    loaded again, and a child that crashes leaves the parent's engines as they were for the next child."""
    import os

    warm_up()
    loaded = engines_loaded()
    assert loaded >= 5
    assert _fork_read(crash=False) == 0
    crashed = _fork_read(crash=True)
    assert os.WIFSIGNALED(crashed) and os.WTERMSIG(crashed) == 11
    assert _fork_read(crash=False) == 0 and engines_loaded() == loaded


def test_a_roster_longer_than_the_setting_is_refused_without_reading_it_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from formsvc.errors import InputError
    from formsvc.render.roster import read_roster

    monkeypatch.setenv("FORMSVC_MAX_ROSTER_ROWS", "3")
    get_settings.cache_clear()
    try:
        head = "Mã,Họ và tên,Năm sinh\n"
        fits = tmp_path / "vua.csv"
        fits.write_text(head + "".join(f"nv-{i},Nguyễn Văn {chr(65 + i)},1980\n" for i in range(3)), encoding="utf-8")
        assert len(read_roster(fits).people) == 3
        too_long = tmp_path / "dai.csv"
        too_long.write_text(head + "".join(f"nv-{i},Nguyễn Văn A,1980\n" for i in range(100_000)), encoding="utf-8")
        with pytest.raises(InputError) as err:
            read_roster(too_long)
        assert err.value.code == "roster_too_many_rows" and "3 dòng" in err.value.message
    finally:
        get_settings.cache_clear()
