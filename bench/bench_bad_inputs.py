"""Every case of the bad-input corpus (fixtures/bad_inputs.py) against the running service.

    .venv/bin/python bench/bench_bad_inputs.py [--markdown]

Starts the real stack (Redis, API, one worker, dispatcher; SQLite), sends each case the way a user would
(upload, print-pack roster, JSON body), waits for any job it started, and checks after every case that the
service still answers and that a refused request stored nothing. Prints a table; exits 1 if any case failed.
Production limits throughout, so the 1,000-page PDF is accepted and really processed: the worker's memory is
sampled during that job (pages are streamed, so it must stay flat).
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
        if case.kind == "roster":
            pdf = c.get(job["result_url"]) if job.get("result_url") else None
            detail = f"job {job['status']}, PDF {len(pdf.content) // 1024} KB, tên in nguyên văn" if pdf else detail
        name_ok = "/" not in job["files"][0]["filename"] and not any(ord(ch) < 32 for ch in job["files"][0]["filename"])
        ok = healthy and job["status"] == "done" and name_ok and (
            (case.expect == "file_error" and bool(codes) and not job["records"]) or case.expect == "sanitised")
        return Outcome(case, r.status_code, ",".join(codes) or job["status"], detail, ok)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis, running_stack(
            Path(tmp) / "stack", redis=redis) as stack:
        key = stack.new_key("clerk", "Trường THCS Hòa Bình")
        outcomes = []
        for case, path in build_corpus(Path(tmp) / "corpus"):
            started = time.perf_counter()
            outcome = run_case(stack, key, case, path)
            outcomes.append(outcome)
            print(f"{case.name:26} {outcome.status} {outcome.code:28} {'OK' if outcome.ok else 'FAIL'} "
                  f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
        api_alive = stack.procs["api"].poll() is None
    if args.markdown:
        print("| case | sent as | HTTP | code | outcome | pass |")
        print("|---|---|---|---|---|---|")
        for o in outcomes:
            shown = o.case.filename.encode("unicode_escape").decode()
            print(f"| {o.case.name} — {o.case.description} | `{shown}` | {o.status} | `{o.code}` | {o.detail} | "
                  f"{'✅' if o.ok else '❌'} |")
    failed = [o.case.name for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)}/{len(outcomes)} cases handled as expected; API alive: {api_alive}"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 0 if not failed and api_alive else 1


if __name__ == "__main__":
    raise SystemExit(main())
