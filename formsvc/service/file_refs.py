"""Which stored files are still in use, and removing the ones a deletion left unused.

The file store is content-addressed, so one file can belong to several rows: two records made from the same
page image, two review samples with the same crop, an upload that is also a page. A file is removed only when no
row refers to it any more, checked right before it goes, and only after the transaction that dropped the last
reference has committed: a rollback can never leave a row pointing at a missing file.

A file can also be about to be referred to: a job that stored a page image and has not committed its records
yet, a confirm that stored a crop a moment ago. Storing refreshes a file's mtime, so a file stored since the
deletion began, or since the oldest unfinished job started, is left where it is (a file kept is a small leak;
a file lost is a broken record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import String, cast, delete, event, func, select
from sqlalchemy.orm import Session

from formsvc.db.engine import session_scope
from formsvc.db.tables import Job, JobFile, RecordRow, ReviewSample, StoredFile
from formsvc.storage import get_file_store

log = logging.getLogger(__name__)
_PENDING = "formsvc.release_files"
UNFINISHED = ("queued", "running")


def referenced(session: Session, sha256: str) -> bool:
    """True when any row still refers to the file: a review sample's crop, a record's page image, a job's upload
    or result."""
    checks = [
        select(ReviewSample.id).where(ReviewSample.crop_sha256 == sha256),
        # Page maps are small JSON objects {page: sha256}; a hex digest cannot be a LIKE wildcard.
        select(RecordRow.id).where(cast(RecordRow.pages, String).like(f"%{sha256}%")),
        select(JobFile.id).where(JobFile.sha256 == sha256),
        select(Job.id).where(Job.result_sha256 == sha256),
    ]
    return any(session.scalar(stmt.limit(1)) is not None for stmt in checks)


def release_after_commit(session: Session, sha256s: Iterable[str], *, since: float) -> None:
    """Remove these files once `session` commits, each only if nothing refers to it then and nobody stored it
    again since `since` (a time.time() taken before the transaction read what it deletes). Nothing happens when
    the transaction rolls back."""
    wanted = {s for s in sha256s if s}
    if not wanted:
        return
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = _Pending(since=since)
        event.listen(session, "after_commit", _after_commit, once=True)
        event.listen(session, "after_rollback", _after_rollback, once=True)
    pending.since = min(pending.since, since)
    pending.files.update(wanted)


@dataclass
class _Pending:
    since: float
    files: set[str] = field(default_factory=set)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    try:
        release(sorted(pending.files), since=pending.since)
    except Exception:  # the deletion itself is committed; a file left behind is logged, never an error
        log.exception("could not remove %d unused stored files", len(pending.files))


def release(sha256s: Iterable[str], *, since: float) -> list[str]:
    """Remove the files no row refers to and nobody stored again since `since`; the ones removed."""
    store = get_file_store()
    with session_scope() as s:
        oldest_job = s.scalar(select(func.min(Job.created_at)).where(Job.status.in_(UNFINISHED)))
    if oldest_job is not None:
        since = min(since, oldest_job.timestamp())
    removed = []
    for sha in sha256s:
        with session_scope() as s:
            if referenced(s, sha):
                continue
            s.execute(delete(StoredFile).where(StoredFile.sha256 == sha))  # its registry row goes with it
        if store.delete_unless_touched(sha, since=since):
            removed.append(sha)
    if removed:
        log.info("removed %d unused stored files", len(removed))
    return removed

