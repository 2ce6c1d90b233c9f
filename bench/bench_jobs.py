"""Per-job overhead of the rq workers: 50 one-page uploads, one after the other, through the whole service.

One `formsvc worker` (rq forks a work horse per job), the API and the dispatcher as tests/stack.py starts them,
real Redis, SQLite. Each upload is the first page of a filled-in `cdht-self-assessment`, printed and scanned
(200 dpi, noise), made unique by a JPEG comment so the content-hash dedupe never answers it. The next upload is
sent when the previous job is done, so every job pays whatever a cold work horse pays (loading the Tesseract
models, the digit models, the criteria, ...).

Printed: seconds per job (upload sent -> job done, polled every 20 ms) as median / mean / min / max, and the
first job apart (the worker's own start-up is not part of it: one warm-up job runs before the timing).

    PYTHONPATH=$PWD python bench/bench_jobs.py [--jobs 50] [--cold]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from fixtures.scans import degrade, random_record, rasterise  # noqa: E402
from formsvc.render import render_document  # noqa: E402
from formsvc.render.converter import get_converter  # noqa: E402
from tests.servers import RedisServer  # noqa: E402
from tests.stack import running_stack  # noqa: E402

UNIT = "Trường bench công việc"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--cold", action="store_true", help="FORMSVC_WORKER_WARM_UP=false: the worker as before")
    args = ap.parse_args()
    [page, *_] = degrade(rasterise(render_document("cdht-self-assessment", random_record(7))), "noise", seed=7)
    get_converter().close()
    redis = RedisServer()
    redis.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp, \
                running_stack(Path(tmp), redis=redis, workers=1,
                              env={"FORMSVC_WORKER_WARM_UP": "false" if args.cold else "true"}) as stack:
            clerk = stack.client(stack.new_key("clerk", UNIT))

            def one(i: int) -> float:
                ok, encoded = cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 85])
                assert ok
                # Unique bytes, same image: a JPEG comment segment (FF FE) with a counter, right after SOI.
                tag = f"bench {i}".encode()
                jpg = encoded.tobytes()
                jpg = jpg[:2] + b"\xff\xfe" + (len(tag) + 2).to_bytes(2, "big") + tag + jpg[2:]
                t0 = time.perf_counter()
                r = clerk.post("/v1/submissions", files={"files": (f"trang-{i}.jpg", jpg, "image/jpeg")})
                r.raise_for_status()
                job_id = r.json()["id"]
                while True:
                    job = clerk.get(f"/v1/jobs/{job_id}").json()
                    if job["status"] in ("done", "failed"):
                        assert job["status"] == "done", job
                        return time.perf_counter() - t0
                    time.sleep(0.02)

            first = one(10_000)
            times = [one(i) for i in range(args.jobs)]
    finally:
        redis.stop()
    print(f"{args.jobs} one-page uploads, one {'cold' if args.cold else 'warm'} worker, one at a time: "
          f"seconds per job median "
          f"{statistics.median(times):.2f}, mean {statistics.mean(times):.2f}, min {min(times):.2f}, "
          f"max {max(times):.2f}; warm-up job {first:.2f}")


if __name__ == "__main__":
    main()
