"""Bring a database to the newest schema with alembic (run by `formsvc serve|worker|up` and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from formsvc.db.engine import prepare_sqlite_file
from formsvc.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().resolved_database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None) -> None:
    url = url or get_settings().resolved_database_url
    prepare_sqlite_file(url)
    command.upgrade(alembic_config(url), "head")
