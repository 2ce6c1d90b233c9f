"""Load on the whole service over loopback: 50 concurrent clients upload scans and read records for 2 minutes
while the workers process the uploads; a real HTTP load generator (`wrk`) makes the traffic.

Usage: .venv/bin/python bench/bench_load.py [--seconds N] [--database-url URL | --postgres]
       (also --records, --clients, --mix, --workers, --think-ms, --upload-think-ms, --form-every, --settle,
       --keep DIR; see --help). A smoke run: --seconds 15. Users with pauses: --think-ms 1000 --upload-think-ms 4000
Needs: `wrk` (Debian package `wrk`) and `redis-server` on PATH. SQLite by default; PostgreSQL with --database-url,
or --postgres for a throwaway server.

What runs: real Redis, `formsvc serve` (one uvicorn process), N rq workers and the dispatcher, as tests/stack.py
starts them. Before the load, --records records (default 2,000) are stored in the stack's database the way the
workers store them, and a few `cdht-self-assessment` forms are rendered (LibreOffice), scanned and degraded.

The clients (closed loop: each connection sends its next request when the previous one is answered, after
a pause of 0.5x to 1.5x --think-ms, default 0; a client whose pause can pass uvicorn's 5 s keep-alive sends
`Connection: close`, as an HTTP library would open a new connection), one `wrk` process per kind so that each
kind gets its own latency distribution:

* upload  - 20 %: POST /v1/submissions, a blank-ish A4 PNG at 100 dpi (workers turn it into a per-page
            "page_unidentified" error), every --form-every'th upload a real 2-page form scan (2 JPEG files) that
            becomes a record. Every upload's bytes are unique (a PNG tEXt chunk / JPEG comment with a counter),
            so none is answered by the content-hash dedupe;
* list    - GET /v1/records?limit=20&offset=20*k, k in 0..9 (clerk key);
* record  - GET /v1/records/{id}, a random seeded record (clerk key);
* feed    - GET /v1/records?after=CURSOR&limit=50, a random cursor (integration key: each read is audited);
* health  - GET /v1/health, 10 %: the trivial endpoint, the baseline measured in the same run.

Printed: requests/s, p50/p95/p99/max latency and errors (non-2xx/3xx, socket errors, timeouts) per kind; read
latency (list + record + feed) against health as p95(reads)/p95(health); jobs done/queued; RSS of the API, of
each worker (+ its rq work horses) and of the dispatcher before the load, right after it and after --settle s.
Exit status 1 when any request failed or the read p95 is >= 100 ms (everything is printed first).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import datetime as dt
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import cv2
import httpx
import numpy as np
from sqlalchemy import func, select

from fixtures.scans import degrade, random_record, rasterise
from formsvc.criteria import default_registry
from formsvc.db import dispose_engines, session_scope
from formsvc.db.tables import Job, PageErrorRow, ReadAudit, RecordRow
from formsvc.records import Record
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.service.records import store_record
from formsvc.settings import get_settings
from formsvc.validation import validate_document
from tests.servers import PostgresServer, RedisServer
from tests.stack import Stack, running_stack

UNIT = "Trường THCS Hòa Bình"
OTHER_UNIT = "Trường MN Tam Hưng A"
READS = ("list", "record", "feed")
READ_P95_TARGET_MS = 100.0
BOUNDARY = "formsvcbench7d1e4c0b"
UVICORN_KEEPALIVE_MS = 5000  # uvicorn's default --timeout-keep-alive, which `formsvc serve` keeps

# --------------------------------------------------------------------------------------------------------------
# wrk scripts (LuaJIT). One wrk process per kind, one thread each; done() prints one JSON line.
# --------------------------------------------------------------------------------------------------------------

LUA_COMMON = r"""
local cfg = {key = "%(key)s", think = %(think)d}
local hdrs = {["X-API-Key"] = cfg.key, ["Accept"] = "application/json"}
-- uvicorn closes a connection idle for 5 s; a client that pauses longer opens a new one, as HTTP libraries do
-- (wrk would count the closed connection as a read error)
local close_idle = cfg.think * 1.5 >= %(keepalive_ms)d
if close_idle then hdrs["Connection"] = "close" end
codes = {}
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + %(seed)d)
  if prepare then prepare(args) end
end

if cfg.think > 0 then
  function delay()
    return math.floor(cfg.think * (0.5 + math.random()))
  end
end

