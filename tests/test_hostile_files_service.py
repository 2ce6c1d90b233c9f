"""The worst file of each kind through the real service (API, rq worker, database on SQLite and PostgreSQL):
each is answered with a clear error, the work horse runs under the worker memory limit, the worker itself is
not limited and stays up, and the next job on that worker succeeds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.bad_inputs import build_corpus
from fixtures.scans import degrade, pdf_bytes, random_record, rasterise
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.service.jobs import MAX_FILENAME_BYTES
from tests.servers import RedisServer
from tests.stack import Stack, descendants, running_stack

pytestmark = pytest.mark.timeout(900)
UNIT = "Trường THCS Hòa Bình"
WORKER_MEMORY_MB = 2048


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
          database_url: str | None) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), redis=redis_server, database_url=database_url,
                       env={"FORMSVC_WORKER_MEMORY_MB": str(WORKER_MEMORY_MB)}) as s:
        yield s


def _address_space_limit(pid: int) -> int | None:
    """The soft RLIMIT_AS of a process in bytes (None = unlimited or gone)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max address space"):
                soft = line.split()[3]
                return None if soft == "unlimited" else int(soft)
    except OSError:
        pass
    return None


class _LimitWatcher(threading.Thread):
    """The address-space limits seen on the worker's descendants (work horses, page readers) while it runs."""

    def __init__(self, worker_pid: int) -> None:
        super().__init__(daemon=True)
        self.worker_pid, self.seen, self._halt = worker_pid, set[int](), threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            for pid in descendants(self.worker_pid):
                limit = _address_space_limit(pid)
                if limit is not None:
                    self.seen.add(limit)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _run(stack: Stack, client: Any, path: str, **kw: Any) -> dict[str, Any]:
    r = client.post(path, **kw)
    assert r.status_code == 202, r.text
    return stack.wait_job(client, r.json()["id"], timeout=300)


def test_worst_files_are_contained_and_the_next_job_on_the_worker_succeeds(stack: Stack, tmp_path: Path) -> None:
    corpus = {case.name: (case, path) for case, path in build_corpus(tmp_path / "bad")}
    clerk = stack.client(stack.new_key("clerk", UNIT))
    worker = stack.procs["worker0"]
    watcher = _LimitWatcher(worker.pid)
    watcher.start()
    try:
        expected_pages = {
            "pdf_operator_bomb": ["page_unidentified", "page_too_much_memory|page_too_slow", "page_unidentified"],
            "pdf_inflate_bomb": ["page_unidentified", "page_too_large", "page_unidentified"],
            "qr_forged_page_count": ["payload_invalid"],
            "long_vietnamese_name": ["image_too_small"],
        }
        for name, codes in expected_pages.items():
            case, path = corpus[name]
            job = _run(stack, clerk, "/v1/submissions",
                       files={"files": (case.filename, path.read_bytes(), case.content_type)})
            assert job["status"] == "done" and job["records"] == [], (name, job)
            assert len(job["errors"]) == len(codes), job["errors"]
            for error, allowed in zip(job["errors"], codes, strict=True):
                assert error["code"] in allowed.split("|"), (name, error)
                assert error["message"].startswith(job["files"][0]["filename"]), error
            stored = job["files"][0]["filename"]
            assert len(stored.encode()) <= MAX_FILENAME_BYTES, stored
        for name, code in (("roster_xlsx_entity_chain", "roster_unsafe_xml"),
                           ("roster_xlsx_huge_dimension", "roster_too_many_rows"),
                           ("roster_over_row_cap", "roster_too_many_rows")):
            case, path = corpus[name]
            job = _run(stack, clerk, "/v1/print-packs", data={"form": "cdht-self-assessment", "year": "2024"},
                       files={"roster": (case.filename, path.read_bytes(), case.content_type)})
            assert job["status"] == "failed" and job["error"]["code"] == code, (name, job)
            assert case.filename in job["error"]["message"]
        assert worker.poll() is None, stack.log("worker0")

        # The next job on the same worker: a real scanned form becomes a record.
        data = random_record(31)
        scan = pdf_bytes(degrade(rasterise(render_document("cdht-self-assessment", data)), "noise", seed=4))
        get_converter().close()
        job = _run(stack, clerk, "/v1/submissions", files={"files": ("phieu.pdf", scan, "application/pdf")})
        assert job["status"] == "done" and len(job["records"]) == 1 and job["errors"] == [], job
        record = clerk.get(f"/v1/records/{job['records'][0]['id']}").json()["record"]
        assert record["subject"]["full_name"] == data["subject"]["full_name"]
    finally:
        watcher.stop()
    # Every job ran under the cap; the worker that forks the work horses is not capped itself.
    assert WORKER_MEMORY_MB * 1024 * 1024 in watcher.seen, watcher.seen
    assert _address_space_limit(worker.pid) is None
    assert clerk.get("/v1/health").status_code == 200
