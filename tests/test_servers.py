"""The throwaway Redis / PostgreSQL servers in tests/servers.py really work and really go away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from tests.servers import PostgresServer, RedisServer, find_postgres_bin, free_port

pytestmark = pytest.mark.service

ROOT = Path(__file__).resolve().parent.parent


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_closed(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _port_open(port):
            return True
        time.sleep(0.1)
    return False


def _postgres_available() -> bool:
    try:
        find_postgres_bin()
    except RuntimeError:
        return False
    return True


needs_postgres = pytest.mark.skipif(not _postgres_available(), reason="PostgreSQL server binaries not installed")


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_redis_round_trip_restart_and_stop() -> None:
    with RedisServer() as server:
        assert server.port is not None
        port, workdir = server.port, server.dir
        assert server.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.set("greeting", "xin chào")
        assert client.get("greeting") == "xin chào".encode()

        server.restart()
        assert server.port == port  # same port, so existing clients can reconnect
        assert server.dir != workdir and workdir is not None and not workdir.exists()
        # the same client object reconnects; the data is gone since there is no persistence
        assert client.ping()
        assert client.get("greeting") is None
        assert client.set("after", "restart")
        assert client.get("after") == b"restart"
        client.close()
        workdir = server.dir

    assert not server.running
    assert not _port_open(port)
    assert workdir is not None and not workdir.exists()


@needs_postgres
def test_postgres_round_trip_new_database_and_stop() -> None:
    with PostgresServer() as server:
        assert server.port is not None
        port, workdir = server.port, server.dir
        assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/formsvc_test"

        engine = create_engine(server.url)
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            assert conn.execute(text("select current_database()")).scalar_one() == "formsvc_test"
            assert conn.execute(text("show server_encoding")).scalar_one() == "UTF8"
        engine.dispose()

        other_url = server.new_database("formsvc_extra")
        assert other_url.endswith(f":{port}/formsvc_extra")
        other = create_engine(other_url)
        with other.begin() as conn:
            conn.execute(text("create table t (name text)"))
            conn.execute(text("insert into t values ('Đơn vị học tập')"))
        with other.connect() as conn:
            assert conn.execute(text("select name from t")).scalar_one() == "Đơn vị học tập"
            tables = conn.execute(text("select count(*) from pg_tables where schemaname = 'public'")).scalar_one()
            assert tables == 1
        other.dispose()

    assert not server.running
    assert not _port_open(port)
    assert workdir is not None and not workdir.exists()


_ORPHAN_SCRIPT = """
import os, sys
from tests.servers import {cls}
server = {cls}().start()
print(server.port, server.dir, flush=True)
os.kill(os.getpid(), 9)  # no atexit, no finally: only the watchdog can clean up
"""


@pytest.mark.parametrize("cls", ["RedisServer", pytest.param("PostgresServer", marks=needs_postgres)])
def test_server_is_reaped_when_owner_is_killed(cls: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ORPHAN_SCRIPT.format(cls=cls)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    port_text, workdir = proc.stdout.split()
    assert _wait_closed(int(port_text)), f"{cls} still listening after its owner was killed"
    deadline = time.monotonic() + 10
    while os.path.exists(workdir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(workdir)
