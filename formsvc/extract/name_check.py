"""A printed name read back, held against the check its form's code carries (formsvc.payload.name_check).

Tesseract reads a printed name's letters well and its tone marks less so: a black-and-white copier's threshold or a
blur turns "Dũng" into "Dùng", and it stays as sure of the wrong mark as of any word. The check confirms the name as
read, or finds the one reading of it with other hats, horns, tone marks or đ in at most two words that agrees, or
with one word's vowels read as their look-alikes ("Thu" read "Thị"), or the one run of its words that agrees when
OCR read specks beside it as words; a name with any other slip is not guessed at, a person looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from formsvc.payload import key_crc, name_crc
from formsvc.text import foreign_marks_dropped, name_key, tone_variants

# Readings tried: at most two words of a name changed, at most MAX_READINGS of them for each text tried and
# MAX_TRIED in all (a four-word name tries some 14,000; a line of noise read as a name, millions), and each text's
# runs of words as read (at most MAX_LINE_WORDS * MAX_NAME_WORDS): the chance that a reading nobody printed agrees
# with a 32-bit check by accident stays below one in 100,000.
MAX_CHANGED_WORDS = 2
MAX_READINGS = 20_000
MAX_TRIED = 2 * MAX_READINGS
MAX_NAME_WORDS = 12  # a unit's long name has ten; a longer line is read as it is, its marks not varied
MAX_LINE_WORDS = 40  # a name line holds a few; OCR's noise on a stained one, a few dozen


@dataclass(frozen=True)
class CheckedName:
    name: str
    verdict: Literal["as_read", "corrected", "trimmed", "differs"]


def check_name(read: str, check: str, cleaned: str | None = None) -> CheckedName:
    """The name read held against `check`: as read when it agrees, the one agreeing reading of its marks when there
    is exactly one in the first tier that has any, then the one with one word's vowels read as their look-alikes,
    then the one run of its words as read; else `differs` (the name as read, for a person to correct).
    `cleaned`: `read` with what OCR adds to a name taken out (text.name_letters: a speck read as a letter, a stray
    ';'), tried first; then `read` itself (what was printed may hold what name_letters takes out, a unit's "THCS"),
    then `read` with marks no Vietnamese letter has dropped ("Ñgô").
    A name agreeing is given as its letters and digits (text.name_key): only they are checked, not punctuation."""
    target = name_crc(check)
    if target is None:
        return CheckedName(cleaned or read, "differs")
    texts = list(dict.fromkeys(name_key(t) for t in (cleaned, read, foreign_marks_dropped(read)) if t))
    left = MAX_TRIED
    for text in texts:
        changed = MAX_CHANGED_WORDS if len(text.split()) <= MAX_NAME_WORDS else 0
        for tier, readings in enumerate(tone_variants(text, changed, max(1, min(MAX_READINGS, left)))):
            left -= len(readings)
            # Readings are keys already (name_key keeps what tone_variants changes): their CRC is the check.
            agreeing = {r for r in readings if key_crc(r) == target}
            if len(agreeing) == 1:
                return CheckedName(agreeing.pop(), "as_read" if tier == 0 else "corrected")
            if agreeing:
                return CheckedName(cleaned or read, "differs")  # two readings agree: the check cannot tell them apart
    for text in texts:
        if left <= 0:
            break
        if len(text.split()) > MAX_NAME_WORDS:
            continue
        # One word's vowels as their look-alikes: the one-word tier (the name itself, first, was tried above).
        _, readings = tone_variants(text, 1, min(MAX_READINGS, left) + 1, lookalikes=True)
        left -= len(readings)
        agreeing = {r for r in readings if key_crc(r) == target}
        if len(agreeing) == 1:
            return CheckedName(agreeing.pop(), "corrected")
        if agreeing:
            return CheckedName(cleaned or read, "differs")
    # OCR reads specks, a fold or a neighbour's ink beside a name as words of their own (held out: "Lý Kim Tuấn GUẾ
    # UHẾ Nuây", "Hồ Thu Hà: . “l4 #"): the run of words, as read, that agrees is the name printed.
    spans = {" ".join(words[i:j]) for words in (t.split()[:MAX_LINE_WORDS] for t in texts)
             for i in range(len(words)) for j in range(i + 1, min(len(words), i + MAX_NAME_WORDS) + 1)}
    agreeing = {span for span in spans - set(texts) if key_crc(span) == target}
    if len(agreeing) == 1:
        return CheckedName(agreeing.pop(), "trimmed")
    return CheckedName(cleaned or read, "differs")
