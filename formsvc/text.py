"""Vietnamese text helpers: NFC storage form and an accent-folded key for matching."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator

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


def foreign_marks_dropped(text: str) -> str:
    """`text` with each letter no Vietnamese word has read as its base letter when that one is Vietnamese: OCR puts
    the tilde or hat of the line above on a consonant ("Ngô" read "Ñgô")."""
    def base(ch: str) -> str:
        if ch in VIETNAMESE_LETTERS or not ch.isalpha():
            return ch
        bare = "".join(m for m in unicodedata.normalize("NFD", ch) if not unicodedata.combining(m))
        return bare if bare in VIETNAMESE_LETTERS else ch
    return "".join(base(ch) for ch in nfc(text))


def name_key(text: str) -> str:
    """What a printed name and a name read back are compared by: its words' letters and digits (and a hyphen or
    apostrophe within a word: "H'Hen Niê"), other punctuation and spacing left out ("Nguyễn V. An" is "Nguyễn V
    An"), case kept (a name read "Nguyễn thu Hà" is not the name printed), every word kept (a unit's "Trường THCS
    số 2" is not "Trường số")."""
    words = ("".join(ch for ch in word if ch.isalnum() or ch in "-'").strip("-'") for word in nfc(text).split())
    return " ".join(w for w in words if w)


# A vowel's letter family (the letters a hat or a horn makes of it) and the five tone marks: what a black-and-white
# threshold, a blur or a fold turns into one another ("ũ" read "ù", "ỗ" read "ỏ"), the letters staying the letters.
_FAMILIES = ("aăâ", "eê", "i", "oôơ", "uư", "y", "dđ")
_TONES = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
_FAMILY_OF = {ch: fam for fam in _FAMILIES for ch in fam}
# Vowels Tesseract also takes for other vowels on a damaged print, Vietnamese's commonest names pulling it ("Thu"
# read "Thị", "Hồng" "Hầng", "Võ" "Vã", "Ngọc" "Ngục", "Quốc" "Quạc"): tried after the marks alone, one word at a time.
_LOOKALIKE_OF = _FAMILY_OF | {ch: "aăâoôơ" for ch in "aăâ"} | {ch: "oôơaăâuư" for ch in "oôơ"} \
    | {ch: "uưoôơi" for ch in "uư"} | {"i": "iuư"}
MAX_WORD_VARIANTS = 400  # per word: "Nguyễn" has 64, "Trường" 66


def _split_tone(ch: str) -> tuple[str, str]:
    """'ễ' -> ('ê', tilde); 'đ' -> ('đ', '')."""
    decomposed = unicodedata.normalize("NFD", ch)
    tone = next((m for m in decomposed if m in _TONES), "")
    return unicodedata.normalize("NFC", decomposed.replace(tone, "")) if tone else ch, tone


def word_variants(word: str, lookalikes: bool = False) -> list[str]:
    """`word` with its hats, horns, tone mark and đ changed every way a syllable can carry them (one tone mark at
    most, on any of its vowels), its letters otherwise as they are (`lookalikes`: its vowels also as the vowels
    Tesseract takes them for); `word` itself first."""
    families = _LOOKALIKE_OF if lookalikes else _FAMILY_OF
    letters: list[list[str]] = []
    vowels: list[int] = []
    for i, ch in enumerate(word):
        base, _ = _split_tone(ch.lower())
        family = families.get(base)
        if family is None:
            letters.append([ch])
            continue
        options = [f.upper() if ch.isupper() else f for f in family]
        letters.append(options)
        if base not in "dđ":
            vowels.append(i)
    out = [word]
    seen = {word}
    for bases in itertools.product(*letters):
        for at, tone in [(None, ""), *((i, t) for i in vowels for t in _TONES)]:
            chars = list(bases)
            if at is not None:
                chars[at] = unicodedata.normalize("NFC", chars[at] + tone)
            variant = "".join(chars)
            if variant not in seen:
                seen.add(variant)
                out.append(variant)
            if len(out) >= MAX_WORD_VARIANTS:
                return out
    return out


def tone_variants(name: str, max_words: int = 2, budget: int = 20_000,
                  lookalikes: bool = False) -> Iterator[list[str]]:
    """Readings of `name` differing from it only in the hats, horns, tone marks and đ of at most `max_words` of its
    words (`lookalikes`: their vowels also as the vowels Tesseract takes them for, word_variants), in tiers: the name
    itself, then every one-word change, then every two-word change; at most `budget` in all (a long line of noise
    read as a name would make millions), the last tier cut short."""
    words = name.split()
    options = [word_variants(w, lookalikes)[1:] for w in words]
    yield [name]
    left = budget - 1
    for changed in range(1, min(max_words, len(words)) + 1):
        tier: list[str] = []
        for which in itertools.combinations(range(len(words)), changed):
            for swaps in itertools.product(*(options[i] for i in which)):
                if len(tier) >= left:
                    yield tier
                    return
                out = list(words)
                for i, w in zip(which, swaps, strict=True):
                    out[i] = w
                tier.append(" ".join(out))
        left -= len(tier)
        yield tier
