"""Record changes: one row per change, plus the webhook outbox rows for it.

Both are written in the caller's transaction, beside the record change itself: if the record change
commits, its event exists and will be delivered; if it rolls back, no event was ever visible.

Writers take no global lock. The pull feed needs positions that become visible in increasing order (a reader
holding a cursor must never see position 12 commit after it read 13), and insertion ids do not give that once
writers run in parallel. So positions are handed out after commit by `publish_changes`, the relay: one
publisher at a time numbers the committed, unpublished changes in insertion order. The feed publishes before
it reads and the dispatcher publishes on every turn, so a change is in the feed as soon as anyone looks.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from formsvc.db.engine import is_postgres, session_scope
from formsvc.db.tables import Change, Delivery, RecordRow, Webhook, utcnow

EVENT_KINDS = ("record.created", "record.corrected", "record.revalidated", "record.approved", "record.deleted")


def record_view(row: RecordRow) -> dict[str, Any]:
    """The record as the API, the feed and webhooks show it."""
    data = dict(row.data)
    data["id"] = row.id
    return {
        "id": row.id,
        "unit": row.unit,
        "job_id": row.job_id,
        "version": row.version,
        "status": row.status,
        "approved": row.approved,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "change_seq": row.change_seq,
        "record": data,
    }


def record_change(session: Session, row: RecordRow, kind: str) -> Change:
    """Append a change for `row` (already flushed, version already bumped) and its outbox deliveries."""
    assert kind in EVENT_KINDS
    session.flush()
    change = Change(event_id=str(uuid.uuid4()), record_id=row.id, unit=row.unit, kind=kind, version=row.version,
                    at=utcnow(), payload={})
    session.add(change)
    session.flush()
    change.payload = {"id": change.event_id, "type": kind, "occurred_at": change.at.isoformat(),
                      "sequence": change.seq, "record": record_view(row)}
    # The feed position is given after commit (publish_changes): the one known now would be stale.
    change.payload["record"].pop("change_seq")
    hooks = session.scalars(select(Webhook).where(Webhook.active.is_(True),
                                                  or_(Webhook.unit.is_(None), Webhook.unit == row.unit)))
    for hook in hooks:
        session.add(Delivery(webhook_id=hook.id, change_seq=change.seq, record_id=row.id,
                             next_attempt_at=utcnow()))
    session.flush()
    return change


PUBLISH_LOCK = 72431  # PostgreSQL advisory lock id: held by the publisher only, never by writers


def publish_changes(session: Session, limit: int = 1000) -> int:
    """Give feed positions to committed, unpublished changes (oldest first); the number published. Run it in a
    transaction of its own: its lock is held until that transaction ends, and it should end quickly."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUBLISH_LOCK})
    else:
        # A write first, so this transaction takes SQLite's write lock (waiting for it) before it reads the top
        # position; reading first would let two publishers read the same top.
        session.execute(update(Change).where(Change.seq < 0).values(position=None))
    pending = session.execute(select(Change.seq, Change.record_id).where(Change.position.is_(None))
                              .order_by(Change.seq).limit(limit)).all()
    if not pending:
        return 0
    top = session.scalar(select(func.max(Change.position))) or 0
    latest: dict[str, int] = {}
    for seq, record_id in pending:
        top += 1
        session.execute(update(Change).where(Change.seq == seq).values(position=top))
        latest[record_id] = top
    for record_id, position in latest.items():
        session.execute(update(RecordRow).where(RecordRow.id == record_id).values(change_seq=position))
    return len(pending)


def publish_pending() -> int:
    """`publish_changes` in a transaction of its own, taken only when something waits: a feed read with nothing
    new takes no write lock. (A separate read first: on SQLite a transaction that read cannot always upgrade to
    a write when another writer committed in between.)"""
    with session_scope() as s:
        waiting = s.scalar(select(Change.seq).where(Change.position.is_(None)).limit(1))
    if waiting is None:
        return 0
    with session_scope() as s:
        return publish_changes(s)
