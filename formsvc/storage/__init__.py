"""Content-addressed file store."""

from formsvc.storage.files import FileStore, get_file_store

__all__ = ["FileStore", "get_file_store"]
