"""Real, throwaway Redis and PostgreSQL servers for the test suite.

    with RedisServer() as redis_srv, PostgresServer() as pg:
        client = redis.Redis.from_url(redis_srv.url)
        engine = sqlalchemy.create_engine(pg.url)
        other_url = pg.new_database("formsvc_other")
        redis_srv.restart()          # same port, empty data set

Everything lives in a private temp dir that is removed on stop(). Cleanup is layered so that nothing outlives
the test process:

* stop() / the context manager, for the normal path;
* an ``atexit`` hook, for KeyboardInterrupt, ``sys.exit`` and any server a test forgot to stop;
* a tiny watchdog process per running server, which holds the read end of a pipe whose write end only this
  process holds. When this process dies in any way (SIGTERM, SIGKILL, ``os._exit`` from pytest-timeout, ...)
  the pipe reaches EOF and the watchdog kills the server and removes its temp dir. stop() disarms it first.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
import redis
from psycopg import sql

__all__ = ["PostgresServer", "RedisServer", "find_postgres_bin", "free_port"]

_HOST = "127.0.0.1"
_STOP_TIMEOUT = 5.0
_PORT_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int, host: str = _HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "<no log>"


# --------------------------------------------------------------------------------------------------------------
# Cleanup: atexit + a watchdog process per running server
# --------------------------------------------------------------------------------------------------------------

_LIVE: set[_Server] = set()

# Runs in a separate interpreter (only the stdlib, no site-packages). Blocks on the pipe: any byte means "disarmed,
# the owner cleaned up itself"; EOF means the owner died, so kill the server and remove its directory.
_WATCHDOG = r"""
import json, os, shutil, signal, sys, time
cfg = json.loads(sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_IGN)
fd = int(cfg["fd"])
try:
    data = os.read(fd, 1)
except OSError:
    data = b""
if data:
    sys.exit(0)

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

def wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)

pid = cfg["pid"]
if pid:
    try:
        os.kill(pid, cfg["sig"])
    except OSError:
        pass
    if not wait_gone(pid, cfg["timeout"]):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        wait_gone(pid, 2.0)
shutil.rmtree(cfg["dir"], ignore_errors=True)
"""


class _Watchdog:
    """Kills `pid` with `sig` (then SIGKILL) and removes `directory` if this process dies before disarm()."""

    def __init__(self, pid: int, sig: signal.Signals, directory: Path) -> None:
        read_fd, write_fd = os.pipe()  # both non-inheritable; only read_fd is passed on, explicitly
        cfg = {"fd": read_fd, "pid": pid, "sig": int(sig), "dir": str(directory), "timeout": _STOP_TIMEOUT}
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, json.dumps(cfg)],
                pass_fds=(read_fd,),
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C aimed at the test run must not reach it
            )
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        self._write_fd: int | None = write_fd

    def disarm(self) -> None:
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._write_fd, b"x")
            os.close(self._write_fd)
            self._write_fd = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


class _Server:
    """Shared lifecycle plumbing: context manager, atexit registration."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    _watchdog: _Watchdog | None
    dir: Path | None

    def __enter__(self) -> Self:
        return self.start()

    def _forget(self) -> None:
        """After the process is gone: no watchdog, no folder, not live."""
        if self._watchdog is not None:
            self._watchdog.disarm()
            self._watchdog = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        _LIVE.discard(self)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


# --------------------------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------------------------


