"""Warm a worker before rq forks its work horses.

rq's worker forks one work horse per job: whatever the worker process has loaded before the fork, every work
horse starts with (copy-on-write, nothing copied until written), and whatever a job loads dies with its work
horse. Left cold, every job imported the job's modules and loaded each Tesseract model again. So the worker
loads them once, before it takes its first job, and keeps forking: a job that crashes (a segfault in Tesseract,
the kernel's OOM killer) still takes only its own work horse down, and the next one starts from the same clean,
warm parent.

The parent never runs a job, so its engines are never left mid-recognition; they are fork-safe because nothing
in the parent recognises at the moment of a fork (OpenMP is limited to one thread, see extract.ocr).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

log = logging.getLogger(__name__)


def warm_up() -> dict[str, float]:
    """Load what extraction loads lazily; seconds each part took. A part that fails is logged and skipped: the
    job that needs it will report the failure itself, with its own message."""
    timings: dict[str, float] = {}

    def part(name: str, load: object) -> None:
        start = time.perf_counter()
        try:
            load()  # type: ignore[operator]
        except Exception:  # a cold worker is slower, not broken
            log.exception("warm-up of %s failed; jobs will load it themselves", name)
            return
        timings[name] = round(time.perf_counter() - start, 3)

    import formsvc.extract.pipeline  # noqa: F401  (OpenCV, pdfium, the readers)
    from formsvc.criteria import default_registry
    from formsvc.extract import ocr
    from formsvc.render.registry import list_forms

    blank = np.full((64, 256), 255, np.uint8)
    # rq imports a job's function in the work horse, by name: left to it, every job imported the service layer,
    # SQLAlchemy's ORM and alembic again (a second per job on this machine, more than its Tesseract models).
    part("job_modules", _job_modules)
    part("criteria", default_registry)
    part("forms", list_forms)
    # One call through each public entry of extract.ocr creates the engine (language, layout mode, character
    # list) that entry uses: Tesseract loads its model when an engine is made, not when it is used.
    part("tesseract_osd", lambda: ocr.upright_turns(blank, 200))
    part("tesseract_page", lambda: ocr.read_words(blank, "vie", ocr.PSM_AUTO))
    part("tesseract_id_line", lambda: ocr.read_words(blank, "eng", ocr.PSM_LINE))
    part("tesseract_numbers", lambda: ocr.read_numbers_twice([blank]))
    part("tesseract_lines", lambda: ocr.read_lines([blank]))
    part("digit_models", _digit_models)
    return timings


def _job_modules() -> None:
    import importlib

    from sqlalchemy.orm import configure_mappers

    for module in ("worker.jobs", "formsvc.render.pack", "formsvc.render.dossier", "formsvc.service.dossier"):
        importlib.import_module(module)
    configure_mappers()  # done once here, not at each work horse's first query


def _digit_models() -> None:
    from formsvc.extract import digits

    digits._shipped()  # the CNN and its calibration, loaded once per process


def engines_loaded() -> int:
    """Tesseract engines this process holds (for the worker's health report)."""
    from formsvc.extract import ocr

    return len(getattr(ocr, "_ENGINES", {}))


WARM_KEY = "formsvc:warm:{}"


def publish_warm_state(worker_name: str, timings: dict[str, float]) -> None:
    """Tell the health check (through Redis, beside rq's own worker registration) what this worker loaded."""
    from redis.exceptions import RedisError

    from formsvc.service.queue import get_redis

    state = {"engines": engines_loaded(), "warm": bool(timings), "at": time.time()}
    try:
        get_redis().set(WARM_KEY.format(worker_name), json.dumps(state), ex=30 * 86400)
    except RedisError:
        log.warning("could not record the worker's warm state in Redis; health will show it as unknown")
