"""Vietnamese text helpers: NFC storage form and an accent-folded key for matching."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def nfc(text: str) -> str:
    """Store and compare text in NFC; collapse runs of white space."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def fold(text: str) -> str:
    """Accent-folded, lower-case key: 'Nguyễn Thị Hương' -> 'nguyen thi huong'.

    'đ' has no combining mark in Unicode, so it is mapped by hand.
    """
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", stripped.lower()).strip()


def _vietnamese_vowels() -> frozenset[str]:
    tones = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
    vowels = {unicodedata.normalize("NFC", base + tone) for base in ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ",
                                                                     "u", "ư", "y") for tone in tones}
    return frozenset(vowels | {ch.upper() for ch in vowels})


VIETNAMESE_VOWELS = _vietnamese_vowels()
_CONSONANTS = "bcdfghjklmnpqrstvwxzđ"
VIETNAMESE_LETTERS = VIETNAMESE_VOWELS | frozenset(_CONSONANTS + _CONSONANTS.upper())


def name_letters(text: str) -> tuple[str, int]:
    """A person's name keeping only letters of the Vietnamese alphabet (and space, hyphen, apostrophe) in words
    that can be syllables (every Vietnamese syllable has a vowel); returns the name and how many characters were
    dropped. OCR sometimes adds marks no Vietnamese name has ('NÑgô' -> 'Ngô') or reads a speck or a fold at the
    line's end as a letter ('Đỗ Kim Trường S'); the count lets the caller lower its confidence."""
    text = nfc(text)
    kept = "".join(ch for ch in text if ch in VIETNAMESE_LETTERS or ch in " -'")
    words = [w.strip("-'") for w in kept.split()]
    kept = " ".join(w for w in words if any(ch in VIETNAMESE_VOWELS for ch in w))
    return nfc(kept), len(text.replace(" ", "")) - len(kept.replace(" ", ""))
