"""Polling instead of sleeping: a test waits exactly as long as the condition takes, and says what it waited for.

A fixed `time.sleep(n)` is either too short on a loaded machine (flaky) or too long everywhere (slow)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None], timeout: float = 30, interval: float = 0.1, what: str = "condition"
) -> T:
    """Call `predicate` until it returns something truthy and return that; fail after `timeout` seconds.

    The predicate is always called once more at the deadline, so a slow last poll still counts."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def holds_for(predicate: Callable[[], object], duration: float, interval: float = 0.1, what: str = "condition") -> None:
    """Check that `predicate` stays true for `duration` seconds (e.g. "no further event arrives"); fails at the
    first poll where it is false instead of sleeping the whole time and looking once."""
    deadline = time.monotonic() + duration
    while True:
        if not predicate():
            raise AssertionError(f"{what} stopped holding")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
