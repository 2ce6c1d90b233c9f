"""Storage: tables, engine/sessions and migrations."""

from formsvc.db.engine import dispose_engines, get_engine, session_scope
from formsvc.db.migrate import upgrade

__all__ = ["dispose_engines", "get_engine", "session_scope", "upgrade"]
