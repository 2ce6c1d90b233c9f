"""What a worker does with a job. Safe to run twice: results are written in one transaction at the end,
fenced by the attempt number, and records are keyed by their source document, so a retried or duplicated
run can never store a document twice or lose one."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from formsvc.db.engine import session_scope
from formsvc.db.tables import Job, JobFile, PageErrorRow, StoredFile, utcnow
from formsvc.errors import BusyError, FormsvcError
from formsvc.logs import bound, stage
from formsvc.service import ingest
from formsvc.service.jobs import safe_filename
from formsvc.service.known_values import roster_people
from formsvc.settings import get_settings
from formsvc.storage import get_file_store

log = logging.getLogger(__name__)


class Superseded(Exception):
    """Another attempt of the job owns it now; this one stops without writing."""


def _claim(job_id: str, attempt: int) -> tuple[str, str, dict[str, object], list[tuple[str, str]]] | None:
    with session_scope() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.status in ("done", "failed") or job.attempts != attempt:
            return None
        job.status, job.heartbeat_at, job.pages_done = "running", utcnow(), 0
        files = [(f.filename, f.sha256) for f in
                 s.scalars(select(JobFile).where(JobFile.job_id == job_id).order_by(JobFile.position))]
        return job.kind, job.unit, dict(job.params), files


def _linked(folder: Path, files: list[tuple[str, str]]) -> list[Path]:
    """Stored files under their uploaded names, so messages say 'scan.pdf, trang 3', not a hash."""
    store = get_file_store()
    out: list[Path] = []
    for i, (name, sha) in enumerate(files):
        sub = folder / str(i)
        sub.mkdir()
        link = sub / safe_filename(name)  # rows stored before names were capped by bytes
        link.symlink_to(store.path(sha).resolve())
        out.append(link)
    return out


class _Progress:
    """Writes progress (and so the heartbeat) at most every half second."""

    def __init__(self, job_id: str, attempt: int) -> None:
        self.job_id, self.attempt, self.last = job_id, attempt, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.5 and done < total:
            return
        self.last = now
        with session_scope() as s:
            job = s.get(Job, self.job_id)
            if job is None or job.attempts != self.attempt:
                raise Superseded(self.job_id)
            job.pages_done, job.pages_total, job.heartbeat_at = done, total, utcnow()


def run_job(job_id: str, attempt: int) -> str:
    claimed = _claim(job_id, attempt)
    if claimed is None:
        return "skipped"
    kind, unit, params, files = claimed
    with bound(job_id=job_id, attempt=attempt, kind=kind), stage(log, "job", files=len(files)) as fields:
        fields["result"] = outcome = _run(job_id, attempt, kind, unit, params, files)
    return outcome


def _run(job_id: str, attempt: int, kind: str, unit: str, params: dict[str, object],
         files: list[tuple[str, str]]) -> str:
    try:
        with tempfile.TemporaryDirectory(prefix="formsvc-job-") as tmp:
            paths = _linked(Path(tmp), files)
            if kind == "extract":
                _extract(job_id, attempt, unit, paths)
            elif kind == "print_pack":
                _print_pack(job_id, attempt, params, paths[0])
            elif kind == "dossier":
                _dossier(job_id, attempt, unit, params)
            elif kind == "retrain":
                _retrain(job_id, attempt)
            else:
                raise ValueError(kind)
    except Superseded:
        return "superseded"
    except BusyError:
        raise  # the database is away for a moment: not the job's fault; the janitor retries it later
    except FormsvcError as exc:
        _fail(job_id, attempt, exc.code, exc.message)
        return "failed"
    except Exception as exc:  # a bug must not leave the job 'running' forever
        log.exception("job %s attempt %s crashed", job_id, attempt)
        _fail(job_id, attempt, "internal_error", f"Lỗi nội bộ khi xử lý ({type(exc).__name__}); đã ghi nhật ký.")
        raise
    return "done"


def _fail(job_id: str, attempt: int, code: str, message: str) -> None:
    with session_scope() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is not None and job.attempts == attempt and job.status != "done":
            job.status, job.error_code, job.error_message, job.finished_at = "failed", code, message, utcnow()


@contextmanager
def _finishing(job_id: str, attempt: int, *, files: dict[str, str],
               errors: Sequence[tuple[str, int | None, str, str]]) -> Iterator[tuple[Session, Job]]:
    """The one transaction that ends a job: fenced by the attempt number, the files it stored registered
    (sha256 -> media type), its errors (file, page, code, message) replacing any earlier attempt's."""
    store = get_file_store()
    with session_scope() as s:
        job = s.get(Job, job_id, with_for_update=True)
        if job is None or job.attempts != attempt or job.status == "done":
            raise Superseded(job_id)
        for sha, media_type in files.items():
            if s.get(StoredFile, sha) is None:
                s.add(StoredFile(sha256=sha, size=store.path(sha).stat().st_size, media_type=media_type))
        s.execute(delete(PageErrorRow).where(PageErrorRow.job_id == job_id))
        s.add_all(PageErrorRow(job_id=job_id, filename=file, page=page, code=code, message=message)
                  for file, page, code, message in errors)
        yield s, job
        job.status, job.finished_at = "done", utcnow()


