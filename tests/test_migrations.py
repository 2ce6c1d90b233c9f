"""alembic migrations produce exactly the tables the code declares, on SQLite and PostgreSQL, and go down and up."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from formsvc.db.migrate import alembic_config, upgrade
from formsvc.db.tables import Base
from tests.servers import PostgresServer

pytestmark = pytest.mark.service


def _drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_the_models_and_go_down_and_up(tmp_path: Path, postgres_server: PostgresServer) -> None:
    for url in (f"sqlite:///{tmp_path / 'm.db'}", postgres_server.new_database("migrations")):
        upgrade(url)
        assert _drift(url) == [], url
        command.downgrade(alembic_config(url), "base")
        engine = create_engine(url)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        upgrade(url)
        assert _drift(url) == []
