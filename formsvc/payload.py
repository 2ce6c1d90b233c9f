"""The QR payload printed on every page of every form that comes back (the return trip).

Format (ASCII, '|' separated, fixed field order, version-tagged so it can evolve):

    FSV1|<form>|<template_version>|<criteria_set or ->|<subject_id or ->|<year or ->|<page>/<pages>|<doc>[|<checks>]

- form: form id from the form registry (e.g. cdht-self-assessment).
- template_version: integer version of that form's template.
- criteria_set: criteria set the indicator table was printed from, '-' when none: `ID` or, once the set has
  versions accepted from official files, `ID@VERSION` (the version printed, so the form is read and validated
  against it even after a newer version is accepted). A bare `ID` means the version shipped in the data files:
  every QR printed before versions existed carries one, and still decodes.
- subject_id: roster / upstream id of the person or unit when pre-filled, '-' when blank.
- year: assessed year when known, '-' otherwise.
- page/pages: 1-based page number within this document and the document's page count.
- doc: short random id of this printed document instance; all its pages share it, so a scanned
  stack of many people's forms is regrouped into documents even when pages are shuffled.
Fields never contain '|' (ids are [A-Za-z0-9._-], a criteria-set reference may add @VERSION).

A form printed with a person's or unit's name, birth year or audience group carries, in its first code only, a
ninth field: the checks of what was printed, for reading them back without a roster. The name's check is the CRC-32
of its letters (text.name_key) in six base64url characters ('.' when no name was printed); the birth year's follows
in one base64url character ('.' when none was printed and a group follows): the year modulo 64, which tells any one
digit of a year 19xx or 20xx misread (a digit off by d changes the year by d, 10d, 100d or 1000, never a multiple
of 64); last, the group's number (criteria/groups.yaml) when a group was printed. Read back, a name's tone marks
are what OCR gets wrong (a black-and-white copier's threshold, a blur) while Tesseract stays sure: the check confirms
the name read, or the one reading of it with other marks that agrees, or sends it to a person (extract.name_check).
The field is left out when it would make the first code a denser one (render.stamp.within_first_code); the second,
smaller code and the id line carry the identity only. Codes printed before it (eight fields) still decode.

Every page carries its identity three times, far apart, so one stain, stamp, staple or fold never loses it: the
code above (bottom right), a second code with the same text plus a trailing `|2` (top right; the suffix says
which box it sits in, for aligning on it), and a printed id line (bottom margin, a monospace font made for OCR):
the same eight fields separated by spaces and a CRC-32 check of their text, so a misread line is refused, never
taken (the line carries the page's identity only, not the checks).
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import string
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from formsvc.errors import InputError
from formsvc.text import name_key

PREFIX = "FSV1"
SECOND = "2"  # trailing field of the second code
# Bounds of the numbers a code may carry (the page count's bound is a setting: Settings.max_form_pages).
MAX_TEMPLATE_VERSION = 999
MIN_YEAR, MAX_YEAR = 2000, 2100  # the years print packs accept
_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_DOC = re.compile(r"[0-9a-f]{10}")  # a printed copy's document key as the id line prints it
_PAGES = re.compile(r"\d{1,2}/\d{1,2}")  # the id line's "page/pages" field
CHECK_HEX = 8  # the id line's whole CRC-32
_CHECK = re.compile(f"[0-9A-F]{{{CHECK_HEX}}}")
_B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"  # base64url's alphabet
_NAME_CHECK = re.compile(r"^[A-Za-z0-9_-]{6}$")
_CHECKS = re.compile(r"^([A-Za-z0-9_-]{6}|\.)([A-Za-z0-9_-]|\.)?([1-9])?$")
# Readings tried per line (every way of anchoring it together), times the check's own spellings: at most this many
# chances in 2**32 that a misread line passes the check (about one in a million at worst; clean lines try a few).
MAX_TRIALS = 4096
# A fold or a streak over ONE of the check's characters: the first readings of the line (its fields as read, a few
# spellings) may pass with one check character off, against the check as read or its first other spelling:
# 8 readings x 2 spellings x 121 near checks in 2**32 per anchoring (at most three), about one chance in 700,000 that
# a misread line passes.
SLIP_TRIALS = 8
SLIP_SPELLINGS = 2
# What OCR confuses in a monospace line: each read character -> what it may stand for. The check digits decide.
_DIGIT = {"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "i": "1", "|": "1", "!": "1", "Z": "2",
          "z": "2", "S": "5", "s": "5", "B": "8", "G": "6", "g": "9", "q": "9", "T": "7"}
_HEX_LOWER = {**_DIGIT, "D": "0d", "B": "8b", "G": "69", "A": "a", "C": "c", "E": "e", "F": "f", "¢": "c"}
# OCR slips in a document key that can only be one hex digit (B may be 8 or b, D 0 or d, G 6 or 9: left as read).
_HEX_SLIPS = str.maketrans({k: v for k, v in _HEX_LOWER.items() if len(v) == 1})
_HEX_UPPER = {**_DIGIT, "D": "D0", "B": "B8", "Q": "09", "a": "A", "b": "B8", "c": "C", "d": "D0", "e": "E", "f": "F"}
_FREE = {"0": "0O", "O": "O0", "o": "o0", "1": "1l", "l": "l1", "I": "I1", "5": "5S", "S": "S5", "8": "8B",
         "B": "B8"}
_SET_REF = re.compile(r"^[A-Za-z0-9._-]+(?:@[1-9][0-9]{0,5})?$")


@dataclass(frozen=True)
class PagePayload:
    form: str
    template_version: int
    criteria_set: str | None
    subject_id: str | None
    year: int | None
    page: int
    pages: int
    doc: str
    # The checks of the printed name, birth year and audience group (name_check, year_check, group_check); not
    # part of the page's identity: the id line, which identifies a page as surely as a code does, does not carry
    # them.
    name_check: str | None = field(default=None, compare=False)
    year_check: str | None = field(default=None, compare=False)
    group_check: int | None = field(default=None, compare=False)

    def identity(self) -> str:
        """The page's identity: the eight fields every code and the id line carry."""
        for name in ("form", "doc"):
            if not _ID.match(getattr(self, name)):
                raise ValueError(f"{name} must match {_ID.pattern}")
        for name, pattern in (("criteria_set", _SET_REF), ("subject_id", _ID)):
            value = getattr(self, name)
            if value is not None and not pattern.match(value):
                raise ValueError(f"{name} must match {pattern.pattern}")
        if not 1 <= self.page <= self.pages:
            raise ValueError("page must be within 1..pages")
        parts = [
            PREFIX, self.form, str(self.template_version), self.criteria_set or "-",
            self.subject_id or "-", str(self.year) if self.year is not None else "-",
            f"{self.page}/{self.pages}", self.doc,
        ]
        return "|".join(parts)

    def encode(self) -> str:
        """The text of the first code: the identity and, when a name or birth year was printed, their checks."""
        if self.name_check is not None and not _NAME_CHECK.match(self.name_check):
            raise ValueError(f"name_check must match {_NAME_CHECK.pattern}")
        if self.year_check is not None and (len(self.year_check) != 1 or self.year_check not in _B64):
            raise ValueError("year_check must be one base64url character")
        if self.group_check is not None and not 1 <= self.group_check <= 9:
            raise ValueError("group_check must be a group's number, 1-9")
        if self.name_check is None and self.year_check is None and self.group_check is None:
            return self.identity()
        group = "" if self.group_check is None else str(self.group_check)
        year = self.year_check or ("." if group else "")
        return f"{self.identity()}|{self.name_check or '.'}{year}{group}"

    def encode_second(self) -> str:
        """The text of the second code: the identity and `|2`."""
        return f"{self.identity()}|{SECOND}"

    def id_line(self) -> str:
        """The printed id line: the identity's fields separated by spaces, then its CRC-32 check digits."""
        return f"{self.identity().replace('|', ' ')} {check_digits(self.identity())}"

    def check(self, max_pages: int) -> None:
        """Every number bounded by what a printed form can carry. The code is printed by formsvc but a page can
        be re-stamped with a forged one: a page count of 10^12 must never size anything downstream (a list of
        missing pages, a message). Raises InputError 'payload_invalid' (the page is then no record's page)."""
        problems = []
        if not 1 <= self.template_version <= MAX_TEMPLATE_VERSION:
            problems.append(f"phiên bản mẫu {_shown(self.template_version)}")
        if not 1 <= self.pages <= max_pages:
            problems.append(f"số trang {_shown(self.pages)} (tối đa {max_pages})")
        if not 1 <= self.page <= self.pages:
            problems.append(f"trang {_shown(self.page)}/{_shown(self.pages)}")
        if self.year is not None and not MIN_YEAR <= self.year <= MAX_YEAR:
            problems.append(f"năm {_shown(self.year)}")
        if problems:
            raise InputError("Mã QR của biểu mẫu mang số không hợp lệ: " + ", ".join(problems)
                             + "; trang không được xếp vào phiếu nào.", code="payload_invalid",
                             hint="In lại biểu mẫu từ formsvc rồi quét lại trang này.")

    @classmethod
    def decode(cls, text: str) -> PagePayload:
        parts = text.strip().split("|")
        # A ninth field: the second code's mark, or the checks of what was printed (first code).
        checks = _CHECKS.match(parts[8]) if len(parts) == 9 and parts[8] not in (SECOND, ".", "..") else None
        if len(parts) == 9 and (parts[8] == SECOND or checks is not None):
            parts = parts[:8]
        if len(parts) != 8 or parts[0] != PREFIX:
            raise InputError("Mã QR không phải của biểu mẫu formsvc.", code="qr_not_ours")
        _, form, version, cset, subject, year, pages_part, doc = parts
        try:
            page_s, pages_s = pages_part.split("/")
            page, pages = int(page_s), int(pages_s)
            return cls(
                form=form, template_version=int(version), criteria_set=None if cset == "-" else cset,
                subject_id=None if subject == "-" else subject, year=None if year == "-" else int(year),
                page=page, pages=pages, doc=doc,
                name_check=None if checks is None or checks[1] == "." else checks[1],
                year_check=None if checks is None or checks[2] == "." else checks[2],
                group_check=None if checks is None or checks[3] is None else int(checks[3]),
            )
        except ValueError as exc:
            raise InputError("Mã QR của biểu mẫu bị hỏng.", code="qr_malformed") from exc


