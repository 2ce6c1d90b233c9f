"""Logging for the processes formsvc starts: plain text for a terminal, or JSON lines (FORMSVC_LOG_FORMAT=json)
for a log collector. Both carry the job being worked on (job id, attempt, kind, unit) on every line logged while
it runs, and stage timings (`stage`, `ms`, with `file` and `page` where there is one) as fields, so a slow job
can be taken apart from its log lines alone."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from formsvc.settings import get_settings

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("formsvc_log_context", default={})  # noqa: B039
# LogRecord attributes every record has: anything else on a record came from `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s%(fields)s"


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged inside carries `fields` (a job's id, attempt, ...)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_") and k != "fields"}
    return {**_context.get(), **extra}


class ContextFilter(logging.Filter):
    """Puts the bound fields on the record as text, for the plain format."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = _fields(record)
        record.fields = (" " + " ".join(f"{k}={v}" for k, v in found.items())) if found else ""
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the bound and extra fields, and
    the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(), **_fields(record)}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure() -> None:
    """Set up the root logger once per process from the settings (idempotent: a second call replaces the
    handler it made)."""
    s = get_settings()
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_formsvc", False)]:
        root.removeHandler(h)
    handler = logging.StreamHandler()
    handler._formsvc = True  # type: ignore[attr-defined]
    if s.log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.addFilter(ContextFilter())
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(s.log_level.upper())


@contextmanager
def stage(log: logging.Logger, name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Time a stage and log it at INFO when it ends (also when it fails, with `failed: true`). The caller may add
    fields to the yielded dict (counts known only at the end)."""
    extra: dict[str, Any] = dict(fields)
    start = time.perf_counter()
    failed = True
    try:
        yield extra
        failed = False
    finally:
        ms = round((time.perf_counter() - start) * 1000, 1)
        log.info("%s: %.0f ms", name, ms, extra={**extra, "stage": name, "ms": ms, **({"failed": True} if failed
                                                                                          else {})})