class RedisServer(_Server):
    """A private ``redis-server`` on 127.0.0.1 without persistence.

    The port is chosen on the first start() (unless given) and kept for the object's lifetime, so restart()
    comes back on the same port - with an empty data set, which is what a real Redis restart without
    persistence looks like to clients.
    """

    def __init__(self, port: int | None = None, *, executable: str = "redis-server",
                 startup_timeout: float = 10.0) -> None:
        self.port: int | None = port
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: _Watchdog | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("RedisServer has not been started")
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        if self.running:
            return self
        binary = shutil.which(self.executable)
        if binary is None:
            raise RuntimeError(f"{self.executable!r} not found on PATH; install the redis-server package")
        fixed_port = self.port is not None
        last_error = ""
        for _ in range(_PORT_ATTEMPTS):
            port = self.port if self.port is not None else free_port()
            ok, last_error = self._try_start(binary, port)
            if ok:
                self.port = port
                return self
            if "already in use" not in last_error:
                break
            if fixed_port:
                time.sleep(0.5)  # e.g. the previous instance on this port is still going away
        raise RuntimeError(f"redis-server failed to start: {last_error}")

    def _try_start(self, binary: str, port: int) -> tuple[bool, str]:
        self.dir = Path(tempfile.mkdtemp(prefix="formsvc-redis-"))
        logfile = self.dir / "redis.log"
        args = [
            binary,
            "--port", str(port),
            "--bind", _HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(logfile),
            "--daemonize", "no",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C goes to pytest, which then stops us cleanly
        )
        self._watchdog = _Watchdog(self._proc.pid, signal.SIGTERM, self.dir)
        _LIVE.add(self)
        client = redis.Redis(host=_HOST, port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                try:
                    if client.ping():
                        return True, ""
                except redis.exceptions.RedisError:
                    pass
                time.sleep(0.02)
        finally:
            client.close()
        exited = self._proc.poll() is not None
        log = _tail(logfile)
        self.stop()
        if exited:
            return False, f"exited early on port {port}:\n{log}"
        return False, f"no PING reply on port {port} within {self.startup_timeout:.0f}s:\n{log}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget()

    def restart(self) -> Self:
        """Stop and start again on the same port (data is gone: there is no persistence)."""
        self.stop()
        return self.start()


# --------------------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------------------

_PG_OPTIONS = ("-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off")


def find_postgres_bin() -> Path:
    """The bin dir of the newest installed PostgreSQL (Debian layout), else the one holding `initdb` on PATH."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or on PATH; "
        "install the Debian 'postgresql' package"
    )


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, user ``postgres``, no durability).

    When running as root the cluster is owned by and run as the ``postgres`` OS user (via ``runuser``).
    """

    DEFAULT_DB = "formsvc_test"

    def __init__(self, port: int | None = None, *, database: str = DEFAULT_DB, startup_timeout: int = 30) -> None:
        self.port: int | None = port
        self.database = database
        self.startup_timeout = startup_timeout
        self.dir: Path | None = None
        self.bindir: Path | None = None
        self._pid: int | None = None
        self._watchdog: _Watchdog | None = None

    # --- URLs ------------------------------------------------------------------------------------------------

    def url_for(self, database: str) -> str:
        if self.port is None:
            raise RuntimeError("PostgresServer has not been started")
        return f"postgresql+psycopg://postgres@{_HOST}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default test database."""
        return self.url_for(self.database)

    @property
    def running(self) -> bool:
        return self._pid is not None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self.running:
            return self
        self.bindir = find_postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="formsvc-pg-"))
        _LIVE.add(self)
        try:
            if os.geteuid() == 0:
                import pwd

                try:
                    owner = pwd.getpwnam("postgres")
                except KeyError:
                    raise RuntimeError("running as root but there is no 'postgres' OS user to run initdb as") from None
                os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._initdb()
            self._start_cluster()
            self._connect_admin().close()
            self.new_database(self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def _as_postgres(self, *args: str | Path) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return prefix + [str(a) for a in args]

    def _run(self, cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        return subprocess.run(
            cmd, cwd=self.dir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, check=False,
        )

    def _initdb(self) -> None:
        assert self.dir is not None and self.bindir is not None
        data = self.dir / "data"
        result: subprocess.CompletedProcess[str] | None = None
        for locale in ("C.UTF-8", "C"):
            shutil.rmtree(data, ignore_errors=True)
            result = self._run(
                self._as_postgres(
                    self.bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres",
                    "--encoding=UTF8", f"--locale={locale}", "--no-sync", "--no-instructions",
                ),
                timeout=120,
            )
            if result.returncode == 0:
                return
        assert result is not None
        raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _start_cluster(self) -> None:
        assert self.dir is not None and self.bindir is not None
        data, logfile = self.dir / "data", self.dir / "postgres.log"
        fixed_port = self.port is not None
        message = ""
        for _ in range(_PORT_ATTEMPTS):
            port = self.port if self.port is not None else free_port()
            options = f"-p {port} -k {shlex.quote(str(self.dir))} {_PG_OPTIONS}"
            result = self._run(
                self._as_postgres(
                    self.bindir / "pg_ctl", "-D", data, "-l", logfile, "-w", "-t", str(self.startup_timeout),
                    "-o", options, "start",
                ),
                timeout=self.startup_timeout + 15,
            )
            pid = self._read_postmaster_pid()
            if result.returncode == 0 and pid is not None:
                self.port, self._pid = port, pid
                self._watchdog = _Watchdog(pid, signal.SIGQUIT, self.dir)  # SIGQUIT = immediate shutdown
                return
            log = _tail(logfile)
            message = f"pg_ctl start failed on port {port} (exit {result.returncode}):\n{result.stderr}\n{log}"
            self._kill_postmaster(pid)
            if "already in use" not in log or fixed_port:
                break
            logfile.unlink(missing_ok=True)
        raise RuntimeError(message)

    def _read_postmaster_pid(self) -> int | None:
        assert self.dir is not None
        try:
            first = (self.dir / "data" / "postmaster.pid").read_text().splitlines()[0]
            return int(first.strip())
        except (OSError, IndexError, ValueError):
            return None

    @staticmethod
    def _kill_postmaster(pid: int | None) -> None:
        if pid is None:
            return
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + _STOP_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def stop(self) -> None:
        """Immediate shutdown (no checkpoint), then remove the whole cluster directory."""
        if self.dir is not None and self.bindir is not None and self._pid is not None:
            try:
                result = self._run(
                    self._as_postgres(self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "immediate",
                                      "-w", "-t", str(int(_STOP_TIMEOUT)), "stop"),
                    timeout=_STOP_TIMEOUT + 10,
                )
                failed = result.returncode != 0
            except subprocess.TimeoutExpired:
                failed = True
            if failed:
                self._kill_postmaster(self._pid)
        self._pid = None
        self._forget()

    def pause(self) -> None:
        """Shut the server down (fast, data kept) to simulate an outage; `resume()` brings it back on the same port."""
        assert self.dir is not None and self.bindir is not None
        if self._watchdog is not None:
            self._watchdog.disarm()
            self._watchdog = None
        self._run(self._as_postgres(self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "-w", "stop"),
                  timeout=_STOP_TIMEOUT + 10)
        self._pid = None

    def resume(self) -> None:
        self._start_cluster()

    # --- databases -------------------------------------------------------------------------------------------

    def _connect_admin(self) -> psycopg.Connection[tuple[object, ...]]:
        if not self.running or self.port is None:
            raise RuntimeError("PostgresServer is not running")
        return psycopg.connect(host=_HOST, port=self.port, user="postgres", dbname="postgres", autocommit=True,
                               connect_timeout=10)

    def new_database(self, name: str) -> str:
        """Create an empty database `name` and return its SQLAlchemy URL."""
        with self._connect_admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)
