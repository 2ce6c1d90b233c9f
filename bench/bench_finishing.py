"""How long the transaction that ends an extraction job holds the database's write lock.

A unit with 50 print-pack rosters and 2 000 stored self-assessments uploads a job of 20 documents (19 sheets
read from the roster's QR ids and one set of committee minutes). The extraction itself is replaced by its canned
result, so only the finishing step is timed. "Write time" runs from the transaction's first INSERT/UPDATE/DELETE
(where SQLite takes its write lock, and PostgreSQL its row locks) to the end of its COMMIT; "total" is the whole
finishing step including the reads done before it.

    PYTHONPATH=$PWD python bench/bench_finishing.py [--runs 5] [--database-url postgresql+psycopg://... | --postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROSTERS = 50
STORED = 2000
DOCS = 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server (tests/servers.py)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-finish-"))
    os.environ["FORMSVC_DATA_DIR"] = str(tmp)
    server = None
    if args.postgres:
        from tests.servers import PostgresServer

        server = PostgresServer()
        server.start()
        args.database_url = server.new_database("bench_finishing")
    if args.database_url:
        os.environ["FORMSVC_DATABASE_URL"] = args.database_url
    try:
        run(args.runs)
    finally:
        if server is not None:
            from formsvc.db import dispose_engines

            dispose_engines()
            server.stop()


def run(runs: int) -> None:

    from sqlalchemy import event

    from formsvc.criteria import default_registry
    from formsvc.db import session_scope, upgrade
    from formsvc.db.engine import get_engine
    from formsvc.db.tables import Job, JobFile, StoredFile, utcnow
    from formsvc.extract import pipeline
    from formsvc.records import Record
    from formsvc.service import processing
    from formsvc.service.records import store_record
    from formsvc.storage import get_file_store
    from formsvc.validation import validate_document
    from tests.factories import full_record

    upgrade()
    unit = f"bench-{uuid.uuid4().hex[:6]}"
    store = get_file_store()
    roster_sha = store.put_bytes((ROOT / "fixtures/rosters/sample.csv").read_bytes())
    cset = default_registry().get("cdht-324-pl4")
    sheet = validate_document(full_record(cset), default_registry())
    with session_scope() as s:
        s.add(StoredFile(sha256=roster_sha, size=store.path(roster_sha).stat().st_size, media_type="text/csv"))
        for _ in range(ROSTERS):
            jid = uuid.uuid4().hex
            s.add(Job(id=jid, kind="print_pack", unit=unit, status="done", params={}, attempts=1,
                      finished_at=utcnow()))
            s.flush()
            s.add(JobFile(job_id=jid, position=0, filename="roster.csv", sha256=roster_sha))
    for start in range(0, STORED, 500):
        with session_scope() as s:
            for i in range(start, min(STORED, start + 500)):
                store_record(s, unit=unit, job_id=None, doc_key=f"stored-{i}", record=sheet, pages={})
    candidates = [{"full_name": "Nguyễn Thị Hương", "self_total": 80, "agreed_total": 80, "proposed": True}]
    minutes = Record(form="cdht-minutes", criteria_set="cdht-324-pl4", year=2024,
                     subject={"full_name": unit}, extra={"minutes": {"candidates": candidates}})
    docs = [sheet.model_copy(update={"subject": sheet.subject.model_copy(update={"id": f"nv-00{1 + i % 2}"})})
            for i in range(DOCS - 1)] + [minutes]

    marks: dict[str, float] = {}

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "write" not in marks and statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            marks["write"] = time.perf_counter()

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", before)

    write_times, totals = [], []
    for n in range(runs):
        job_id = uuid.uuid4().hex
        with session_scope() as s:
            s.add(Job(id=job_id, kind="extract", unit=unit, status="running", params={}, attempts=1))
        result = pipeline.ExtractionResult(documents=list(docs), keys=[f"{n}-{i}" for i in range(DOCS)],
                                           pages=[{} for _ in range(DOCS)])
        original = pipeline.extract_files
        pipeline.extract_files = lambda *a, r=result, **k: r
        try:
            marks.clear()
            t0 = time.perf_counter()
            # The finishing transaction's commit is the last one of the job: its end is the end of the call.
            processing._extract(job_id, 1, unit, [])
            t1 = time.perf_counter()
        finally:
            pipeline.extract_files = original
        # The first write of the finishing transaction: progress writes happen before it only through
        # _Progress, which the canned result never calls.
        write_times.append(t1 - marks["write"])
        totals.append(t1 - t0)
    print(f"database: {engine.dialect.name}; {ROSTERS} rosters, {STORED} stored sheets, {DOCS} documents per job")
    print(f"write lock held: median {statistics.median(write_times) * 1000:.0f} ms "
          f"(min {min(write_times) * 1000:.0f}, max {max(write_times) * 1000:.0f})")
    print(f"whole finishing step: median {statistics.median(totals) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
