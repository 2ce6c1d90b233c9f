"""Shared fixtures. Tests write their artefacts under a per-test tmp dir."""

from __future__ import annotations

import os

# Tesseract's OpenMP threads make it several times slower on this 2-core machine.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
