"""formsvc: render, ingest and validate CDHT / ĐVHT assessment forms."""

__version__ = "0.1.0"
