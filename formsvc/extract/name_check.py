"""A printed name read back, held against the check its form's code carries (formsvc.payload.name_check).

Tesseract reads a printed name's letters well and its tone marks less so: a black-and-white copier's threshold or a
blur turns "Dũng" into "Dùng", and it stays as sure of the wrong mark as of any word. The check confirms the name as
read, or finds the one reading of it with other hats, horns, tone marks or đ in at most two words that agrees; a
name with any other slip is not guessed at, a person looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from formsvc.payload import name_check
from formsvc.text import name_key, tone_variants

# Readings tried: at most two words of a name changed; a four-word name tries some 14,000, so the chance that a
# reading nobody wrote agrees with a 32-bit check by accident stays below one in 300,000.
MAX_CHANGED_WORDS = 2


@dataclass(frozen=True)
class CheckedName:
    name: str
    verdict: Literal["as_read", "corrected", "differs"]


def check_name(read: str, check: str, cleaned: str | None = None) -> CheckedName:
    """The name read held against `check`: as read when it agrees, the one agreeing reading of its marks when there
    is exactly one in the first tier that has any, else `differs` (the name as read, for a person to correct).
    `cleaned`: `read` with what OCR adds to a name taken out (text.name_letters: a speck read as a letter, a stray
    ';'), tried first; then `read` itself (what was printed may hold what name_letters takes out, a unit's "THCS"),
    whose agreeing reading is given as its letters and digits (name_key): only they are checked, not its
    punctuation."""
    for text, keyed in ((cleaned or read, False), (read, True)):
        for tier, readings in enumerate(tone_variants(text, MAX_CHANGED_WORDS)):
            agreeing = {r for r in readings if name_check(r) == check}
            if len(agreeing) == 1:
                found = agreeing.pop()
                return CheckedName(name_key(found) if keyed else found, "as_read" if tier == 0 else "corrected")
            if agreeing:
                break  # two readings agree: the check cannot tell them apart
        if cleaned is None or cleaned == read:
            break
    return CheckedName(cleaned or read, "differs")
