"""Files and folders that hold secrets or personal data: created private from the first byte.

A file written with the default mode and chmod-ed afterwards is readable by every local user in between
(and stays so if the process dies before the chmod), so secrets are created with os.open(..., 0o600).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents readable by this user only (Path.mkdir would give the parents
    the default mode). An existing folder is left as it is: the operator may have chosen its mode on purpose."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
    return path


def create_private_file(path: Path, text: str = "") -> bool:
    """Create `path` with mode 0600 and write `text`; False (nothing written) when it already exists."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The secret stored in `path`, made (random, URL-safe, mode 0600) the first time."""
    create_private_file(path, secrets.token_urlsafe(nbytes) + "\n")
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty")
    return value
