"""`formsvc serve` (the API) and `formsvc up` (Redis, workers, dispatcher and API on embedded defaults)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, unquote, urlparse, urlunparse

import typer

from formsvc.errors import ConfigError
from formsvc.private import create_private_file, private_dir, read_or_create_secret
from formsvc.settings import get_settings


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def redis_password_file(data_dir: Path) -> Path:
    return data_dir / "redis-password.txt"


def with_redis_password(url: str, data_dir: Path) -> str:
    """`url` with the local Redis password (made on first start, kept in data_dir, mode 0600), unless the
    operator's URL already carries one (a shared Redis on another machine: see docs/scaling.md)."""
    parsed = urlparse(url)
    if parsed.password:
        return url
    password = read_or_create_secret(redis_password_file(data_dir))
    host = parsed.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    netloc = f":{quote(password, safe='')}@{host}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def masked_redis_url(url: str) -> str:
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return url.replace(f":{parsed.password}@", ":***@", 1)


def start_redis(url: str, data_dir: Path) -> subprocess.Popen[bytes] | None:
    """Start a local redis-server for `url` unless one already listens there. The password of `url` becomes
    `requirepass`: with `--bind` given, Redis turns protected mode off, so without a password anything that
    reaches the port could write jobs. The password goes in on stdin, never on the command line (ps shows it)."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if _listening(host, port):
        return None
    exe = shutil.which("redis-server")
    if exe is None:
        raise ConfigError("Không tìm thấy redis-server; hãy chạy scripts/dev.sh setup.", code="redis_missing")
    folder = private_dir(data_dir / "redis")
    config = f"requirepass {unquote(parsed.password)}\n" if parsed.password else ""
    proc = subprocess.Popen([exe, "-", "--bind", host, "--port", str(port), "--dir", str(folder.resolve()),
                             "--save", "60 1", "--appendonly", "yes", "--protected-mode", "yes"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    proc.stdin.write(config.encode())
    proc.stdin.close()
    deadline = time.monotonic() + 10
    while not _listening(host, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ConfigError(f"Không khởi động được Redis ở cổng {port}.", code="redis_start_failed")
        time.sleep(0.05)
    return proc


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="Port")] = 8000,
              processes: Annotated[int, typer.Option(help="API processes (uvicorn workers)")] = 1) -> None:
        """Run the HTTP API and web UI."""
        import uvicorn

        from formsvc.db import upgrade
        from formsvc.logs import configure

        configure()
        upgrade()  # once, here: several API processes must not race to migrate a fresh database
        # uvicorn's own access log prints query strings (which can hold names); ours does not.
        # log_config=None: uvicorn's lines go through formsvc's handler (text or JSON lines, FORMSVC_LOG_FORMAT);
        # each API process sets that handler up itself in migrated_app.
        uvicorn.run("formsvc.api.app:migrated_app", factory=True, host=host, port=port, log_level="info",
                    access_log=False, workers=max(1, processes), log_config=None)

    @app.command("up")
    def up(host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
           port: Annotated[int, typer.Option(help="Port")] = 8000,
           workers: Annotated[int | None, typer.Option(help="rq worker processes (default FORMSVC_WORKERS)")] = None
           ) -> None:
        """Start everything on embedded defaults: Redis (if not running), worker(s), the dispatcher and the API."""
        settings = get_settings()
        private_dir(settings.data_dir)
        # Every child (workers, dispatcher, API) reads the password from the URL it inherits.
        os.environ["FORMSVC_REDIS_URL"] = with_redis_password(settings.redis_url, settings.data_dir)
        get_settings.cache_clear()
        settings = get_settings()
        children: list[subprocess.Popen[bytes]] = []

        def stop(*_: object) -> None:
            for p in reversed(children):
                if p.poll() is None:
                    p.terminate()
            for p in children:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
            raise SystemExit(0)

        # Handlers first: a stop request that arrives while children start must still stop them.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        redis = start_redis(settings.redis_url, settings.data_dir)
        if redis is not None:
            children.append(redis)
        from formsvc.db import session_scope, upgrade
        from formsvc.service.auth import ensure_admin_key

        upgrade()
        with session_scope() as s:
            first_key = ensure_admin_key(s)
        me = [sys.executable, "-m", "formsvc.cli"]
        commands = [[*me, "worker", "--name", f"{socket.gethostname()}-{os.getpid()}-{i}-{{n}}"]
                    for i in range(workers if workers is not None else settings.workers)]
        commands.append([*me, "dispatch"])
        helpers = [subprocess.Popen([a.format(n=0) for a in cmd]) for cmd in commands]
        children.extend(helpers)
        api = subprocess.Popen([*me, "serve", "--host", host, "--port", str(port)])
        children.append(api)
        deadline = time.monotonic() + 60
        while not _listening(host, port) and time.monotonic() < deadline and api.poll() is None:
            time.sleep(0.1)
        print(f"formsvc đang chạy: http://{host}:{port}  (giao diện web: http://{host}:{port}/ , "
              f"API: http://{host}:{port}/docs)", flush=True)
        print(f"Dữ liệu: {settings.data_dir.resolve()}   Redis: {masked_redis_url(settings.redis_url)}", flush=True)
        if first_key:
            key_file = settings.data_dir / "first-admin-key.txt"
            key_file.unlink(missing_ok=True)  # a stale file from an earlier database: replace it, still 0600
            create_private_file(key_file, first_key + "\n")
            print(f"Khóa quản trị đầu tiên (chỉ hiện lần này, cũng lưu ở {key_file}): {first_key}", flush=True)
        else:
            print("Đã có khóa quản trị; tạo thêm bằng: formsvc keys create --role admin", flush=True)
        restarts = 0
        while api.poll() is None:
            time.sleep(1)
            for i, proc in enumerate(helpers):
                if proc.poll() is not None:  # a worker or the dispatcher died: its work is retried, restart it
                    restarts += 1
                    print(f"Tiến trình {' '.join(commands[i][3:4])} đã dừng (mã {proc.returncode}); khởi động lại.",
                          flush=True)
                    helpers[i] = subprocess.Popen([a.format(n=restarts) for a in commands[i]])
                    children.append(helpers[i])
        stop()
