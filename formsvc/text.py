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
