"""Content-addressed file store: a file is known by the SHA-256 of its bytes, written once, atomically.

A crash mid-write leaves only a temporary file (never a half-written stored file); storing the same bytes
twice keeps one copy (and refreshes its mtime: see `delete_unless_touched`). Works on a local folder or a
shared mount (several API/worker machines).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from formsvc.errors import LimitError, NotFoundError
from formsvc.private import private_dir
from formsvc.settings import get_settings

_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)  # uploaded scans are personal data
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not _SHA.match(sha256):
            raise NotFoundError("Không tìm thấy tệp.", code="file_not_found")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_stream(self, src: BinaryIO, *, limit: int | None = None) -> tuple[str, int]:
        """Copy `src` into the store; returns (sha256, size). Raises LimitError past `limit` bytes."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(_CHUNK):
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise LimitError(f"Tệp lớn hơn giới hạn {limit // (1024 * 1024)} MB.", code="file_too_large")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path(sha)
            if _touch(final):
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            return sha, size
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> str:
        import io

        return self.put_stream(io.BytesIO(data))[0]

    def delete_unless_touched(self, sha256: str, *, since: float) -> bool:
        """Remove a stored file nobody has stored again since `since` (a time.time() value); True when removed.

        The caller has checked that no row refers to the file. A writer storing the same bytes meanwhile either
        refreshed its mtime (then it stays) or, once it is set aside here, writes a fresh copy: the file is first
        renamed away atomically, so the check and the removal cannot interleave with a put of the same bytes.
        """
        final = self.path(sha256)
        grave = self.root / "tmp" / f"{sha256}.{uuid.uuid4().hex}.deleting"
        try:
            os.replace(final, grave)
        except FileNotFoundError:
            return False
        if grave.stat().st_mtime >= since:
            os.replace(grave, final)  # stored again meanwhile: put it back (same bytes, whoever wins)
            return False
        grave.unlink()
        return True

    def read_bytes(self, sha256: str) -> bytes:
        path = self.path(sha256)
        if not path.is_file():
            raise NotFoundError("Không tìm thấy tệp đã lưu.", code="file_not_found")
        return path.read_bytes()


def _touch(path: Path) -> bool:
    """Mark an already stored file as just stored again (its mtime), so a concurrent removal of an unused file
    (`delete_unless_touched`) leaves it; False when there is no such file (then the caller writes it)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def get_file_store() -> FileStore:
    return FileStore(get_settings().resolved_file_store_dir)
