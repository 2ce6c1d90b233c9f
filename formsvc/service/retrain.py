"""Retraining the score recogniser on what reviewers confirmed: from the CLI (`formsvc digits retrain`, in that
process) or the admin page (a 'retrain' job a worker runs: minutes of numpy work have no place in the API
process). One run at a time per deployment (a lock file beside the model, and no second job while one is
queued or running), the last run's report kept for the admin page."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import func, select

from formsvc.db.engine import session_scope
from formsvc.db.tables import Job, ReviewSample, utcnow
from formsvc.errors import ConflictError, NotFoundError
from formsvc.extract import digits
from formsvc.service.auth import Principal
from formsvc.service.jobs import create_job
from formsvc.service.queue import enqueue
from formsvc.service.review_queue import samples
from formsvc.storage import get_file_store

log = logging.getLogger(__name__)
JOB_KIND = "retrain"
JOB_UNIT = ""  # the recogniser is the deployment's, no unit's: only unscoped (admin) keys see the job
BUSY = "Đang học lại từ các ô đã sửa; hãy đợi lần này xong."


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
            raise ConflictError(BUSY, code="retrain_running") from exc
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


def _pending_job() -> str | None:
    with session_scope() as s:
        return s.scalar(select(Job.id).where(Job.kind == JOB_KIND, Job.status.in_(("queued", "running"))).limit(1))


def start_job(who: Principal) -> str:
    """The admin action: queue a retrain job for a worker; its id. ConflictError while a job is queued or running
    or a run (CLI or worker) holds the lock."""
    if _pending_job() is not None or running():
        raise ConflictError(BUSY, code="retrain_running")
    with session_scope() as s:
        # Every request is a new job (a retrain of the same answers after another retrain may decide otherwise).
        job, _ = create_job(s, who, kind=JOB_KIND, unit=JOB_UNIT, uploads=[],
                            params={"requested_at": utcnow().isoformat()})
        job_id = job.id
    enqueue(job_id, 1)  # Redis away: the janitor enqueues what the database says is queued
    return job_id


def status() -> dict[str, Any]:
    """What the admin page shows: answers kept, the model in use, whether a run is going, the last report."""
    with session_scope() as s:
        kept = s.scalar(select(func.count()).select_from(ReviewSample).where(ReviewSample.crop_sha256.is_not(None)))
    tuned = digits.tuned_cnn_path()
    in_use = "tuned" if digits._model().tuned else "shipped"
    meta: dict[str, Any] | None = None
    if in_use == "tuned":
        meta = json.loads(tuned.with_suffix(".json").read_text(encoding="utf-8"))
    last = json.loads(_report_path().read_text(encoding="utf-8")) if _report_path().is_file() else None
    return {"samples": kept or 0, "model": in_use, "tuned": meta, "running": running() or _pending_job() is not None,
            "last": last}
