"""The whole service, for tests: real Redis, a database (SQLite file or PostgreSQL), the API under uvicorn,
rq worker processes and the dispatcher, each its own process started the way production starts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from tests.servers import RedisServer, free_port

FORMSVC = str(Path(sys.executable).with_name("formsvc"))


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Stack:
    def __init__(self, root: Path, *, redis: RedisServer, database_url: str | None = None, workers: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.root = root
        self.redis = redis
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.queue = f"q{self.port}"
        self.env = {
            **os.environ,
            "FORMSVC_DATA_DIR": str(root / "data"),
            "FORMSVC_REDIS_URL": redis.url,
            "FORMSVC_QUEUE_NAME": self.queue,
            "FORMSVC_WEBHOOK_ALLOW_PRIVATE": "true",
            "FORMSVC_WEBHOOK_BACKOFF_BASE_S": "0.05",
            "FORMSVC_WEBHOOK_BACKOFF_MAX_S": "0.5",
            "FORMSVC_DISPATCH_INTERVAL_S": "0.1",
            "FORMSVC_JOB_STALE_S": "6",
            "FORMSVC_IDEMPOTENCY_PENDING_S": "3",
            "FORMSVC_RATE_LIMIT_PER_MINUTE": "100000",
            "FORMSVC_AUTH_FAILURES_PER_MINUTE": "100000",
            "OMP_THREAD_LIMIT": "1",
            **(env or {}),
        }
        if database_url:
            self.env["FORMSVC_DATABASE_URL"] = database_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.admin_key = ""

    # -- processes -------------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen([FORMSVC, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # own group: killing it also kills rq's work horses
        self.procs[name] = proc
        return proc

    def start(self) -> Stack:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run([FORMSVC, "db", "upgrade"], env=self.env, check=True, capture_output=True)
        out = subprocess.run([FORMSVC, "keys", "create", "--role", "admin", "--name", "test admin"], env=self.env,
                             check=True, capture_output=True, text=True)
        self.admin_key = out.stdout.strip().splitlines()[-1]
        self.start_api()
        for i in range(self.workers):
            self.start_worker(i)
        self.start_dispatcher()
        return self

    def start_api(self, processes: int = 1) -> None:
        self._spawn("api", "serve", "--port", str(self.port), "--processes", str(processes))
        self.wait_healthy()

    def start_worker(self, i: int = 0) -> subprocess.Popen[bytes]:
        return self._spawn(f"worker{i}", "worker", "--name", f"w{self.port}-{i}-{time.monotonic_ns()}")

    def start_dispatcher(self) -> None:
        self._spawn("dispatcher", "dispatch")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a process and all its descendants (rq's work horse runs in a session of its own)."""
        proc = self.procs.pop(name)
        for pid in [*descendants(proc.pid), proc.pid]:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(15)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            proc = self.procs.get("api")
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"API exited: {self.log('api')}")
            time.sleep(0.1)
        raise RuntimeError(f"API did not come up: {self.log('api')}")

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            family = descendants(proc.pid)
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    with suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
            for pid in family:  # a work horse left behind must not outlive the test
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    # -- clients ---------------------------------------------------------------------------------
    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kw)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_key)

    def new_key(self, role: str, unit: str | None = None) -> str:
        with self.admin() as c:
            r = c.post("/v1/keys", json={"role": role, "unit": unit, "name": f"{role} {unit or ''}"})
            r.raise_for_status()
            return str(r.json()["key"])

    def wait_job(self, client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in ("done", "failed"):
                return dict(job)
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} not finished; worker log: {self.log('worker0')}")


@contextmanager
def running_stack(root: Path, **kw: Any) -> Iterator[Stack]:
    stack = Stack(root, **kw)
    try:
        yield stack.start()
    finally:
        stack.stop()
