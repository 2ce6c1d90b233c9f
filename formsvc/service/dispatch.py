"""The dispatcher loop: publishes feed positions, delivers outbox rows to webhooks and re-enqueues jobs whose
worker died.

Any number of dispatchers may run against one database: rows are claimed with a lease, so each delivery
attempt is made by one of them. The lease is sized to the batch (every delivery of one subscription may take
the whole send time, one after the other) and checked again, and renewed, just before each send: a delivery
whose lease ran out is not sent by its old holder, whoever holds it now sends it. Deliveries of the same record
to the same subscription go out in change order: a later one waits while an earlier one is still pending.
Subscriptions are served in parallel (a bounded pool), so one slow receiver does not hold up the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from formsvc.api.idempotency import purge_expired
from formsvc.db.engine import session_scope
from formsvc.db.tables import Change, Delivery, Job, Webhook, utcnow
from formsvc.errors import FormsvcError
from formsvc.service.changes import publish_pending
from formsvc.service.jobs import stale_jobs
from formsvc.service.queue import enqueue, rq_job_id, waiting_job_ids
from formsvc.service.sessions import purge_sessions
from formsvc.service.webhooks import redact_url, resolve_target
from formsvc.settings import get_settings

log = logging.getLogger(__name__)


def send_time() -> dt.timedelta:
    """The longest one send may take: httpx's timeout bounds each phase (connect, write, read, pool) separately,
    so a receiver answering slowly in every phase takes up to four times it; plus a margin for the database."""
    return dt.timedelta(seconds=4 * get_settings().webhook_timeout_s + 5)


def batch_lease(batch: int) -> dt.timedelta:
    """A batch's lease: its deliveries may all belong to one subscription, sent one after the other."""
    return send_time() * max(1, batch)


