"""A long-lived LibreOffice converter: started on first use, restarted after N conversions or a failure.

One bridge process (uno_bridge.py under Debian's python3) drives one soffice. Conversions are serialised;
callers wait in a bounded queue and get a BusyError when it is full; each conversion has a timeout after
which soffice is killed and restarted, so a hung document never blocks the next request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from formsvc.errors import BusyError, ExternalToolError
from formsvc.logs import stage
from formsvc.settings import get_settings

log = logging.getLogger(__name__)

BRIDGE = Path(__file__).with_name("uno_bridge.py")


class Converter:
    def __init__(self, *, soffice: str | None = None, timeout_s: float | None = None,
                 restart_after: int | None = None, queue_max: int | None = None) -> None:
        s = get_settings()
        self.soffice = soffice or s.soffice_path
        self.timeout_s = timeout_s or s.convert_timeout_s
        self.restart_after = restart_after or s.convert_restart_after
        self.queue_max = queue_max or s.convert_queue_max
        self._lock = threading.Lock()
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._profile: str | None = None
        self._done = 0
        self.restarts = 0
        self.office_pid: int | None = None

    # -- process management -------------------------------------------------------------------
    def _start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="formsvc-lo-")
        pipe_name = f"formsvc-{uuid.uuid4().hex[:12]}"
        self._proc = subprocess.Popen(
            [get_settings().uno_python, str(BRIDGE), self.soffice, pipe_name, self._profile],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True,  # its own process group: a kill takes soffice with it
        )
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self._proc, self._lines), daemon=True).start()
        first = json.loads(self._read(get_settings().convert_start_timeout_s))
        self.office_pid = first.get("pid")
        if not first.get("ready"):
            self._kill()
            raise ExternalToolError("Không khởi động được LibreOffice để chuyển sang PDF.",
                                    code="converter_start_failed")
        self._done = 0

    @staticmethod
    def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _read(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise ExternalToolError(
                f"LibreOffice không trả lời sau {timeout:.0f} giây; đã khởi động lại, vui lòng thử lại.",
                code="converter_timeout") from None
        if line is None:
            self._kill()
            raise ExternalToolError("LibreOffice dừng bất thường; đã khởi động lại, vui lòng thử lại.",
                                    code="converter_crashed")
        return line

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            self.restarts += 1
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(15)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._kill()

    def office_processes(self) -> list[int]:
        """Pids of the running soffice.bin in this converter's process group (for health checks and fault tests)."""
        if self._proc is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                comm = stat[stat.index("(") + 1: stat.rindex(")")]
                pgid = int(stat[stat.rindex(")") + 2:].split()[2])
            except (OSError, ValueError):
                continue
            if pgid == self._proc.pid and comm.startswith("soffice"):
                pids.append(int(entry.name))
        return pids

    # -- conversion ----------------------------------------------------------------------------
    def convert_file(self, src: Path, dst: Path) -> None:
        with self._waiting_lock:
            if self._waiting >= self.queue_max:
                raise BusyError("Máy chuyển đổi PDF đang bận, vui lòng thử lại sau ít phút.", code="converter_busy")
            self._waiting += 1
        try:
            with self._lock, stage(log, "convert_pdf", file=src.name) as fields:
                if self._proc is None or self._proc.poll() is not None:
                    self._kill()
                    self._start()
                    fields["started_office"] = True
                assert self._proc is not None and self._proc.stdin is not None
                self._proc.stdin.write(json.dumps({"in": str(src), "out": str(dst)}) + "\n")
                self._proc.stdin.flush()
                reply = json.loads(self._read(self.timeout_s))
                self._done += 1
                if self._done >= self.restart_after:
                    self._kill()  # LibreOffice grows over time; a fresh one starts on the next request
                if not reply.get("ok"):
                    self._kill()  # a failed conversion may leave soffice broken: start clean next time
                    raise ExternalToolError(f"LibreOffice không chuyển được tài liệu: {reply.get('error')}",
                                            code="conversion_failed")
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def docx_to_pdf(self, docx: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="formsvc-conv-") as tmp:
            src, dst = Path(tmp) / "in.docx", Path(tmp) / "out.pdf"
            src.write_bytes(docx)
            self.convert_file(src, dst)
            return dst.read_bytes()


_shared: Converter | None = None
_shared_lock = threading.Lock()


def get_converter() -> Converter:
    """The process-wide converter (each worker process has its own)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Converter()
        return _shared
