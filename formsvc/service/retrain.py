"""Retraining the score recogniser on what reviewers confirmed: from the CLI (`formsvc digits retrain`) or the
admin page (in the background of the API process). One run at a time per deployment (a lock file beside the
model), the last run's report kept for the admin page."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import func, select

from formsvc.db.engine import session_scope
from formsvc.db.tables import ReviewSample
from formsvc.errors import ConflictError, NotFoundError
from formsvc.extract import digits
from formsvc.service.review_queue import samples
from formsvc.storage import get_file_store

log = logging.getLogger(__name__)


def _dir() -> Path:
    return digits.tuned_cnn_path().parent


def _report_path() -> Path:
    return _dir() / "last_retrain.json"


@contextmanager
def _exclusive() -> Iterator[None]:
    _dir().mkdir(parents=True, exist_ok=True)
    with (_dir() / "retrain.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConflictError("Đang học lại từ các ô đã sửa; hãy đợi lần này xong.", code="retrain_running") from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def running() -> bool:
    try:
        with _exclusive():
            return False
    except ConflictError:
        return True


def load_samples(unit: str | None = None) -> list[tuple[float | None, np.ndarray]]:
    """Every kept answer with its box crop decoded; crops gone from the store are left out."""
    store = get_file_store()
    with session_scope() as s:
        rows = [(r.value, r.crop_sha256) for r in samples(s, unit)]
    out: list[tuple[float | None, np.ndarray]] = []
    for value, sha in rows:
        try:
            img = cv2.imdecode(np.frombuffer(store.read_bytes(str(sha)), np.uint8), cv2.IMREAD_GRAYSCALE)
        except NotFoundError:
            continue
        if img is not None and isinstance(value, int | float | None) and not isinstance(value, bool):
            out.append((None if value is None else float(value), img))
    return out


def run(*, epochs: int | None = None) -> dict[str, Any]:
    """Retrain now (this process); the report, also kept for the admin page."""
    from formsvc.extract import digits_retrain

    with _exclusive():
        report, _ = digits_retrain.retrain(load_samples(), epochs=epochs or digits_retrain.EPOCHS)
        data = report.as_json()
        tmp = _report_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, _report_path())
        return data


def start_background() -> None:
    """Start a run in a thread of this process; ConflictError when one is already running (here or elsewhere)."""
    if running():
        raise ConflictError("Đang học lại từ các ô đã sửa; hãy đợi lần này xong.", code="retrain_running")

    def work() -> None:
        try:
            run()
        except ConflictError:
            log.info("digits retrain: another process started first")  # its report will be shown
        except Exception:  # a thread's exception is otherwise lost: the admin page would wait forever
            log.exception("digits retrain failed")

    threading.Thread(target=work, name="digits-retrain", daemon=True).start()


def status() -> dict[str, Any]:
    """What the admin page shows: answers kept, the model in use, whether a run is going, the last report."""
    with session_scope() as s:
        kept = s.scalar(select(func.count()).select_from(ReviewSample).where(ReviewSample.crop_sha256.is_not(None)))
    tuned = digits.tuned_cnn_path()
    in_use = "tuned" if digits._cnn() is not digits._shipped_cnn() else "shipped"
    meta: dict[str, Any] | None = None
    if in_use == "tuned":
        meta = json.loads(tuned.with_suffix(".json").read_text(encoding="utf-8"))
    last = json.loads(_report_path().read_text(encoding="utf-8")) if _report_path().is_file() else None
    return {"samples": kept or 0, "model": in_use, "tuned": meta, "running": running(), "last": last}