def is_second(text: str) -> bool:
    """Did this text come from the second code (top right)?"""
    return text.strip().endswith(f"|{SECOND}") and text.count("|") == 8


def check_digits(text: str) -> str:
    return f"{zlib.crc32(text.encode('ascii')) & 0xFFFFFFFF:08X}"[:CHECK_HEX]


def year_check(year: int) -> str:
    """The check of a printed birth year (see the module's doc)."""
    return _B64[year % 64]


def key_crc(key: str) -> int:
    """The CRC-32 a name's check spells, of the name's key (text.name_key)."""
    return zlib.crc32(key.encode("utf-8"))


def name_check(name: str) -> str | None:
    """The check of a printed name (see the module's doc), None for one with no letter or digit."""
    key = name_key(name)
    if not key:
        return None
    return base64.urlsafe_b64encode(key_crc(key).to_bytes(4, "big")).decode("ascii").rstrip("=")


def name_crc(check: str) -> int | None:
    """The CRC-32 a name check (name_check) spells, None when it spells none."""
    if not _NAME_CHECK.match(check):
        return None
    raw = base64.urlsafe_b64decode(check + "==")
    return int.from_bytes(raw, "big") if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") == check \
        else None


def _nearest(token: str, known: Iterable[str]) -> list[str]:
    """`token` itself, and when it is not a known id, the known ids one or two OCR slips away (edit distance)."""
    from rapidfuzz.distance import Levenshtein

    pool = list(known)
    if token in pool or not pool:
        return [token]
    # As read first (a set reference may carry @VERSION, a form may be newer than this list), then the near ones.
    close = sorted(pool, key=lambda k: Levenshtein.distance(token, k))
    return [token, *(k for k in close[:3] if Levenshtein.distance(token, k) <= 2)]


