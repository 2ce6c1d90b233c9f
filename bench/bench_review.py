"""Time and keystrokes for a reviewer to clear 100 flagged boxes from 20 sheets in the review queue.

Usage: .venv/bin/python bench/bench_review.py [--sheets 20] [--per-sheet 5] [--keep DIR]
Needs: Debian's `chromium` and `redis-server`; LibreOffice (the sheets are rendered).

What runs: the whole service as tests/stack.py starts it (uvicorn API, dispatcher, Redis, SQLite). The sheets
(fixtures/review_seed.py): `cdht-self-assessment` forms rendered by formsvc, scores written into the boxes in real
held-out handwriting (MNIST positions 200..249), the page faxed, noisy, soft or over-compressed; every box read by
the recogniser and the `--per-sheet` least sure boxes of each sheet flagged with the recogniser's own value,
confidence and candidates. Stored directly (not through an upload job): the queue is what is measured.

The reviewer is Playwright driving Debian's Chromium (1280x860) with the keyboard only, knowing the value written
on each box, as a person reading the crop does:
* the value shown (the recogniser's) is right: Enter (1 key);
* another candidate is right: its letter, B..E (1 key);
* none is: type the value ("7,5") and Enter.
Two runs on separate sheets: "as read" (the rule above) and "typed" (every value typed, the worst case).

Per box, "machine" time is from the box on screen (its crop loaded) to the next box on screen: page, API and
database, no human. People also look and decide: "estimated person" adds the keystroke-level model's figures
(Card, Moran & Newell): 1.35 s to look at the crop and decide, 0.28 s per keystroke (an average typist).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import Page, sync_playwright

from fixtures.review_seed import SeededBox, seed_flagged
from formsvc.db import dispose_engines
from formsvc.settings import get_settings
from tests.servers import RedisServer
from tests.stack import running_stack

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
LETTERS = "abcde"
THINK_S = 1.35  # KLM "M": look at the crop, decide
KEY_S = 0.28  # KLM "K": one keystroke, average typist
BOX_SHOWN = """([r, f]) => { const b = document.querySelector('#rq-box'), img = document.querySelector('#rq-crop'),
  root = document.querySelector('#rq');
  if (root.dataset.state === 'done') return true;
  return root.dataset.state === 'box' && (b.dataset.record !== r || b.dataset.field !== f)
    && img.complete && img.naturalWidth > 0 && !img.classList.contains('is-loading'); }"""


def vn(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def clear_queue(page: Page, boxes: list[SeededBox], mode: str) -> list[tuple[float, int, str]]:
    """(seconds, keystrokes, how) per box, in the order the queue showed them."""
    truth = {(b.record_id, b.field): b for b in boxes}
    page.goto("/review")
    page.wait_for_function(BOX_SHOWN, arg=["", ""])
    out = []
    for _ in range(len(boxes)):
        box_el = page.locator("#rq-box")
        shown = (str(box_el.get_attribute("data-record")), str(box_el.get_attribute("data-field")))
        box = truth[shown]
        t0 = time.perf_counter()
        if mode == "as read" and box.truth in box.choices:
            i = box.choices.index(box.truth)
            page.keyboard.press("Enter" if i == 0 else LETTERS[i])
            keys, how = 1, "Enter" if i == 0 else "letter"
        else:
            text = vn(box.truth)
            page.keyboard.type(text)
            page.keyboard.press("Enter")
            keys, how = len(text) + 1, "typed"
        page.wait_for_function(BOX_SHOWN, arg=list(shown), timeout=30_000)
        out.append((time.perf_counter() - t0, keys, how))
    page.wait_for_function("document.querySelector('#rq').dataset.state === 'done'", timeout=60_000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheets", type=int, default=20)
    ap.add_argument("--per-sheet", type=int, default=5)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-review-"))
    units = {"as read": "Trường THCS Đo Duyệt", "typed": "Trường TH Gõ Tay"}
    with ExitStack() as es:
        redis = es.enter_context(RedisServer())
        stack = es.enter_context(running_stack(root, redis=redis, workers=0))
        os.environ.pop("FORMSVC_DATABASE_URL", None)
        os.environ["FORMSVC_DATA_DIR"] = stack.env["FORMSVC_DATA_DIR"]
        get_settings.cache_clear()
        t = time.perf_counter()
        seeded = {mode: seed_flagged(unit, args.sheets, args.per_sheet, seed=900 + 100 * n)
                  for n, (mode, unit) in enumerate(units.items())}
        dispose_engines()
        print(f"seeded {args.sheets} sheets x {args.per_sheet} flagged boxes x {len(units)} runs "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        results = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for mode, unit in units.items():
                key = stack.new_key("reviewer", unit)
                context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 860},
                                              locale="vi-VN")
                page = context.new_page()
                page.goto("/login")
                page.fill("#key", key)
                page.keyboard.press("Enter")
                page.wait_for_url(f"{stack.url}/")
                results[mode] = clear_queue(page, seeded[mode], mode)
                context.close()
            browser.close()
    today = dt.date.today().isoformat()
    print(f"\n## Review queue (issue 11) — {today}\n")
    print(f"`.venv/bin/python bench/bench_review.py` — {args.sheets} sheets x {args.per_sheet} flagged boxes "
          "per run, Chromium, keyboard only.\n")
    print("| run | boxes | Enter / letter / typed | keystrokes per box | machine s per box (mean, p95) | "
          "estimated person s per box | target |")
    print("|---|---|---|---|---|---|---|")
    for mode, rows in results.items():
        secs = [r[0] for r in rows]
        keys = [r[1] for r in rows]
        hows = [r[2] for r in rows]
        p95 = sorted(secs)[max(0, round(0.95 * len(secs)) - 1)]
        person = statistics.mean(s + THINK_S + KEY_S * k for s, k in zip(secs, keys, strict=True))
        print(f"| {mode} | {len(rows)} | {hows.count('Enter')} / {hows.count('letter')} / {hows.count('typed')} | "
              f"{statistics.mean(keys):.2f} | {statistics.mean(secs):.3f}, {p95:.3f} | {person:.2f} | "
              "< 3 s, < 2 keys |")
    for mode, rows in results.items():
        print(f"{mode}: machine total {sum(r[0] for r in rows):.1f} s for {len(rows)} boxes")


if __name__ == "__main__":
    main()
