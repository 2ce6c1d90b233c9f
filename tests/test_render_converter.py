"""The long-lived LibreOffice converter under faults: timeouts, crashes, restarts and a full queue."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from formsvc.criteria import load_registry
from formsvc.errors import BusyError, ExternalToolError
from formsvc.render.context import build_context
from formsvc.render.converter import Converter
from formsvc.render.docx import render_docx
from formsvc.render.registry import get_form
from tests.polling import wait_until

pytestmark = pytest.mark.slow  # about a minute: LibreOffice started, frozen, killed and restarted again and again

DOCX = render_docx(get_form("cdht-registration-progress"),
                   build_context(get_form("cdht-registration-progress"), None, load_registry()))


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (SIGKILL has taken effect either way)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2:].startswith("Z")


@pytest.fixture
def converter() -> Iterator[Converter]:
    conv = Converter(timeout_s=60, restart_after=100, queue_max=4)
    yield conv
    conv.close()


def test_converts_and_reuses_one_office(converter: Converter) -> None:
    assert converter.docx_to_pdf(DOCX).startswith(b"%PDF")
    pid = converter.office_pid
    assert converter.docx_to_pdf(DOCX).startswith(b"%PDF")
    assert converter.office_pid == pid and converter.restarts == 0


def test_restarts_after_n_conversions() -> None:
    conv = Converter(timeout_s=60, restart_after=2, queue_max=4)
    try:
        conv.docx_to_pdf(DOCX)
        first = conv.office_pid
        conv.docx_to_pdf(DOCX)  # second conversion hits the limit: office is retired
        assert conv.restarts == 1
        conv.docx_to_pdf(DOCX)
        assert conv.office_pid != first
    finally:
        conv.close()


def test_timeout_gives_clear_error_and_next_request_works(converter: Converter) -> None:
    converter.docx_to_pdf(DOCX)  # warm up
    converter.timeout_s = 0.001
    with pytest.raises(ExternalToolError) as exc:
        converter.docx_to_pdf(DOCX)
    assert exc.value.code == "converter_timeout" and "LibreOffice" in exc.value.message
    converter.timeout_s = 60
    assert converter.docx_to_pdf(DOCX).startswith(b"%PDF")
    assert converter.restarts >= 1


def test_office_crash_between_requests_recovers(converter: Converter) -> None:
    converter.docx_to_pdf(DOCX)
    old = converter.office_processes()
    assert old
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: all(_dead(p) for p in old), 10, what="the killed office to be gone")
    # Either the crash is noticed before the request (transparent restart) or the request fails with a
    # clear error; in both cases the following request works on a fresh office.
    try:
        converter.docx_to_pdf(DOCX)
    except ExternalToolError as exc:
        assert exc.code in ("conversion_failed", "converter_crashed")
    assert converter.docx_to_pdf(DOCX).startswith(b"%PDF")
    assert converter.office_processes() and not set(old) & set(converter.office_processes())


def test_office_crash_during_request_is_a_clear_error(converter: Converter) -> None:
    converter.docx_to_pdf(DOCX)
    converter.timeout_s = 20
    pids = converter.office_processes()
    assert pids
    # Freeze the office so the request is certainly in flight, then kill it.
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    def kill_all() -> None:
        for p in pids:
            os.kill(p, signal.SIGKILL)

    threading.Timer(1.0, kill_all).start()
    started = time.monotonic()
    with pytest.raises(ExternalToolError) as exc:
        converter.docx_to_pdf(DOCX)
    assert exc.value.code in ("conversion_failed", "converter_crashed", "converter_timeout")
    assert time.monotonic() - started < 20
    assert converter.docx_to_pdf(DOCX).startswith(b"%PDF")


def test_full_queue_is_busy_not_blocking() -> None:
    conv = Converter(timeout_s=60, restart_after=100, queue_max=1)
    try:
        conv._lock.acquire()  # a long conversion is in progress
        waiter = threading.Thread(target=lambda: conv.docx_to_pdf(DOCX))
        waiter.start()
        wait_until(lambda: conv._waiting >= 1, 5, 0.01, "the first request waiting in line")
        started = time.monotonic()
        with pytest.raises(BusyError) as exc:
            conv.docx_to_pdf(DOCX)
        assert time.monotonic() - started < 1
        assert exc.value.http_status == 503 and exc.value.code == "converter_busy"
        conv._lock.release()
        waiter.join(60)
        assert not waiter.is_alive()
    finally:
        conv.close()


def test_broken_document_is_a_clear_error(converter: Converter) -> None:
    with pytest.raises(ExternalToolError):
        converter.docx_to_pdf(b"PK\x03\x04 this is not a real docx")
    assert converter.docx_to_pdf(DOCX).startswith(b"%PDF")
