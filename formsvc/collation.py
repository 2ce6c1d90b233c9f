"""Vietnamese alphabetical order, and the order units sort lists of people in.

Python's default order puts every accented letter after 'z' ('Ánh' after 'Yến', 'Đức' after 'Yên').
The Vietnamese alphabet is a ă â b c d đ e ê g h i k l m n o ô ơ p q r s t u ư v x y: letters with a
breve, circumflex or horn are letters of their own, compared first; tone marks only break ties, in the
dictionary order ngang, huyền, hỏi, ngã, sắc, nặng. No ICU is installed, and this is all we need.

Lists of people (decisions, minutes) sort by given name, which in a Vietnamese name is its last word,
then by the rest of the name from the family name on.
"""

from __future__ import annotations

import unicodedata

ALPHABET = "aăâbcdđeêghiklmnoôơpqrstuưvxy"
# Letters outside the alphabet (f, j, w, z in foreign names) sort after their nearest neighbour.
_EXTRA = {"f": "e", "j": "i", "w": "v", "z": "y"}
_LETTER_MARKS = {"\u0306": "ă", "\u0302": "â", "\u031b": "ơ"}  # breve, circumflex, horn
# Tone marks in dictionary order: none, huyền, hỏi, ngã, sắc, nặng.
_TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}
_RANK = {ch: n * 2 for n, ch in enumerate(ALPHABET)} | {k: ALPHABET.index(v) * 2 + 1 for k, v in _EXTRA.items()}


def _letter(base: str, marks: str) -> str:
    if base == "đ":
        return base
    if "\u0306" in marks and base == "a":
        return "ă"
    if "\u0302" in marks and base in "aeo":
        return {"a": "â", "e": "ê", "o": "ô"}[base]
    if "\u031b" in marks and base in "ou":
        return {"o": "ơ", "u": "ư"}[base]
    return base


def vietnamese_key(text: str) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """Sort key: letters of the Vietnamese alphabet first, then tones, then the exact text (stable for equals).

    Characters that are not letters (digits, spaces, hyphens) keep their code point order before letters,
    so 'An' < 'An Bình' < 'Anh'.
    """
    letters: list[int] = []
    tones: list[int] = []
    for ch in unicodedata.normalize("NFC", text).lower():
        decomposed = unicodedata.normalize("NFD", ch)
        base, marks = decomposed[0], decomposed[1:]
        letter = _letter(base, marks)
        if letter in _RANK:
            letters.append(1000 + _RANK[letter])
            tones.append(max((_TONES.get(m, 0) for m in marks), default=0))
        elif ch.isspace():
            letters.append(0)
            tones.append(0)
        else:
            letters.append(1 + min(ord(base), 998))
            tones.append(0)
    return tuple(letters), tuple(tones), text


def name_sort_key(full_name: str) -> tuple[tuple[tuple[int, ...], tuple[int, ...], str], ...]:
    """Order of a list of people: by given name (the last word), then family and middle names."""
    words = unicodedata.normalize("NFC", full_name).split()
    if not words:
        return (vietnamese_key(""),)
    return vietnamese_key(words[-1]), vietnamese_key(" ".join(words[:-1]))