class RedactUrls(logging.Filter):
    """httpx logs every request at INFO with its full URL, and a webhook URL's path or query often holds the
    receiver's token: those log lines keep only scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


_REDACT = RedactUrls()
for _name in ("httpx", "httpcore"):
    if _REDACT not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_REDACT)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Receivers recompute HMAC-SHA256(secret, "<timestamp>.<body>") and compare."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def backoff(attempts: int) -> float:
    s = get_settings()
    delay = min(s.webhook_backoff_base_s * (2 ** max(0, attempts - 1)), s.webhook_backoff_max_s)
    return delay * (1 + random.random() / 4)


def claim(owner: str, limit: int | None = None) -> list[int]:
    limit = limit or get_settings().webhook_batch
    now = utcnow()
    earlier = aliased(Delivery)
    blocked = exists().where(and_(earlier.webhook_id == Delivery.webhook_id, earlier.record_id == Delivery.record_id,
                                  earlier.status == "pending", earlier.change_seq < Delivery.change_seq))
    with session_scope() as s:
        ids = list(s.scalars(select(Delivery.id).where(
            Delivery.status == "pending", Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now), ~blocked,
        ).order_by(Delivery.change_seq).limit(limit)))
        if not ids:
            return []
        s.execute(update(Delivery).where(Delivery.id.in_(ids), or_(Delivery.lease_until.is_(None),
                                                                   Delivery.lease_until < now))
                  .values(lease_until=now + batch_lease(len(ids)), lease_owner=owner))
    with session_scope() as s:
        return list(s.scalars(select(Delivery.id).where(Delivery.id.in_(ids), Delivery.lease_owner == owner,
                                                        Delivery.lease_until > now)
                              .order_by(Delivery.change_seq)))


def _renew(delivery_id: int, owner: str) -> bool:
    """At send time: still ours and still pending? Then the lease is renewed to cover this one send. Atomic (a
    conditional UPDATE), so of two dispatchers that both think they hold it, exactly one goes on."""
    now = utcnow()
    with session_scope() as s:
        renewed = s.execute(update(Delivery).where(
            Delivery.id == delivery_id, Delivery.status == "pending", Delivery.lease_owner == owner,
            Delivery.lease_until > now).values(lease_until=now + send_time()))
        return bool(getattr(renewed, "rowcount", 0))


def deliver(delivery_id: int, client: httpx.Client, owner: str | None = None) -> bool:
    """Send one delivery. With `owner`, only while that dispatcher's lease on it holds (checked and renewed
    first); without, unconditionally (tests and tools that send one delivery by hand)."""
    if owner is not None and not _renew(delivery_id, owner):
        log.info("delivery %s: lease lost before sending; left to its new holder", delivery_id)
        return False
    with session_scope() as s:
        d = s.get(Delivery, delivery_id)
        if d is None or d.status != "pending":
            return False
        hook = s.get(Webhook, d.webhook_id)
        change = s.get(Change, d.change_seq)
        if hook is None or change is None:
            return False
        url, secret, payload, event_id, kind = hook.url, hook.secret, change.payload, change.event_id, change.kind
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    ts = int(time.time())
    error: str | None = None
    try:
        # Resolved and checked again at send time (DNS may now point elsewhere), then the connection goes to
        # exactly the address checked: a name that answers public-then-loopback cannot reach 127.0.0.1.
        target = resolve_target(url)
        extensions = {"sni_hostname": target.hostname} if url.lower().startswith("https:") else {}
        resp = client.post(target.connect_url, content=body, extensions=extensions, headers={
            "Host": target.host_header, "Content-Type": "application/json", "User-Agent": "formsvc-webhook/1",
            "X-Formsvc-Event-Id": event_id, "X-Formsvc-Event": kind, "X-Formsvc-Timestamp": str(ts),
            "X-Formsvc-Signature": sign(secret, ts, body)})
        if not 200 <= resp.status_code < 300:
            error = f"HTTP {resp.status_code}"
    except FormsvcError as exc:
        error = exc.message
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".replace(url, redact_url(url))[:500]
    with session_scope() as s:
        d = s.get(Delivery, delivery_id, with_for_update=True)
        if d is None or d.status != "pending":
            return error is None
        d.attempts += 1
        d.lease_until = d.lease_owner = None
        if error is None:
            d.status, d.delivered_at, d.last_error = "delivered", utcnow(), None
            return True
        d.last_error = error
        if d.attempts >= get_settings().webhook_max_attempts:
            d.status = "dead"
            log.warning("delivery %s dead after %s attempts: %s", delivery_id, d.attempts, error)
        else:
            d.next_attempt_at = utcnow() + dt.timedelta(seconds=backoff(d.attempts))
    return False


def requeue_stale_jobs() -> int:
    """Jobs whose worker vanished (killed, machine lost) or whose queue entry Redis lost get a new attempt."""
    settings = get_settings()
    count = 0
    with session_scope() as s:
        candidates = [(j.id, j.attempts, j.status) for j in
                      stale_jobs(s, dt.timedelta(seconds=settings.job_stale_s))]
    waiting = waiting_job_ids() if any(status == "queued" for _, _, status in candidates) else set()
    for job_id, attempt, status in candidates:
        if status == "queued" and (waiting is None or rq_job_id(job_id, attempt) in waiting):
            continue  # still in line (or Redis cannot tell us now): leave it
        with session_scope() as s:
            job = s.get(Job, job_id, with_for_update=True)
            if job is None or job.attempts != attempt or job.status not in ("queued", "running"):
                continue
            if attempt >= settings.job_max_attempts:
                job.status, job.finished_at = "failed", utcnow()
                job.error_code = "job_attempts_exhausted"
                job.error_message = f"Xử lý bị gián đoạn {attempt} lần; hãy tải lên lại hoặc báo quản trị."
                continue
            job.attempts, job.status, job.enqueued_at, job.heartbeat_at = attempt + 1, "queued", utcnow(), None
            job.pages_done = 0
        log.warning("job %s silent too long (attempt %s); enqueuing attempt %s", job_id, attempt, attempt + 1)
        enqueue(job_id, attempt + 1)
        count += 1
    return count


def _subscription_order(ids: list[int]) -> list[list[int]]:
    """The claimed deliveries grouped by subscription, each group in change order."""
    with session_scope() as s:
        rows = s.execute(select(Delivery.id, Delivery.webhook_id).where(Delivery.id.in_(ids))
                         .order_by(Delivery.change_seq)).all()
    groups: dict[str, list[int]] = defaultdict(list)
    for delivery_id, webhook_id in rows:
        groups[webhook_id].append(delivery_id)
    return list(groups.values())


def run_once(owner: str, client: httpx.Client, pool: ThreadPoolExecutor | None = None) -> int:
    publish_pending()
    ids = claim(owner)
    if not ids:
        return 0

    def serve(group: list[int]) -> int:
        return sum(deliver(delivery_id, client, owner) for delivery_id in group)

    groups = _subscription_order(ids)
    if pool is None or len(groups) == 1:
        return sum(serve(g) for g in groups)
    return sum(pool.map(serve, groups))


def run_forever(stop: threading.Event | None = None) -> None:
    settings = get_settings()
    owner = uuid.uuid4().hex
    stop = stop or threading.Event()
    last_janitor = 0.0
    limits = httpx.Limits(max_connections=settings.webhook_parallel * 2)
    with httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False, limits=limits) as client, \
            ThreadPoolExecutor(max_workers=settings.webhook_parallel, thread_name_prefix="webhook") as pool:
        while not stop.is_set():
            try:
                run_once(owner, client, pool)
                if time.monotonic() - last_janitor > min(10.0, settings.job_stale_s / 2):
                    last_janitor = time.monotonic()
                    requeue_stale_jobs()
                    purge_expired()
                    with session_scope() as s:
                        purge_sessions(s)
            except FormsvcError as exc:  # database briefly unavailable: wait and go on
                log.warning("dispatcher: %s", exc.message)
            stop.wait(settings.dispatch_interval_s)