def _extract(job_id: str, attempt: int, unit: str, paths: list[Path]) -> None:
    from formsvc.extract.pipeline import read_files

    store = get_file_store()

    def sink(image: bytes) -> str:
        return store.put_bytes(image)

    # The unit's rosters first: a printed name OCR cannot read is looked for as the roster spells it.
    with stage(log, "roster"), session_scope() as s:
        people = roster_people(s, unit)
    with stage(log, "extract", files=len(paths)) as fields:
        result = read_files(paths, progress=_Progress(job_id, attempt), jobs=max(1, get_settings().extract_jobs),
                            page_sink=sink, names={pid: person.full_name for pid, person in people.items()})
        fields.update(documents=len(result.documents), page_errors=len(result.errors))
    images = {sha: "image/jpeg" for pages in result.pages for sha in pages.values()}
    errors = [(Path(e.file).name, e.page, e.code, e.message) for e in result.errors]
    # Read first, in a transaction of its own: loading the unit's stored sheets (and, above, parsing its rosters)
    # must not happen while the finishing transaction holds the write lock (SQLite: every writer waits on it).
    with stage(log, "known_values"), session_scope() as s:
        records, findings = ingest.prepare(s, unit=unit, documents=result.documents, findings=result.findings,
                                           people=people)
    with stage(log, "store", documents=len(records)), \
            _finishing(job_id, attempt, files=images, errors=errors) as (s, job):
        ingest.store(s, unit=unit, job_id=job_id, records=records, findings=findings, keys=result.keys,
                     pages=result.pages)
        job.heartbeat_at = utcnow()
        job.pages_done = job.pages_total = max(job.pages_total, job.pages_done)


def _print_pack(job_id: str, attempt: int, params: dict[str, object], roster: Path) -> None:
    from formsvc.render.pack import print_pack

    store = get_file_store()
    with tempfile.TemporaryDirectory(prefix="formsvc-pack-") as tmp:
        out = Path(tmp) / "pack.pdf"
        year = params.get("year")
        with stage(log, "render_pack", form=str(params["form"]), file=roster.name) as fields:
            report = print_pack(str(params["form"]), roster, out,
                                year=int(year) if isinstance(year, int) else None, progress=_Progress(job_id, attempt))
            fields["roster_errors"] = len(report.errors)
        with out.open("rb") as fh:
            sha, _ = store.put_stream(fh)
    errors = [(roster.name, None, "roster_row_invalid", e.message) for e in report.errors]
    with _finishing(job_id, attempt, files={sha: "application/pdf"}, errors=errors) as (_, job):
        job.result_sha256 = sha


def _dossier(job_id: str, attempt: int, unit: str, params: dict[str, object]) -> None:
    """The records are read when the job runs (not when it was asked for), so the dossier is what the store
    holds now; a duplicate person fails the job with the message naming both records."""
    from formsvc.render.dossier import render_dossier
    from formsvc.service.dossier import SYSTEM, plan_from_store

    year = params.get("year")
    exclude = params.get("exclude") or []
    staff = params.get("staff")
    criteria_set = params.get("criteria_set")
    with session_scope() as s:
        plan = plan_from_store(s, SYSTEM, unit=unit, year=int(year) if isinstance(year, int) else 0,
                               criteria_set=str(criteria_set) if criteria_set else None,
                               exclude=[str(e) for e in exclude] if isinstance(exclude, list) else [])
    with stage(log, "render_dossier"):
        files = render_dossier(plan, {"staff": staff if isinstance(staff, int) else None},
                               progress=_Progress(job_id, attempt))
    sha = get_file_store().put_bytes(files.zip_bytes())
    with _finishing(job_id, attempt, files={sha: "application/zip"}, errors=[]) as (_, job):
        job.result_sha256 = sha


@contextmanager
def _heartbeat(job_id: str, attempt: int, every_s: float) -> Iterator[None]:
    """Beat the job's heartbeat from a thread while a long step without progress points runs (a fine-tune is
    minutes of numpy), so the janitor does not take a busy job for a lost one."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                with session_scope() as s:
                    job = s.get(Job, job_id)
                    if job is None or job.attempts != attempt or job.status != "running":
                        return
                    job.heartbeat_at = utcnow()
            except Exception:  # a missed beat is retried at the next one; the job itself goes on
                log.warning("heartbeat of job %s failed", job_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _retrain(job_id: str, attempt: int) -> None:
    """The admin's 'learn from corrections': the same run as `formsvc digits retrain` (its lock, its report kept
    for the admin page); a refused model is a finished job, its report says why."""
    from formsvc.service import retrain

    with _heartbeat(job_id, attempt, max(1.0, get_settings().job_stale_s / 4)), stage(log, "retrain") as fields:
        report = retrain.run()
        fields.update(accepted=report["accepted"], used=report["used"])
    with _finishing(job_id, attempt, files={}, errors=[]) as (_, job):
        job.pages_done = job.pages_total = 1
