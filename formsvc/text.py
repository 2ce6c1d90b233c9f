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


def _vietnamese_letters() -> frozenset[str]:
    tones = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
    vowels = [unicodedata.normalize("NFC", base + tone) for base in ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ",
                                                                     "u", "ư", "y") for tone in tones]
    lower = {*vowels, *"bcdfghjklmnpqrstvwxzđ"}
    return frozenset(lower | {ch.upper() for ch in lower})


VIETNAMESE_LETTERS = _vietnamese_letters()


def name_letters(text: str) -> tuple[str, int]:
    """A person's name keeping only letters of the Vietnamese alphabet (and space, hyphen, apostrophe);
    returns the name and how many characters were dropped. OCR sometimes adds marks no Vietnamese name has
    ('NÑgô' -> 'Ngô'); the count lets the caller lower its confidence."""
    text = nfc(text)
    kept = "".join(ch for ch in text if ch in VIETNAMESE_LETTERS or ch in " -'")
    return nfc(kept), len(text) - len(kept)
