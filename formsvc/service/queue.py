"""The rq queue. The database is the source of truth for jobs; Redis only carries 'work on job X, attempt N'.

So a lost Redis (restart without persistence) loses no work: the janitor re-enqueues what the database
says is still to do.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from formsvc.settings import get_settings

log = logging.getLogger(__name__)
JOB_FUNCTION = "worker.jobs.run_job"
# The only functions a worker runs. rq would import and call any dotted name a queued job carries, so anything
# that can write to Redis could run code as the worker; with this list it can at most ask for our own jobs.
ALLOWED_FUNCTIONS = frozenset({JOB_FUNCTION})


class JobRefused(RuntimeError):
    """A queued job names a function (or callback) that is not one of ours: it is failed, never run."""


class SafeJob(Job):
    """rq's Job, limited to ALLOWED_FUNCTIONS, with no callbacks. Paired with the JSON serializer: rq's default
    (pickle) runs code while *loading* a job, before any check could look at it."""

    @property
    def func(self) -> Any:
        name = self.func_name
        if name not in ALLOWED_FUNCTIONS or self.instance is not None:
            log.error("refused queued job %s: function %r is not a formsvc job", self.id, name)
            raise JobRefused(f"job function {name!r} is not allowed")
        return super().func

    # Callbacks are dotted names too; formsvc uses none, so whatever a job carries there is ignored.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


@lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=10)


def get_redis() -> Redis:
    return _redis(get_settings().redis_url)


def get_queue() -> Queue:
    return Queue(get_settings().queue_name, connection=get_redis(), job_class=SafeJob, serializer=JSONSerializer)


def rq_job_id(job_id: str, attempt: int) -> str:
    return f"{job_id}-{attempt}"


def enqueue(job_id: str, attempt: int) -> bool:
    """Ask a worker to run `attempt` of job `job_id`; False (logged) when Redis cannot be reached now."""
    s = get_settings()
    try:
        get_queue().enqueue_call(JOB_FUNCTION, args=(job_id, attempt), job_id=rq_job_id(job_id, attempt),
                                 timeout=s.job_timeout_s, result_ttl=s.job_result_ttl_s,
                                 failure_ttl=s.job_failure_ttl_s,
                                 description=f"formsvc job {job_id} attempt {attempt}")
        return True
    except RedisError as exc:
        log.warning("queue unavailable, job %s stays queued in the database: %s", job_id, exc)
        return False


def waiting_job_ids() -> set[str] | None:
    """rq ids of every attempt still queued or running, in two Redis calls; None when Redis cannot say."""
    from rq.registry import StartedJobRegistry

    try:
        queue = get_queue()
        return set(queue.get_job_ids()) | set(StartedJobRegistry(queue=queue).get_job_ids())
    except RedisError:
        return None