def _known_id(token: str, known: Iterable[str]) -> str | None:
    """The known id `token` is, or is one OCR slip away from when only one is that close ("pl4" read "p1l4")."""
    from rapidfuzz.distance import Levenshtein

    pool = set(known)
    if token in pool:
        return token
    near = [k for k in pool if Levenshtein.distance(token, k) <= 1]
    return near[0] if len(near) == 1 else None


def _spellings(token: str, confusions: dict[str, str], length: int | None = None, limit: int = 64) -> list[str]:
    """`token` as read and with its confusable characters swapped, boundedly many; with `length`, also with one
    stray character dropped when OCR read one too many (a speck read as 'i')."""
    tokens = [token]
    if length is not None and len(token) == length + 1:
        tokens += [token[:i] + token[i + 1:] for i in range(len(token))]
    out: list[str] = []
    for t in tokens:
        options = [confusions.get(ch, ch) if ch in confusions else ch for ch in t]
        options = [o if ch not in confusions or ch in o else ch + o for ch, o in zip(t, options, strict=True)]
        for combo in itertools.islice(itertools.product(*options), limit):
            v = "".join(combo)
            if v not in out and (length is None or len(v) == length):
                out.append(v)
    return out[:limit]


def _line_tokens(text: str) -> list[str]:
    """An OCR'd id line's words, rule marks and stray punctuation left out."""
    return [t for t in text.replace("|", " ").split() if any(ch.isalnum() for ch in t)]


