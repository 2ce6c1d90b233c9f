"""Shared fixtures. Tests write their artefacts under a per-test tmp dir."""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest

from tests.servers import PostgresServer, RedisServer

# Tesseract's OpenMP threads make it several times slower on this 2-core machine.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


# Files marked here rather than by their own `pytestmark` (test_digits.py is being rewritten in parallel; its
# new version should carry `pytestmark = pytest.mark.slow` and this entry then goes).
SLOW_FILES = {"test_digits.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the PostgreSQL cluster is a `service` test wherever it is, so the fast tier never waits
    for initdb even when its author forgot the marker."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.service)
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _printed_copy_keys() -> Iterator[None]:
    """Every printed copy's key (printed in both codes and the id line) comes from the test printing it, not from
    chance, so a test reads the same pages in every run: a key whose id line OCR misreads fails every run, not one
    CI run in a hundred. Keys stay distinct within a test."""
    counters: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)

    def key() -> str:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        return hashlib.sha256(f"{test}#{next(counters[test])}".encode()).hexdigest()[:10]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("formsvc.render.api.new_doc_id", key)
        mp.setattr("formsvc.render.pack.new_doc_id", key)
        yield


@pytest.fixture(scope="module")
def _converter() -> Iterator[None]:
    """LibreOffice, started by the module's first render, stopped after its last test."""
    yield
    from formsvc.render.converter import get_converter

    get_converter().close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


# The PostgreSQL variant needs a server cluster: it runs in the full suite, the SQLite one also in the fast tier.
@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Service tests run on both supported databases: None means the embedded SQLite default."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database(f"t_{uuid.uuid4().hex[:12]}")
