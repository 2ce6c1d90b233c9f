"""Functions rq workers run, by dotted name (see formsvc.service.queue.JOB_FUNCTION)."""

from __future__ import annotations

from formsvc.extract.budget import limit_worker_memory
from formsvc.service.processing import run_job as _run_job
from formsvc.settings import get_settings


def run_job(job_id: str, attempt: int) -> str:
    # rq runs each job in a work horse forked for it: the cap lives and dies with this job's process, and the
    # worker that forked it takes the next job whatever this one did.
    limit_worker_memory(get_settings().worker_memory_mb)
    return _run_job(job_id, attempt)