function response(status, headers, body)
  local k = tostring(status)
  codes[k] = (codes[k] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if c then for k, v in pairs(c) do all[k] = (all[k] or 0) + v end end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = string.format('"%%s": %%d', k, v) end
  local pct = {}
  for i = 1, 1000 do pct[i] = string.format("%%d", latency:percentile(i / 10)) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "errors": {"connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d}, "min_us": %%d, "max_us": %%d, "mean_us": %%f, ' ..
    '"codes": {%%s}, "pct_us": [%%s]}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, table.concat(parts, ", "), table.concat(pct, ",")))
end
"""

LUA_HEALTH = r"""
request = function() return wrk.format("GET", "/v1/health", hdrs) end
"""

LUA_LIST = r"""
request = function()
  return wrk.format("GET", "/v1/records?limit=20&offset=" .. (20 * math.random(0, %(pages)d - 1)), hdrs)
end
"""

LUA_RECORD = r"""
local ids = dofile("%(ids_file)s")
request = function() return wrk.format("GET", "/v1/records/" .. ids[math.random(#ids)], hdrs) end
"""

LUA_FEED = r"""
request = function()
  return wrk.format("GET", "/v1/records?limit=50&after=" .. math.random(0, %(max_seq)d), hdrs)
end
"""

LUA_UPLOAD = r"""
local bit = require("bit")
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if bit.band(c, 1) == 1 then c = bit.bxor(0xEDB88320, bit.rshift(c, 1)) else c = bit.rshift(c, 1) end
  end
  crc_table[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = bit.bxor(crc_table[bit.band(bit.bxor(c, s:byte(i)), 0xFF)], bit.rshift(c, 8)) end
  return bit.bxor(c, 0xFFFFFFFF)
end
local function be32(n)
  return string.char(bit.band(bit.rshift(n, 24), 255), bit.band(bit.rshift(n, 16), 255),
                     bit.band(bit.rshift(n, 8), 255), bit.band(n, 255))
end
local function slurp(path)
  local f = assert(io.open(path, "rb")); local data = f:read("*a"); f:close(); return data
end

local blank = slurp("%(blank_png)s")          -- a PNG without its IEND chunk
local IEND = "\0\0\0\0IEND\174\66\96\130"
local forms = dofile("%(forms_file)s")        -- { {page1.jpg path, page2.jpg path}, ... }
local form_every = %(form_every)d
for i, pages in ipairs(forms) do
  for j, p in ipairs(pages) do pages[j] = slurp(p) end
end
counter = 0
forms_sent = 0

local function png_tagged(tag)
  local chunk = "tEXt" .. "Comment\0" .. tag
  return blank .. be32(#chunk - 4) .. chunk .. be32(crc32(chunk)) .. IEND
end
local function jpeg_tagged(jpg, tag)
  local com = "formsvc-bench " .. tag
  local n = #com + 2
  return jpg:sub(1, 2) .. "\255\254" .. string.char(math.floor(n / 256), n %% 256) .. com .. jpg:sub(3)
end
local function part(name, ctype, data)
  return "--%(boundary)s\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" .. name ..
         "\"\r\nContent-Type: " .. ctype .. "\r\n\r\n" .. data .. "\r\n"
end
local up_hdrs = {["X-API-Key"] = cfg.key, ["Accept"] = "application/json",
                 ["Content-Type"] = "multipart/form-data; boundary=%(boundary)s"}
if close_idle then up_hdrs["Connection"] = "close" end

request = function()
  counter = counter + 1
  local tag = "%(run)s-" .. (tid or 0) .. "-" .. counter
  local body
  if form_every > 0 and #forms > 0 and counter %% form_every == 0 then
    forms_sent = forms_sent + 1
    local pages = forms[(forms_sent - 1) %% #forms + 1]
    local ps = {}
    for j, jpg in ipairs(pages) do ps[j] = part("phieu-" .. counter .. "-trang" .. j .. ".jpg", "image/jpeg",
                                                jpeg_tagged(jpg, tag)) end
    body = table.concat(ps) .. "--%(boundary)s--\r\n"
  else
    body = part("quet-" .. counter .. ".png", "image/png", png_tagged(tag)) .. "--%(boundary)s--\r\n"
  end
  return wrk.format("POST", "/v1/submissions", up_hdrs, body)
end
"""


@dataclass
class Kind:
    name: str
    label: str
    connections: int
    key: str
    lua: str
    result: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    out: Path | None = None

    @property
    def seconds(self) -> float:
        return float(self.result.get("duration_us", 0)) / 1e6

    @property
    def requests(self) -> int:
        return int(self.result.get("requests", 0))

    @property
    def ok(self) -> int:
        codes: dict[str, int] = self.result.get("codes", {})
        return sum(n for c, n in codes.items() if 200 <= int(c) < 400)

    @property
    def errors(self) -> dict[str, int]:
        e: dict[str, int] = dict(self.result.get("errors", {}))
        return {k: v for k, v in e.items() if v}

    @property
    def error_count(self) -> int:
        e = self.result.get("errors", {})
        return int(sum(e.values())) if self.result else 1

    def pct_ms(self, p: float) -> float:
        pct: list[int] = self.result.get("pct_us", [])
        if not pct:
            return float("nan")
        return pct[min(len(pct), max(1, round(p * 10))) - 1] / 1000


def combined_pct_ms(kinds: list[Kind], p: float) -> float:
    """The p-th percentile of several kinds' latencies together, from each kind's 0.1 % percentile table."""
    points = sorted({v for k in kinds for v in k.result.get("pct_us", [])})
    total = sum(k.requests for k in kinds)
    if not points or total == 0:
        return float("nan")

    def below(x: int) -> float:  # share of all requests with latency <= x
        share = 0.0
        for k in kinds:
            pct: list[int] = k.result.get("pct_us", [])
            if pct:
                share += k.requests * bisect.bisect_right(pct, x) / len(pct)
        return share / total

    lo, hi = 0, len(points) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if below(points[mid]) * 100 >= p:
            hi = mid
        else:
            lo = mid + 1
    return points[lo] / 1000


# --------------------------------------------------------------------------------------------------------------
# Memory: RSS of a process group (the process and every child it forked, e.g. rq work horses)
# --------------------------------------------------------------------------------------------------------------


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_parts(pid: int) -> str:
    """RssAnon / RssFile / RssShmem of one process (SQLite's WAL index is mapped shared memory)."""
    parts = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                parts[line.split(":")[0][3:].lower()] = int(line.split()[1]) / 1024
    return ", ".join(f"{k} {v:.0f}" for k, v in parts.items())


def group_rss(leader: int) -> tuple[float, float, int]:
    """(leader MB, children MB, number of children) over the processes in the leader's process group."""
    own = _rss_kb(leader)
    kids, n = 0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == leader:
            kids += _rss_kb(int(entry.name))
            n += 1
    return own / 1024, kids / 1024, n


def memory(stack: Stack) -> dict[str, tuple[float, float, int]]:
    return {name: group_rss(proc.pid) for name, proc in sorted(stack.procs.items()) if proc.poll() is None}


TICK = os.sysconf("SC_CLK_TCK")


def group_cpu(leader: int) -> float:
    """CPU seconds used so far by a process group: its live members plus the children the leader has reaped
    (rq's finished work horses)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 14 and int(fields[2]) == leader:
            # fields[11..14] are utime, stime, cutime, cstime (stat fields 14 to 17)
            ticks = int(fields[11]) + int(fields[12])
            if int(entry.name) == leader:
                ticks += int(fields[13]) + int(fields[14])
            total += ticks / TICK
    return total


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by a process and its descendants (live ones, and the children it reaped)."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
    members, todo = set(), [root]
    while todo:
        pid = todo.pop()
        members.add(pid)
        todo += [p for p, f in stats.items() if int(f[1]) == pid and p not in members]
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in members if p in stats)
    if root in stats:
        ticks += int(stats[root][13]) + int(stats[root][14])
    return ticks / TICK


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICK  # user nice system irq softirq steal


def cpu(stack: Stack, postgres: PostgresServer | None) -> dict[str, float]:
    out = {name: group_cpu(proc.pid) for name, proc in sorted(stack.procs.items()) if proc.poll() is None}
    out["redis"] = group_cpu(stack.redis._proc.pid) if stack.redis._proc is not None else 0.0
    if postgres is not None and postgres._pid is not None:
        out["postgres"] = tree_cpu(postgres._pid)
    return out


# --------------------------------------------------------------------------------------------------------------
# Data: records in the database, scans to upload
# --------------------------------------------------------------------------------------------------------------


def seed_records(n: int) -> tuple[list[str], int]:
    """Store n records (10 % of another unit) as a worker would; returns the ids of UNIT's and the last change_seq."""
    registry = default_registry()
    ids: list[str] = []
    rng = random.Random(7)
    with_year = [2023, 2024, 2025]
    batch = 250
    for start in range(0, n, batch):
        with session_scope() as s:
            for i in range(start, min(n, start + batch)):
                data = random_record(10_000 + i)
                data |= {"form": "cdht-self-assessment", "year": rng.choice(with_year)}
                if rng.random() < 0.15:  # some with a wrong declared total: needs_review
                    data["total_declared"] = float(data["total_declared"]) + 1
                record = validate_document(Record.model_validate(data), registry)
                unit = OTHER_UNIT if i % 10 == 9 else UNIT
                row = store_record(s, unit=unit, job_id=None, doc_key=uuid.uuid4().hex, record=record, pages={})
                if row is not None and unit == UNIT:
                    ids.append(row.id)
    with session_scope() as s:
        max_seq = int(s.scalar(select(func.max(RecordRow.change_seq))) or 0)
    return ids, max_seq


def blank_png_without_iend(seed: int) -> bytes:
    """A blank-ish A4 page scanned at 100 dpi (1169 x 827 px, grey): paper tone, a shadowed edge, specks."""
    rng = np.random.default_rng(seed)
    img = np.full((1169, 827), 246, np.uint8)
    img[:, :14] = 205  # the platen's shadow along one edge
    for _ in range(120):
        y, x = int(rng.integers(0, 1165)), int(rng.integers(0, 823))
        img[y:y + int(rng.integers(1, 4)), x:x + int(rng.integers(1, 4))] = int(rng.integers(60, 200))
    ok, png = cv2.imencode(".png", img)
    assert ok
    data = png.tobytes()
    assert data[-12:-8] == b"\0\0\0\0" and data[-8:-4] == b"IEND"
    return data[:-12]


def form_scans(count: int, seed: int) -> list[list[bytes]]:
    """`count` people's filled-in self-assessments, printed and scanned (200 dpi, degraded), as JPEG pages."""
    out = []
    kinds = ("rotate", "noise", "jpeg", "blur")
    for i in range(count):
        pages = degrade(rasterise(render_document("cdht-self-assessment", random_record(seed + i))),
                        kinds[i % len(kinds)], seed=seed + i)
        jpgs = []
        for page in pages:
            ok, jpg = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 80])
            assert ok
            jpgs.append(jpg.tobytes())
        out.append(jpgs)
    get_converter().close()
    return out


def lua_list(items: list[str]) -> str:
    return "return {" + ",".join(json.dumps(x) for x in items) + "}\n"


# --------------------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------------------


def replace_api(stack: Stack, processes: int) -> None:
    """The API as `formsvc serve --processes N` (uvicorn's master and N processes in one process group)."""
    stack.kill("api", signal.SIGTERM)
    stack.start_api(processes)


def split_clients(total: int) -> dict[str, int]:
    uploads = max(1, round(total * 0.2))
    health = max(1, round(total * 0.1))
    rest = max(3, total - uploads - health)
    lst, rec = rest // 3 + (rest % 3 > 0), rest // 3 + (rest % 3 > 1)
    return {"upload": uploads, "list": lst, "record": rec, "feed": rest - lst - rec, "health": health}


def parse_mix(text: str) -> dict[str, int]:
    out = {}
    for item in text.split(","):
        name, _, n = item.partition("=")
        if name.strip() not in ("upload", *READS, "health") or not n.strip().isdigit():
            raise SystemExit(f"--mix: bad item {item!r}")
        out[name.strip()] = int(n)
    if not out.get("health"):
        raise SystemExit("--mix: health (the baseline) needs at least one connection")
    return out


def job_counts() -> dict[str, Any]:
    with session_scope() as s:
        status = dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        page_errors = dict(s.execute(select(PageErrorRow.code, func.count()).group_by(PageErrorRow.code)).all())
        records = s.scalar(select(func.count()).select_from(RecordRow)) or 0
        audits = s.scalar(select(func.count()).select_from(ReadAudit)) or 0
    return {"jobs": {str(k): int(v) for k, v in status.items()},
            "page_errors": {str(k): int(v) for k, v in page_errors.items()}, "records": int(records),
            "read_audits": int(audits)}


ACCESS = re.compile(r'"(GET|POST|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d{3})'  # uvicorn's access log
                    r"|formsvc\.access \w+ \S+ (GET|POST|PATCH|DELETE) (\S+) (\d{3}) ([\d.]+)ms")  # formsvc's


def _route(path: str) -> str:
    return re.sub(r"/[0-9a-f]{32}(?=/|$)", "/{id}", path.split("?", 1)[0])


def log_findings(root: Path, since: dict[str, int]) -> tuple[list[str], dict[str, list[float]]]:
    """Error responses and exceptions in the service's logs written after `since` (byte offsets per log), and
    the time spent inside the API per route (formsvc's access log has it; uvicorn's does not)."""
    lines: list[str] = []
    inside: dict[str, list[float]] = {}
    for log in sorted(root.glob("*.log")):
        with log.open("rb") as fh:
            fh.seek(since.get(log.name, 0))
            text = fh.read().decode(errors="replace").splitlines()
        statuses: Counter[tuple[str, str, str]] = Counter()
        for line in text:
            m = ACCESS.search(line)
            if m is None:
                continue
            method, path, status = (m.group(1), m.group(2), m.group(3)) if m.group(1) else m.group(4, 5, 6)
            route = f"{method} {_route(path)}"
            if m.group(7):
                inside.setdefault(route, []).append(float(m.group(7)))
            if not 200 <= int(status) < 400:
                statuses[(method, _route(path), status)] += 1
        for (method, path, status), n in statuses.most_common(10):
            lines.append(f"{log.name}: {n} x {method} {path} -> {status}")
        problems = Counter(re.sub(r"^[\d-]+ [\d:,]+ ", "", line.strip())[:200] for line in text
                           if re.search(r"Traceback|database is locked|ERROR|CRITICAL|Exception|WARNING", line))
        for line, n in problems.most_common(8):
            lines.append(f"{log.name}: {n} x {line}")
    return lines, inside


def log_sizes(root: Path) -> dict[str, int]:
    return {log.name: log.stat().st_size for log in root.glob("*.log")}


def fmt_mem(mem: dict[str, tuple[float, float, int]], name: str) -> str:
    if name not in mem:
        return "-"
    own, kids, n = mem[name]
    return f"{own:.0f}" + (f" (+{kids:.0f} in {n} child{'ren' if n != 1 else ''})" if n else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=int, default=120, help="load duration (default 120)")
    ap.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite under the stack's dir)")
    ap.add_argument("--postgres", action="store_true",
                    help="a throwaway PostgreSQL server (tests/servers.py) instead of --database-url")
    ap.add_argument("--records", type=int, default=2000, help="records seeded before the load (default 2000)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent connections in all (default 50)")
    ap.add_argument("--mix", default=None,
                    help="connections per kind instead of the default split of --clients, e.g. "
                         "upload=10,list=12,record=12,feed=11,health=5 (a kind left out gets none)")
    ap.add_argument("--api-processes", type=int, default=1,
                    help="1: `formsvc serve` (default); N > 1: `uvicorn --workers N` on the same app, for comparison "
                         "(`formsvc serve` has no such option)")
    ap.add_argument("--workers", type=int, default=2, help="rq worker processes (default 2)")
    ap.add_argument("--think-ms", type=int, default=0,
                    help="mean pause between a reading client's requests, 0.5x to 1.5x at random (default 0)")
    ap.add_argument("--upload-think-ms", type=int, default=None,
                    help="the same for uploading clients (default: --think-ms)")
    ap.add_argument("--form-every", type=int, default=25, help="every Nth upload is a real form (default 25)")
    ap.add_argument("--forms", type=int, default=3, help="distinct real forms rendered (default 3)")
    ap.add_argument("--settle", type=float, default=10, help="seconds after the load before the last RSS reading")
    ap.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout in seconds (default 10)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the stack's directory (logs, database) here")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    print(f"rendering {args.forms} forms (LibreOffice) ...", flush=True)
    forms = form_scans(args.forms, seed=500)
    print(f"  {time.monotonic() - t0:.1f} s; pages {[len(f) for f in forms]}, "
          f"{sum(len(p) for f in forms for p in f) / len(forms) / 1e3:.0f} kB per form", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="formsvc-load-"))
    root = args.keep or tmp / "stack"
    scripts = tmp / "lua"
    scripts.mkdir()
    failed = False
    try:
        with contextlib.ExitStack() as servers:
            pg = servers.enter_context(PostgresServer()) if args.postgres else None
            if pg is not None:
                args.database_url = pg.url
            redis = servers.enter_context(RedisServer())
            stack = servers.enter_context(running_stack(root, redis=redis, workers=args.workers,
                                                        database_url=args.database_url))
            if args.api_processes > 1:
                replace_api(stack, args.api_processes)
            os.environ["FORMSVC_DATA_DIR"] = str(root / "data")
            os.environ["FORMSVC_DATABASE_URL"] = args.database_url or f"sqlite:///{(root / 'data' / 'formsvc.db')}"
            get_settings.cache_clear()
            dispose_engines()
            db_kind = "PostgreSQL" if args.database_url else "SQLite"
            t0 = time.monotonic()
            ids, max_seq = seed_records(args.records)
            print(f"seeded {args.records} records ({db_kind}) in {time.monotonic() - t0:.1f} s; "
                  f"{len(ids)} readable by the clerk's unit, change_seq up to {max_seq}", flush=True)
            clerk = stack.new_key("clerk", UNIT)
            integration = stack.new_key("integration", UNIT)

            blank = scripts / "blank.png.part"
            blank.write_bytes(blank_png_without_iend(1))
            form_paths = []
            for i, pages in enumerate(forms):
                paths = []
                for j, jpg in enumerate(pages):
                    p = scripts / f"form{i}-{j}.jpg"
                    p.write_bytes(jpg)
                    paths.append(str(p))
                form_paths.append(paths)
            (scripts / "forms.lua").write_text("return {" + ",".join(
                "{" + ",".join(json.dumps(p) for p in ps) + "}" for ps in form_paths) + "}\n")
            (scripts / "ids.lua").write_text(lua_list(ids))

            split = split_clients(args.clients) if not args.mix else parse_mix(args.mix)
            args.clients = sum(split.values())
            upload_think = args.think_ms if args.upload_think_ms is None else args.upload_think_ms
            run = uuid.uuid4().hex[:8]
            common = {"boundary": BOUNDARY, "run": run}
            bodies = {
                "upload": (clerk, LUA_UPLOAD % {**common, "blank_png": blank, "forms_file": scripts / "forms.lua",
                                                "form_every": args.form_every}),
                "list": (clerk, LUA_LIST % {"pages": max(1, min(10, len(ids) // 20))}),
                "record": (clerk, LUA_RECORD % {"ids_file": scripts / "ids.lua"}),
                "feed": (integration, LUA_FEED % {"max_seq": max_seq}),
                "health": (clerk, LUA_HEALTH),
            }
            labels = {"upload": "POST /v1/submissions", "list": "GET /v1/records?limit=20",
                      "record": "GET /v1/records/{id}", "feed": "GET /v1/records?after=N&limit=50",
                      "health": "GET /v1/health (baseline)"}
            kinds = []
            for n, (name, (key, body)) in enumerate(bodies.items()):
                if not split.get(name):
                    continue
                lua = scripts / f"{name}.lua"
                think = upload_think if name == "upload" else args.think_ms
                lua.write_text(LUA_COMMON % {"key": key, "think": think, "seed": n,
                                             "keepalive_ms": UVICORN_KEEPALIVE_MS - 500} + body)
                kinds.append(Kind(name, labels[name], split[name], key, str(lua)))

            # Warm-up: 1 s of one connection per kind (first imports, connections, jobs), then the "before" reading.
            with httpx.Client(base_url=stack.url, timeout=60) as c:
                for k in kinds:
                    r = subprocess.run(["wrk", "-t1", "-c1", "-d1s", "-s", k.lua, stack.url],
                                       capture_output=True, text=True, timeout=60)
                    if "BENCHJSON" not in r.stdout:
                        raise RuntimeError(f"wrk warm-up for {k.name} failed: {r.stdout}\n{r.stderr}")
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    counts = job_counts()["jobs"]
                    if not counts.get("queued") and not counts.get("running"):
                        break
                    time.sleep(0.5)
                c.get("/v1/health")
            time.sleep(2)
            before_jobs = job_counts()
            mem_before = memory(stack)
            api_parts = {"before": rss_parts(stack.procs["api"].pid)}
            print(f"warm-up done; jobs {before_jobs['jobs']}", flush=True)

            print(f"load: {args.clients} connections for {args.seconds} s "
                  f"({', '.join(f'{k.name} {k.connections}' for k in kinds)}), think {args.think_ms} ms "
                  f"(uploads {upload_think} ms), "
                  f"{args.workers} workers", flush=True)
            for k in kinds:
                k.out = scripts / f"{k.name}.out"
                with k.out.open("wb") as fh:
                    k.proc = subprocess.Popen(
                        ["wrk", "-t1", f"-c{k.connections}", f"-d{args.seconds}s", f"--timeout={args.timeout}s",
                         "-s", k.lua, stack.url], stdout=fh, stderr=subprocess.STDOUT)
            peak: dict[str, float] = {}
            timeline: list[tuple[float, dict[str, float]]] = []
            logs_at_start = log_sizes(root)
            cpu_before, wrk_before = cpu(stack, pg), resource.getrusage(resource.RUSAGE_CHILDREN)
            busy_before, self_before = machine_busy(), resource.getrusage(resource.RUSAGE_SELF)
            started = time.monotonic()
            while any(k.proc is not None and k.proc.poll() is None for k in kinds):
                sample = {name: own + kids for name, (own, kids, _) in memory(stack).items()}
                timeline.append((time.monotonic() - started, sample))
                for name, mb in sample.items():
                    peak[name] = max(peak.get(name, 0.0), mb)
                time.sleep(1)
                if time.monotonic() - started > args.seconds + args.timeout + 60:
                    for k in kinds:
                        if k.proc is not None and k.proc.poll() is None:
                            k.proc.kill()
            load_s = time.monotonic() - started
            cpu_after, wrk_after = cpu(stack, pg), resource.getrusage(resource.RUSAGE_CHILDREN)
            busy_after, self_after = machine_busy(), resource.getrusage(resource.RUSAGE_SELF)
            cpu_used = {name: cpu_after[name] - cpu_before[name] for name in cpu_after if name in cpu_before}
            cpu_used["wrk (all)"] = (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime
                                                                                + wrk_before.ru_stime)
            busy_s = busy_after - busy_before
            cpu_used["this script"] = (self_after.ru_utime + self_after.ru_stime) - (self_before.ru_utime
                                                                                    + self_before.ru_stime)
            cpu_used["other processes on the machine"] = max(0.0, busy_after - busy_before - sum(cpu_used.values()))
            mem_after = memory(stack)
            api_parts["after load"] = rss_parts(stack.procs["api"].pid)
            after_jobs = job_counts()
            for k in kinds:
                text = k.out.read_text(errors="replace") if k.out else ""
                m = re.search(r"^BENCHJSON (.*)$", text, re.M)
                if m is None:
                    print(f"wrk {k.name} gave no result:\n{text[-2000:]}")
                    failed = True
                    continue
                k.result = json.loads(m.group(1))
            time.sleep(args.settle)
            mem_settle = memory(stack)
            api_parts[f"after +{args.settle:.0f} s"] = rss_parts(stack.procs["api"].pid)
            settle_jobs = job_counts()
            findings, inside = log_findings(root, logs_at_start)
            dispose_engines()

        # -- report ------------------------------------------------------------------------------------------------
        print()
        print(f"== Load, {dt.date.today().isoformat()}: {args.clients} clients, {args.seconds} s, {db_kind}, "
              f"{args.workers} workers, {args.records} records seeded, think {args.think_ms} ms "
              f"(uploads {upload_think} ms)"
              + (f", API: {args.api_processes} processes (formsvc serve --processes)" if args.api_processes > 1 else "")
              + " ==")
        head = (f"{'kind':<34} {'conns':>5} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
                f"{'p99 ms':>8} {'max ms':>8}  errors")
        print(head)
        print("-" * len(head))
        for k in kinds:
            if not k.result:
                print(f"{k.label:<34} {k.connections:>5}  no result")
                continue
            err = ", ".join(f"{n} {what}" for what, n in k.errors.items()) or "0"
            bad = {c: n for c, n in k.result.get("codes", {}).items() if not 200 <= int(c) < 400}
            if bad:
                err += " (" + ", ".join(f"{n} x HTTP {c}" for c, n in sorted(bad.items())) + ")"
            print(f"{k.label:<34} {k.connections:>5} {k.requests:>9} {k.requests / k.seconds:>8.1f} "
                  f"{k.pct_ms(50):>8.1f} {k.pct_ms(95):>8.1f} {k.pct_ms(99):>8.1f} "
                  f"{k.result['max_us'] / 1000:>8.1f}  {err}")
        reads = [k for k in kinds if k.name in READS and k.result]
        if not reads:
            reads = [k for k in kinds if k.name == "health"]
        health = next(k for k in kinds if k.name == "health")
        total_req = sum(k.requests for k in kinds if k.result)
        total_s = max((k.seconds for k in kinds if k.result), default=1.0)
        read_req = sum(k.requests for k in reads)
        read_p95 = combined_pct_ms(reads, 95)
        print(f"{'all reads (list+record+feed)':<34} {sum(k.connections for k in reads):>5} {read_req:>9} "
              f"{read_req / total_s:>8.1f} {combined_pct_ms(reads, 50):>8.1f} {read_p95:>8.1f} "
              f"{combined_pct_ms(reads, 99):>8.1f}")
        print(f"{'all':<34} {args.clients:>5} {total_req:>9} {total_req / total_s:>8.1f}")
        errors = sum(k.error_count for k in kinds)
        print()
        hp95 = health.pct_ms(95) if health.result else float("nan")
        print(f"baseline: p95 GET /v1/health = {hp95:.1f} ms (same server, same run)")
        print(f"ratio p95(record reads) / p95(health) = {read_p95 / hp95:.2f}x" + "".join(
            f"; {k.name} {k.pct_ms(95) / hp95:.2f}x" for k in reads))
        up = next((k for k in kinds if k.name == "upload"), Kind("upload", "", 0, "", ""))
        done_in_run = after_jobs["jobs"].get("done", 0) - before_jobs["jobs"].get("done", 0)
        failed_in_run = after_jobs["jobs"].get("failed", 0) - before_jobs["jobs"].get("failed", 0)
        print(f"uploads accepted: {up.ok} ({up.ok / max(up.seconds, 1e-9):.1f}/s); jobs finished during the load: "
              f"{done_in_run} done + {failed_in_run} failed ({(done_in_run + failed_in_run) / args.seconds:.1f}/s "
              f"with {args.workers} workers)")
        for label, jc in (("after load", after_jobs), (f"after +{args.settle:.0f} s", settle_jobs)):
            print(f"jobs {label}: {jc['jobs']}; records {jc['records']}; page errors {jc['page_errors']}; "
                  f"read audits {jc['read_audits']}")
        cores = os.cpu_count() or 1
        print(f"CPU during the load ({load_s:.0f} s x {cores} cores = {load_s * cores:.0f} core-s, "
              f"{100 * busy_s / (load_s * cores):.0f} % busy): " + ", ".join(
            f"{name} {used:.0f} s ({100 * used / load_s:.0f} % of a core)" for name, used in cpu_used.items()))
        print()
        print("RSS in MB (process + its children, e.g. rq work horses):")
        print(f"{'process':<12} {'before':>22} {'after load':>22} {f'after +{args.settle:.0f} s':>22} "
              f"{'peak (sum)':>10}")
        for name in sorted(set(mem_before) | set(mem_after) | set(mem_settle)):
            print(f"{name:<12} {fmt_mem(mem_before, name):>22} {fmt_mem(mem_after, name):>22} "
                  f"{fmt_mem(mem_settle, name):>22} {peak.get(name, 0):>10.0f}")
        print("  api RSS parts in MB: " + "; ".join(f"{when}: {parts}" for when, parts in api_parts.items()))
        n_marks = 4 if args.seconds < 300 else 10
        marks = [args.seconds * q / n_marks for q in range(1, n_marks + 1)]
        picked = [min(timeline, key=lambda ts: abs(ts[0] - m)) for m in marks] if timeline else []
        for name in sorted(peak):
            print(f"  {name} during the load: " + ", ".join(f"{t:.0f} s {sample.get(name, 0):.0f}"
                                                              for t, sample in picked))
        if inside:
            print()
            print("time inside the API process per route (formsvc's access log, the outermost middleware: it "
                  "includes waiting for a threadpool thread and for the GIL):")
            for route, ms in sorted(inside.items(), key=lambda kv: -len(kv[1])):
                ms.sort()
                print(f"  {route:<34} {len(ms):>7} requests  p50 {ms[len(ms) // 2]:7.1f} ms  "
                      f"p95 {ms[int(len(ms) * 0.95)]:7.1f} ms  p99 {ms[int(len(ms) * 0.99)]:7.1f} ms")
        if findings:
            print()
            print("in the service's logs:")
            for line in findings:
                print("  " + line)
        print()
        verdict = []
        if errors:
            verdict.append(f"{errors} errors (target 0)")
        if not read_p95 < READ_P95_TARGET_MS:
            verdict.append(f"read p95 {read_p95:.1f} ms (target < {READ_P95_TARGET_MS:.0f} ms)")
        print("RESULT: " + ("FAIL: " + "; ".join(verdict) if verdict or failed else
                            f"ok: 0 errors, read p95 {read_p95:.1f} ms < {READ_P95_TARGET_MS:.0f} ms"))
        if args.keep:
            print(f"stack directory kept: {root}")
        return 1 if verdict or failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
