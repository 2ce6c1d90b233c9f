"""Every case of the bad-input corpus (fixtures/bad_inputs.py) against the running service.

    .venv/bin/python bench/bench_bad_inputs.py [--markdown]

Starts the real stack (Redis, API, one worker, dispatcher; SQLite), sends each case the way a user would
(upload, print-pack roster, JSON body), waits for any job it started, and checks after every case that the
service still answers and that a refused request stored nothing. Prints a table; exits 1 if any case failed.
Production limits throughout, except the work horse's memory cap (`--worker-memory-mb`, FORMSVC_WORKER_MEMORY_MB),
so the 1,000-page PDF is accepted and really processed: the worker's memory is sampled during every job (pages are
streamed, so it must stay flat). After the corpus, one real scanned form is uploaded: the next job on the worker
that took every hostile file must still become a record.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures.bad_inputs import BadCase, build_corpus, read_body
from tests.servers import RedisServer
from tests.stack import Stack, descendants, running_stack


@dataclass
class Outcome:
    case: BadCase
    status: int
    code: str
    detail: str
    ok: bool
    seconds: float = 0.0


class _MemorySampler(threading.Thread):
    """RSS of the worker processes (rq parent + work horse) every 0.5 s while a job runs."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack, self._halt = stack, threading.Event()
        self.samples: list[float] = []

    def run(self) -> None:
        while not self._halt.wait(0.5):
            pids = [p.pid for n, p in self.stack.procs.items() if n.startswith("worker")]
            pids += [d for pid in pids for d in descendants(pid)]
            self.samples.append(sum(_rss_mb(pid) for pid in pids))

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def summary(self) -> str:
        n = max(1, len(self.samples) // 10)
        first, last = self.samples[:n], self.samples[-n:]
        return (f"{sum(first) / len(first):.0f} MB ở 10 % đầu, {sum(last) / len(last):.0f} MB ở 10 % cuối, "
                f"đỉnh {max(self.samples):.0f} MB")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _stored(stack: Stack) -> int:
    root = stack.root / "data" / "files"
    return sum(1 for p in root.rglob("*") if p.is_file() and "tmp" not in p.parts) if root.exists() else 0


def run_case(stack: Stack, key: str, case: BadCase, path: Path) -> Outcome:
    before = _stored(stack)
    with stack.client(key) as c:
        if case.kind == "json":
            r = c.post("/v1/validate", content=read_body(path), headers={"content-type": "application/json"})
        elif case.kind == "roster":
            r = c.post("/v1/print-packs", data={"form": "cdht-self-assessment", "year": "2024"},
                       files={"roster": (case.filename, path.read_bytes(), case.content_type)})
        else:
            r = c.post("/v1/submissions", files={"files": (case.filename, path.read_bytes(), case.content_type)})
        body = r.json()
        healthy = c.get("/v1/health").status_code == 200
        if r.status_code >= 400:
            stored_nothing = _stored(stack) == before
            return Outcome(case, r.status_code, body.get("code", ""), body.get("message", "")[:90],
                           ok=400 <= r.status_code < 500 and healthy and stored_nothing and case.expect == "reject")
        sampler = _MemorySampler(stack)
        sampler.start()
        try:
            job = stack.wait_job(c, body["id"], timeout=1800)
        finally:
            sampler.stop()
        codes = sorted({e["code"] for e in job["errors"]})
        detail = f"job {job['status']}: {len(job['errors'])} lỗi trang ({', '.join(codes)})" if codes else \
            f"job {job['status']}, {len(job['records'])} bản ghi"
        if len(job["errors"]) >= 100 and sampler.samples:
            detail += f"; RAM worker {sampler.summary()}"
        elif sampler.samples:
            detail += f"; RAM worker đỉnh {max(sampler.samples):.0f} MB"
        if case.kind == "roster" and job["status"] == "done":
            pdf = c.get(job["result_url"]) if job.get("result_url") else None
            detail = f"job {job['status']}, PDF {len(pdf.content) // 1024} KB, tên in nguyên văn" if pdf else detail
        filename = job["files"][0]["filename"]
        name_ok = "/" not in filename and not any(ord(ch) < 32 for ch in filename) and len(filename.encode()) <= 200
        if case.expect == "job_error":
            error = job.get("error") or {}
            detail = f"job {job['status']}: {error.get('message', '')[:110]}"
            ok = healthy and job["status"] == "failed" and bool(error.get("code")) and filename in error["message"]
            return Outcome(case, r.status_code, error.get("code", job["status"]), detail, ok)
        ok = healthy and job["status"] == "done" and name_ok and (
            (case.expect == "file_error" and bool(codes) and not job["records"]) or case.expect == "sanitised")
        return Outcome(case, r.status_code, ",".join(codes) or job["status"], detail, ok)


def next_job(stack: Stack, key: str) -> tuple[bool, str]:
    """A real scanned form after every hostile file: the worker that took them all makes a record of it."""
    from fixtures.scans import degrade, pdf_bytes, random_record, rasterise
    from formsvc.render import render_document
    from formsvc.render.converter import get_converter

    data = random_record(31)
    scan = pdf_bytes(degrade(rasterise(render_document("cdht-self-assessment", data)), "noise", seed=4))
    get_converter().close()
    with stack.client(key) as c:
        r = c.post("/v1/submissions", files={"files": ("phieu-that.pdf", scan, "application/pdf")})
        job = stack.wait_job(c, r.json()["id"], timeout=600)
        names = [c.get(f"/v1/records/{rec['id']}").json()["record"]["subject"]["full_name"]
                 for rec in job["records"]]
    ok = job["status"] == "done" and names == [data["subject"]["full_name"]]
    return ok, f"job {job['status']}, {len(job['records'])} bản ghi ({', '.join(names)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--worker-memory-mb", type=int, default=2048,
                        help="address-space cap of the work horse (FORMSVC_WORKER_MEMORY_MB)")
    args = parser.parse_args()
    env = {"FORMSVC_WORKER_MEMORY_MB": str(args.worker_memory_mb)}
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis, running_stack(
            Path(tmp) / "stack", redis=redis, env=env) as stack:
        key = stack.new_key("clerk", "Trường THCS Hòa Bình")
        outcomes = []
        for case, path in build_corpus(Path(tmp) / "corpus"):
            started = time.perf_counter()
            outcome = run_case(stack, key, case, path)
            outcome.seconds = time.perf_counter() - started
            outcomes.append(outcome)
            print(f"{case.name:26} {outcome.status} {outcome.code:28} {'OK' if outcome.ok else 'FAIL'} "
                  f"({outcome.seconds:.1f} s)", file=sys.stderr)
        next_ok, next_detail = next_job(stack, key)
        print(f"next job: {'OK' if next_ok else 'FAIL'} {next_detail}", file=sys.stderr)
        api_alive = stack.procs["api"].poll() is None
        worker_alive = stack.procs["worker0"].poll() is None
    if args.markdown:
        print("| case | sent as | HTTP | code | outcome | s | pass |")
        print("|---|---|---|---|---|---|---|")
        for o in outcomes:
            shown = o.case.filename.encode("unicode_escape").decode()
            if len(shown) > 60:
                shown = f"{shown[:24]}… ({len(o.case.filename)} ký tự, {len(o.case.filename.encode())} byte)"
            print(f"| {o.case.name} — {o.case.description} | `{shown}` | {o.status} | `{o.code}` | {o.detail} | "
                  f"{o.seconds:.1f} | {'✅' if o.ok else '❌'} |")
        print(f"| next job — phiếu thật quét, sau mọi tệp trên, cùng worker | `phieu-that.pdf` | 202 | — | "
              f"{next_detail} | — | {'✅' if next_ok else '❌'} |")
    failed = [o.case.name for o in outcomes if not o.ok] + ([] if next_ok else ["next_job"])
    print(f"\n{len(outcomes) - len(failed)}/{len(outcomes)} cases handled as expected; next job "
          f"{'succeeded' if next_ok else 'FAILED'}; API alive: {api_alive}; worker alive: {worker_alive}; "
          f"work horse capped at {args.worker_memory_mb} MB" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 0 if not failed and api_alive and worker_alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