def parse_id_line(text: str, forms: Iterable[str] = (), criteria_sets: Iterable[str] = ()) -> PagePayload | None:
    """The payload of an OCR'd id line, or None. Known form and criteria-set ids and the usual OCR slips are tried,
    but only a reading whose check digits agree is returned: a misread line is refused, never guessed."""
    tokens = _line_tokens(text)
    forms, criteria_sets = list(forms), list(criteria_sets)
    start = next((i for i, t in enumerate(tokens) if t.upper().replace("5", "S").startswith("FSV")), None)
    attempts: list[tuple[list[str], list[str], list[str] | None]] = []
    if start is not None and len(tokens) - start >= 9:
        attempts.append((_nearest(tokens[start + 1], forms), tokens[start + 2:start + 9], None))
    if len(tokens) >= 7 and forms:
        # A fold or smudge over the line's start: the fields are read from its end, every known form is tried.
        attempts.append((forms, tokens[-7:], None))
    at = next((i for i, t in enumerate(tokens) if _PAGES.fullmatch(t)), None)
    if start is not None and at is not None and at - start >= 4 and at != start + 6 and at + 2 < len(tokens):
        # A damaged set id read as several tokens ("cdht-324-pl4" as "cdht 3 aa") shifts the fields after it: they
        # are read around the page count, the one field of its shape, and every known set is tried.
        rest = [tokens[start + 2], "", *tokens[at - 2:at + 3]]
        attempts.append((_nearest(tokens[start + 1], forms), rest, criteria_sets))
    for form_options, rest, sets in attempts:
        found = _decode_line(form_options, rest, criteria_sets, MAX_TRIALS // len(attempts), sets)
        if found is not None:
            return found
    return None


def unchecked_fields(text: str, forms: Iterable[str], criteria_sets: Iterable[str]) -> tuple[str | None, ...] | None:
    """The seven fields of an OCR'd id line as read, for a line whose check digits are unreadable: the form and
    criteria set as the known ids they are (or one slip from), None where not; the document key with its
    unambiguous slips undone (l read for 1, O for 0). None when the line has no such fields. Nothing confirms
    them: see unchecked_payload."""
    tokens = _line_tokens(text)
    start = next((i for i, t in enumerate(tokens) if t.upper() == PREFIX), None)
    if start is None or len(tokens) - start < 8:
        return None
    rest = tokens[start + 1:]
    # A damaged field read as several tokens ("cdht-324-pl4" as "cdht 3 aa") shifts every field after it: the page
    # count "n/N", the one token of its shape, anchors the person, year and key around it.
    at = next((i for i in range(4, len(rest) - 1) if _PAGES.fullmatch(rest[i])), 5)
    form, version = rest[0], rest[1]
    cset = rest[2] if at == 5 else None
    subject, year, pages, doc = rest[at - 2], rest[at - 1], rest[at], rest[at + 1]
    return (_known_id(form, forms), version,
            None if cset is None else cset if cset == "-" else _known_id(cset, criteria_sets),
            subject, year, pages, doc.translate(_HEX_SLIPS))


def unchecked_payload(fields: Sequence[str | None]) -> PagePayload | None:
    """The payload of seven id-line fields (unchecked_fields), when they make one: a known form and set, a 10-digit
    key, a page within its count. Never a page's identity on its own: only another page of the same batch,
    identified for certain, can confirm it by naming the same printed copy (pipeline.read_files)."""
    if len(fields) != 7 or any(f is None for f in fields) or not _DOC.fullmatch(str(fields[6])):
        return None
    payload = _payload("|".join([PREFIX, *(str(f) for f in fields)]))
    return payload if payload is not None and 1 <= payload.page <= payload.pages else None


def _decode_line(forms: list[str], rest: list[str], criteria_sets: Iterable[str], budget: int,
                 sets: list[str] | None = None) -> PagePayload | None:
    """The payload from a form id's options and the line's other seven fields, if one reading passes the check;
    `sets`: the criteria sets to try instead of the set field as read (unreadable)."""
    version, cset, subject, year, pages, doc, check = rest
    # Only hex spellings can be the check: "BOBAOF5B" as read is no candidate, so the slip rule below holds the
    # line against "B0BA0F5B" (one 9 read as O), not against the letters as read.
    checks = [c for c in _spellings(check, _HEX_UPPER, CHECK_HEX) if _CHECK.fullmatch(c)]
    if not checks:
        return None
    page_reads = [pages] if "/" in pages else [pages[:i] + "/" + pages[i + 1:] for i in range(1, len(pages) - 1)]
    fields = [
        forms, _spellings(version.lstrip("vV"), _DIGIT, limit=4),
        sets if sets is not None else [cset] if cset == "-" else _nearest(cset, criteria_sets),
        [subject] if subject == "-" else _spellings(subject, _FREE),
        [year] if year == "-" else _spellings(year, _DIGIT, 4, limit=8),
        [v for p in page_reads for v in _spellings(p, _DIGIT, limit=8)],
        [d for d in _spellings(doc, _HEX_LOWER, 10) if _DOC.fullmatch(d)],  # as the check: hex only
    ]
    wanted = set(checks)
    for combo in itertools.islice(itertools.product(*fields), max(1, budget // len(wanted))):
        line = "|".join([PREFIX, *combo])
        if line.isascii() and check_digits(line) in wanted:
            return _payload(line)
    for combo in itertools.islice(itertools.product(*fields), SLIP_TRIALS):
        line = "|".join([PREFIX, *combo])
        if line.isascii() and any(_one_off(check_digits(line), c) for c in checks[:SLIP_SPELLINGS]):
            return _payload(line)
    return None


def _one_off(a: str, b: str) -> bool:
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) <= 1


def _payload(line: str) -> PagePayload | None:
    try:
        return PagePayload.decode(line)
    except InputError:
        return None


def _shown(number: int) -> str:
    """A forged number in a message: a QR code holds up to ~4,000 digits, a message shows at most 15."""
    text = str(number)
    return text if len(text) <= 15 else text[:12] + "…"


def new_doc_id() -> str:
    return secrets.token_hex(5)
