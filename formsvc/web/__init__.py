"""Server-rendered Vietnamese web UI."""
