"""Learning from reviewers' corrections: a worse model is refused, a tuned model is used only when whole, the
shipped model is always the fallback, and the admin action runs in the background."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from formsvc.extract import digits, digits_retrain
from formsvc.extract.digit_synth import compose_box
from formsvc.extract.digits_train import BOX, TRAIN, box_values, mnist_glyphs
from formsvc.settings import get_settings
from tests.servers import RedisServer
from tests.service_app import service_app

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FORMSVC_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _answers(n: int, seed: int, *, poisoned: bool) -> list[tuple[float | None, np.ndarray]]:
    """Boxes in real handwriting (training positions: allowed), labelled as written or, poisoned, with every
    digit shifted by one (7,5 -> 8,6)."""
    rng = np.random.default_rng(seed)
    glyph = mnist_glyphs(TRAIN, augment=True)
    out: list[tuple[float | None, np.ndarray]] = []
    for _ in range(n):
        text = box_values(rng)
        img = compose_box(text, BOX, rng, glyph)
        if poisoned:
            text = "".join(str((int(c) + 1) % 10) if c.isdigit() else c for c in text)
        out.append((float(text.replace(",", ".")), img))
    return out


def test_answers_are_cut_into_digits_as_reading_cuts_them() -> None:
    answers = _answers(40, 3, poisoned=False)
    x, y, used, glyphs = digits_retrain.glyph_set(answers)
    assert used >= 36  # a few boxes whose ink ran together are left out, not guessed
    assert used <= glyphs <= 3 * used
    assert x.shape == (len(y), 784) and set(np.unique(y)) <= set(range(10))
    assert digits_retrain.digits_of(7.5) == "75" and digits_retrain.digits_of(10) == "10"
    blank = np.full(BOX, 255, np.uint8)
    assert digits_retrain.glyph_set([(5.0, blank), (None, answers[0][1])])[2] == 0


def test_a_poisoned_set_of_corrections_is_refused(data_dir: Path) -> None:
    report, params = digits_retrain.retrain(_answers(200, 5, poisoned=True), epochs=3, boxes=300)
    assert params is not None and report.candidate is not None
    assert report.used >= 150
    assert report.shipped is not None and report.candidate < report.shipped, report  # the poison did harm ...
    assert not report.accepted and "không dùng" in report.reason  # ... and was refused
    assert not digits.tuned_cnn_path().exists()
    assert digits._cnn() is digits._shipped_cnn()


def test_too_few_answers_train_nothing(data_dir: Path) -> None:
    report, params = digits_retrain.retrain(_answers(3, 6, poisoned=False), boxes=20)
    assert params is None and not report.accepted and report.candidate is None
    assert "Chưa đủ" in report.reason


def test_a_tuned_model_is_used_only_when_whole_and_fitting(data_dir: Path) -> None:
    shipped = digits._shipped_cnn()
    assert shipped is not None
    report = digits_retrain.RetrainReport(0, 0, 0, 0.9, 0.9, 0.95, True, "ok", 1, "now")
    tuned: dict[str, np.ndarray] = {k: v * 1.01 for k, v in shipped.items()}
    path = digits_retrain.save_tuned(tuned, report)
    assert path.parent == data_dir / "digits"
    in_use = digits._cnn()
    assert in_use is not shipped and in_use is not None
    assert np.allclose(in_use["f2w"], shipped["f2w"] * 1.01)
    vec = np.zeros((1, 784), np.float32)
    vec[0, 300:320] = 1
    now = digits.classify_cnn(vec)
    assert now is not None and not np.allclose(now, _with(shipped, vec))

    raw = path.read_bytes()
    path.write_bytes(raw[:-10])  # torn: the hash no longer matches
    assert digits._cnn() is shipped
    path.write_bytes(raw)
    assert digits._cnn() is not shipped
    wrong: dict[str, np.ndarray] = {**tuned, "f2w": np.zeros((64, 10), np.float32)}  # does not fit the network
    digits_retrain.save_tuned(wrong, report)
    assert digits._cnn() is shipped
    nan: dict[str, np.ndarray] = {**tuned, "f2b": np.full(10, np.nan, np.float32)}
    digits_retrain.save_tuned(nan, report)
    assert digits._cnn() is shipped
    path.unlink()
    assert digits._cnn() is shipped


def _with(params: dict[str, np.ndarray], vec: np.ndarray) -> np.ndarray:
    with digits.using_cnn(params):
        out = digits.classify_cnn(vec)
    assert out is not None
    return out


def test_the_admin_action_runs_in_the_background_and_reports(tmp_path: Path, redis_server: RedisServer) -> None:
    with service_app(tmp_path, redis_server.url, None) as app:
        admin, reviewer = app.key("admin"), app.key("reviewer", "Trường A")
        assert app.client.post("/v1/admin/digits/retrain", headers=app.as_(reviewer)).status_code == 403
        st = app.client.get("/v1/admin/digits", headers=app.as_(admin)).json()
        assert st == {"samples": 0, "model": "shipped", "tuned": None, "running": False, "last": None}
        r = app.client.post("/v1/admin/digits/retrain", headers=app.as_(admin))
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 300
        while (st := app.client.get("/v1/admin/digits", headers=app.as_(admin)).json())["running"] or \
                st["last"] is None:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert not st["last"]["accepted"] and "Chưa đủ" in st["last"]["reason"] and st["model"] == "shipped"


def test_the_cli_retrains_from_the_stored_answers_and_reports(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`formsvc digits retrain` reads the kept answers (crops from the file store) and prints the report;
    `formsvc digits status` shows the answers kept and the model in use."""
    import json

    import cv2
    from typer.testing import CliRunner

    from formsvc.cli import app
    from formsvc.db import dispose_engines, session_scope, upgrade
    from formsvc.db.tables import ReviewSample
    from formsvc.storage import get_file_store
    from tests.service_app import store_sample_record

    monkeypatch.delenv("FORMSVC_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    dispose_engines()
    upgrade()
    try:
        row = store_sample_record("Trường A")
        store = get_file_store()
        with session_scope() as s:
            for value, img in _answers(4, 8, poisoned=False):
                sha = store.put_bytes(cv2.imencode(".png", img)[1].tobytes())
                s.add(ReviewSample(record_id=row.id, unit="Trường A", field="scores.ct1", value=value,
                                   read_value=value, crop_sha256=sha, key_id="k"))
        res = CliRunner().invoke(app, ["digits", "retrain"])
        assert res.exit_code == 0, res.output
        report = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
        assert report["samples"] == 4 and report["used"] >= 3 and not report["accepted"]
        assert "Chưa đủ ô đã xác nhận" in report["reason"]
        status = CliRunner().invoke(app, ["digits", "status"])
        assert status.exit_code == 0, status.output
        shown = json.loads(status.stdout)
        assert shown["samples"] == 4 and shown["model"] == "shipped" and shown["last"]["samples"] == 4
    finally:
        dispose_engines()
