"""Functions rq workers run, by dotted name (see formsvc.service.queue.JOB_FUNCTION)."""

from __future__ import annotations

from formsvc.service.processing import run_job as _run_job


def run_job(job_id: str, attempt: int) -> str:
    return _run_job(job_id, attempt)
