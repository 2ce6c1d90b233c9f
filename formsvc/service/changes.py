"""Record changes: one row per change, in commit order, plus the webhook outbox rows for it.

Both are written in the caller's transaction, beside the record change itself: if the record change
commits, its event exists and will be delivered; if it rolls back, no event was ever visible.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from formsvc.db.engine import serialise_changes
from formsvc.db.tables import Change, Delivery, RecordRow, Webhook, utcnow

EVENT_KINDS = ("record.created", "record.corrected", "record.revalidated", "record.approved")


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
    serialise_changes(session)
    session.flush()
    change = Change(event_id=str(uuid.uuid4()), record_id=row.id, unit=row.unit, kind=kind, version=row.version,
                    at=utcnow(), payload={})
    session.add(change)
    session.flush()
    row.change_seq = change.seq
    change.payload = {"id": change.event_id, "type": kind, "occurred_at": change.at.isoformat(),
                      "sequence": change.seq, "record": record_view(row)}
    hooks = session.scalars(select(Webhook).where(Webhook.active.is_(True),
                                                  or_(Webhook.unit.is_(None), Webhook.unit == row.unit)))
    for hook in hooks:
        session.add(Delivery(webhook_id=hook.id, change_seq=change.seq, record_id=row.id,
                             next_attempt_at=utcnow()))
    session.flush()
    return change
