"""Engine and sessions. One engine per process and URL; SQLite gets WAL and a busy timeout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from formsvc.errors import BusyError
from formsvc.settings import get_settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers go on while a worker writes; busy_timeout turns short lock waits into waiting.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={int(get_settings().db_busy_timeout_s * 1000)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def prepare_sqlite_file(url: str) -> None:
    """The embedded database holds personal data and key hashes: its folder is made 0700 and the file 0600
    before SQLite opens it (SQLite would create it 0644; its -wal and -shm files copy the main file's mode)."""
    if not url.startswith("sqlite:///"):
        return
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    if not path or path == ":memory:":
        return
    from formsvc.private import create_private_file, private_dir

    private_dir(Path(path).parent)
    create_private_file(Path(path))


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                prepare_sqlite_file(url)
                engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, pool_timeout=10,
                                       connect_args={"connect_timeout": 5})
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """After a fork, and between tests: connections must never be shared across processes."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)
        _engines.clear()


_factories: dict[str, sessionmaker[Session]] = {}


def _factory(url: str | None) -> sessionmaker[Session]:
    engine = get_engine(url)
    key = str(engine.url)
    if key not in _factories or _factories[key].kw.get("bind") is not engine:
        _factories[key] = sessionmaker(bind=engine, expire_on_commit=False)
    return _factories[key]


def unavailable(exc: Exception) -> BusyError:
    return BusyError("Cơ sở dữ liệu đang bận hoặc tạm thời không truy cập được; vui lòng thử lại sau ít phút.",
                     code="database_unavailable", hint="Hệ thống sẽ tự phục hồi; không cần gửi lại dữ liệu khác.",
                     detail={"reason": type(exc).__name__})


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on any error; database outages become BusyError (503)."""
    session = _factory(url)()
    try:
        yield session
        session.commit()
    except (OperationalError, DBAPIError) as exc:
        session.rollback()
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise unavailable(exc) from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"

