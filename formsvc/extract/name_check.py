"""A printed name read back, held against the check its form's code carries (formsvc.payload.name_check).

Tesseract reads a printed name's letters well and its tone marks less so: a black-and-white copier's threshold or a
blur turns "Dũng" into "Dùng", and it stays as sure of the wrong mark as of any word. The check confirms the name as
read, or finds the one reading of it with other hats, horns, tone marks or đ in at most two words that agrees; a
name with any other slip is not guessed at, a person looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from formsvc.payload import key_crc, name_crc
from formsvc.text import name_key, tone_variants

# Readings tried: at most two words of a name changed, at most MAX_READINGS of them for each of the two texts tried
# (a four-word name tries some 14,000; a line of noise read as a name, millions): the chance that a reading nobody
# printed agrees with a 32-bit check by accident stays below one in 100,000.
MAX_CHANGED_WORDS = 2
MAX_READINGS = 20_000
MAX_NAME_WORDS = 12  # a unit's long name has ten; a longer line is read as it is, its marks not varied


@dataclass(frozen=True)
class CheckedName:
    name: str
    verdict: Literal["as_read", "corrected", "differs"]


def check_name(read: str, check: str, cleaned: str | None = None) -> CheckedName:
    """The name read held against `check`: as read when it agrees, the one agreeing reading of its marks when there
    is exactly one in the first tier that has any, else `differs` (the name as read, for a person to correct).
    `cleaned`: `read` with what OCR adds to a name taken out (text.name_letters: a speck read as a letter, a stray
    ';'), tried first; then `read` itself (what was printed may hold what name_letters takes out, a unit's "THCS").
    A name agreeing is given as its letters and digits (text.name_key): only they are checked, not punctuation."""
    target = name_crc(check)
    if target is None:
        return CheckedName(cleaned or read, "differs")
    for text in dict.fromkeys(name_key(t) for t in (cleaned, read) if t):
        changed = MAX_CHANGED_WORDS if len(text.split()) <= MAX_NAME_WORDS else 0
        for tier, readings in enumerate(tone_variants(text, changed, MAX_READINGS)):
            # Readings are keys already (name_key keeps what tone_variants changes): their CRC is the check.
            agreeing = {r for r in readings if key_crc(r) == target}
            if len(agreeing) == 1:
                return CheckedName(agreeing.pop(), "as_read" if tier == 0 else "corrected")
            if agreeing:
                break  # two readings agree: the check cannot tell them apart
    return CheckedName(cleaned or read, "differs")
