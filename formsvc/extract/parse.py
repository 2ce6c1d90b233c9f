"""Stage 5, parse: turn the fields read from a document's pages into a Record with provenance."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from rapidfuzz import fuzz, process

from formsvc.criteria import CriteriaRegistry, load_groups, resolve_group
from formsvc.extract.digits import ACCEPT_RIGHT, allowed, lost_comma
from formsvc.extract.joint import Reading, field_sure
from formsvc.extract.name_check import check_name
from formsvc.extract.read import FieldRead
from formsvc.forms import find_form
from formsvc.payload import PagePayload, year_check
from formsvc.records import FieldProvenance, Reason, Record
from formsvc.settings import get_settings
from formsvc.text import fold, name_letters, nfc

_FILLER = re.compile(r"^[\s.…·_:\-]*$")
_YEAR = re.compile(r"(19|20)\d{2}")
_YEAR_WORD = re.compile(r"[^\w]*((?:19|20)\d{2})[^\w]*")
# Score of a value no reader saw, for a box nothing could be read from: the declared total may still imply it.
UNSEEN = 1e-4
# A value the joint decoding chose over a box's own top reading, when the sheet does not make it sure (apply_total):
# a guess for review.
CHOSEN_CONFIDENCE = 0.6
# A sum that only agrees after changing more boxes than this says the readings are poor, not which are wrong:
# changing several right boxes to cover for one unreadable one does more harm than good.
MAX_CHANGES = 2
# Print only the handwriting recogniser doubted (combine caps it at 0.6): the sheet's sum may confirm it.
PRINT_CONFIRMABLE = 0.5
# Most a written total can be trusted whose reading the criteria do not allow (off the step, over the maximum).
IMPLAUSIBLE_TOTAL = 0.3
# A handwritten box on a sheet whose total no reading agrees with, or that the sum puts in doubt: below the
# review threshold.
UNCHECKED = 0.7
# Least Tesseract confidence at which a printed name is trusted when no roster knows it. Its word confidence is
# no probability: on the tuning seeds' grey captures (1000, 3000, 6000; clean, print-and-scan, harsh, phone, skewed)
# names read at 0.80-0.90 were wrong 7 times in 16, a tone mark misread ("Dũng" read "Dùng"). Above it still 4 in
# 215 (up to 0.96, on damaged pages): a mitigation, not the 99.5 % the threshold means elsewhere; a roster settles it.
NAME_SURE = 0.9
# A name agreeing with the check printed in its code (extract.name_check): sure, below the roster's 1.0.
CHECKED_NAME = 0.99
# A birth year agreeing with its check (payload.year_check: any one digit misread disagrees) is sure when it, or the
# line it is on, was read at YEAR_CONFIRMABLE or more: only two digits misread at once could agree by chance.
YEAR_CONFIRMABLE = 0.6
CHECKED_YEAR = 0.95
CHECKED_GROUP = 0.95
# Most fields the decoding may change and still have the sheet trusted: the sum is one equation, it settles one
# misread. Held-out and tuning pages (10 seeds, 7 kinds of capture; 305 sheets the decoding changed): 35 sheets
# with one field changed made every field at least ACCEPT_RIGHT sure, all right; no two-field change came close.
CORRECTED = 1
# Least score (ScoreBox.candidates) of the other reading a trusted correction takes: one the reader nearly read
# (every trusted correction on those pages: 0.15 or more). A value far down its list is one that only happens to
# make the sum agree when a box read surely is the misread one ("9,5" read 9 surely, "72,5" read "72,6": the
# total's allowed candidate 72 at 0.002 agreed with the sum).
SECOND_READING = 0.1
# Least score (ScoreBox.candidates) of another reading that makes two glyphs "written alike" (_echoes). Kept pages
# of ten seeds, sheets stopped by the echo rule alone: the one echo of a misread (seed 23000, four captures) shared
# its other reading at 0.05-0.09; 21 of the 33 right sheets shared one only under 0.01, a trace of the products.
ECHO_SHARE = 0.01
# A doubt the sum seems to settle and another field's own other reading that would settle it the other way
# (_compensated): least score of the doubted field's other reading, and of the other field's. Fresh seed 45000: "6"
# and "9" read 8 (6 at 0.39) and 7 at 1.0 (9 at 0.0018-0.0063 in four captures), the sum unchanged, both passed as
# read. Held-out seeds: see bench/RESULTS.md (2026-12-03, tenth session) for the sheets this sends to a person.
DOUBT_OTHER = 0.3
COMPENSATING = 0.001


# Forms the registry marks `team_scored` (the ĐVHT inspection minutes, Phụ lục 03) are scored by a team beside the
# unit's own scores: the record's scores and total are the team's column; the unit's own column, printed from its
# self-assessment, is kept aside.
def _team_scored(form_id: str) -> bool:
    form = find_form(form_id)
    return form is not None and form.team_scored


def _team_scores(values: dict[str, FieldRead], page_of: dict[str, int]
                 ) -> tuple[dict[str, FieldRead], dict[str, int], dict[str, float | str | None]]:
    """The fields with the team's column read as the scores, and the unit's own scores as printed."""
    unit = {k.split(".", 1)[1]: to_score(r.text) for k, r in values.items() if k.startswith("scores.")}
    renamed: dict[str, str] = {}
    for name in values:
        if name.startswith("committee."):
            renamed[name] = "scores." + name.split(".", 1)[1]
        elif name == "committee_total":
            renamed[name] = "total_declared"
        elif not name.startswith("scores.") and name != "total_declared":
            renamed[name] = name
    out = {new: replace(values[old], name=new) for old, new in renamed.items()}
    return out, {new: page_of[old] for old, new in renamed.items()}, unit


@dataclass
class PageFields:
    payload: PagePayload
    reads: list[FieldRead]
    placed: bool = False  # identified by its place in the upload only (placement): nothing on it is trusted
    bent: bool = False  # aligned on markers that do not lie on one plane (a fold, a curl): nothing on it is trusted
    # ... but these boxes of it, each found in its own ruled cell where the table's lines put it (snap.framed)
    framed: frozenset[str] = frozenset()
    bilevel: bool = False  # scanned in black and white: the name printed on it may have lost its tone marks


def clean(text: str) -> str:
    """Dotted placeholder lines read as nothing."""
    return "" if _FILLER.match(text) else nfc(text.strip(" .…"))


def to_score(text: str) -> float | str | None:
    t = clean(text).replace(" ", "")
    if not t:
        return None
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{1,2})?", t):
        return float(t.replace(",", "."))
    return t


def year_word_confidence(read: FieldRead, year: int) -> float:
    """How sure OCR is of the word that is `year` on its own (punctuation aside), 0 when no word is: the line's
    confidence is its least sure word's, and a speck or a fold beside the year is read as a word of its own."""
    return max((conf for word, conf in read.words if (m := _YEAR_WORD.fullmatch(word)) and int(m.group(1)) == year),
               default=0.0)


def match_group(text: str) -> tuple[str | None, float]:
    """Group code from printed label text, tolerant of OCR noise (accent-folded fuzzy match)."""
    direct = resolve_group(text)
    if direct:
        return direct.code, 1.0
    choices = {fold(g.short_label): g.code for g in load_groups()} | {fold(g.label): g.code for g in load_groups()}
    best = process.extractOne(fold(text), list(choices), scorer=fuzz.ratio)
    if best and best[1] >= 80:
        return choices[best[0]], best[1] / 100
    return None, 0.0


def comma_digit(text: str, max_points: float, step: float) -> float | None:
    """A number written with a decimal comma where only half points exist: the digit after the comma can only be 5
    (people write 9 for nine, 9,5 for nine and a half), so "9,8" or "63,6" was a misread 5. That value, or None
    when the step has other fractions or the whole part is not allowed."""
    m = re.fullmatch(r"(\d{1,3})[.,]\d", clean(text).replace(" ", ""))
    if m is None or round(step * 100) != 50:
        return None
    value = int(m.group(1)) + 0.5
    return value if allowed(value, max_points, step) else None


def with_whole(r: FieldRead, value: float | str | None, confidence: float, max_points: float,
               step: float) -> float:
    """A handwritten number written with a comma where only half points exist is its whole part and a half,
    whatever the small digit after the comma was read as: when that is the value taken, it is as sure as the
    whole part (calibrated apart, digits.WHOLE) if that is surer than the reading of every digit."""
    if r.whole is None or round(step * 100) != 50 or not isinstance(value, float):
        return confidence
    half = r.whole + 0.5
    return max(confidence, r.whole_confidence) if value == half and allowed(half, max_points, step) else confidence


def allowed_reading(r: FieldRead, value: float | str | None, max_points: float, step: float) -> float | None:
    """For a reading the criteria do not allow, the nearest one they do: the digit after a written comma misread
    ("9,8" or "63,6" in half points was "9,5", "63,5"), or the readers' best allowed candidate, or the decimal
    comma OCR dropped ("45" where at most 10 is allowed was "4,5"). None when there is none. The comma first: a
    candidate the criteria allow is then one without the comma the box shows ("74,6" offered 74 at 0.002, and a
    box that had lost its own half made the sum agree with it: two misreads trusted)."""
    if (half := comma_digit(r.text, max_points, step)) is not None:
        return half
    allowed = [v for v, _ in r.candidates if plausible(v, max_points, step)]
    if allowed:
        return allowed[0]
    return lost_comma(value, max_points, step) if isinstance(value, float) else None


def plausible(value: float | str | None, max_points: float, step: float) -> bool:
    """A reading the criteria allow (0..max on the step); anything else cannot be trusted as read."""
    if not isinstance(value, float):
        return value is None
    return allowed(value, max_points, step)


@dataclass(frozen=True)
class ScoreBox:
    """One score box as parse sees it: the value, its confidence and the allowed alternatives with scores."""
    name: str
    value: float | str | None
    confidence: float
    candidates: tuple[tuple[float, float], ...]  # allowed values, best first; one entry when not in doubt
    max_points: float = 10.0  # what the criteria allow: 0..max_points on step
    step: float = 0.5


def _allowed_candidates(r: FieldRead, value: float | str | None, confidence: float, max_points: float,
                        step: float, threshold: float) -> tuple[tuple[float, float], ...]:
    """The box's alternatives within the criteria; a trusted reading (text layer, confident print) has none."""
    if isinstance(value, float) and confidence >= threshold:
        return ((value, 1.0),)
    cands = tuple((v, p) for v, p in r.candidates if plausible(v, max_points, step))
    if cands:
        return cands
    if isinstance(value, float) and plausible(value, max_points, step):
        return ((value, 1.0),)
    # Nothing allowed was read: every allowed value is possible, none likely.
    n = round(max_points / step)
    return tuple((round(k * step, 6), UNSEEN) for k in range(n + 1))


def decode_with_total(boxes: list[ScoreBox], total: ScoreBox) -> tuple[list[float], float] | None:
    """The most likely choice of one candidate per box and one for the declared total whose sum agrees.

    The sheet's total is a checksum over the indicator scores, written (or typed) independently of them: a box
    misread by the recogniser usually breaks the sum, and its right value is then among its other candidates.
    Scores multiply (sums of logs); a dynamic programme over the running sum in hundredths keeps it small.
    None when no choice agrees (the validator then reports the mismatch).
    """
    # running sum (hundredths) -> (log score, chosen values)
    states: dict[int, tuple[float, tuple[float, ...]]] = {0: (0.0, ())}
    for box in boxes:
        nxt: dict[int, tuple[float, tuple[float, ...]]] = {}
        for key, (logp, chosen) in states.items():
            for v, p in box.candidates:
                k = key + round(v * 100)
                cand = (logp + math.log(max(p, 1e-12)), (*chosen, v))
                if k not in nxt or cand[0] > nxt[k][0]:
                    nxt[k] = cand
        states = nxt
    best: tuple[float, tuple[float, ...], float] | None = None
    for t, p in total.candidates:
        hit = states.get(round(t * 100))
        if hit is not None:
            score = hit[0] + math.log(max(p, 1e-12))
            if best is None or score > best[0]:
                best = (score, hit[1], t)
    return (list(best[1]), best[2]) if best else None


def apply_total(boxes: list[ScoreBox], total: ScoreBox, threshold: float,
                printed: frozenset[str] = frozenset(),
                as_read: frozenset[str] = frozenset()) -> tuple[list[ScoreBox], ScoreBox]:
    """Boxes and total after the joint decoding.

    Every field is judged by how sure the whole sheet makes it (joint.field_sure: its value weighed against every
    other choice of values that adds up to the total as well, by the readers' calibrated confidences and
    candidates): an unsure reading the sum leaves right at least ACCEPT_RIGHT of the time is trusted, and a
    trusted handwritten reading the sum puts in doubt is sent to review. That holds for a sheet whose readings
    add up as read and for one where the decoding took one field's other reading (CORRECTED): the sheet held a
    misread, and the other reading is trusted only when that field, and every other one, is as sure as a
    reading accepted on its own (the chance that a box read surely was the misread one, and the other reading
    only happens to make up for it, is weighed in). Otherwise a value the decoding chose is flagged
    (CHOSEN_CONFIDENCE at most), and so is every other handwritten box of that sheet (UNCHECKED): which box held
    the misread is the decoding's guess, and a box the recogniser was sure of may be the one (harsh scans make
    sure misreads). Two changed fields are never trusted: the sum is one equation. Nor is a total taken as its
    other reading: it is the sheet's check, and the boxes would vouch for themselves (fresh held-out seed 75000:
    "9,5" read 4,5 at 0.86 with 9,5 scored 0.0, the total "75,5" taken as its 70,5 at 0.21). Print (`printed`:
    Tesseract's reading at two scales matching the font's shape) that only the handwriting recogniser doubted is
    confirmed when the sum agrees, however many such boxes there are: two print misreads that cancel out in the sum
    exactly are not a risk worth a person's time. An unsure box and an unsure total that end in one digit written
    alike are not confirmed by each other (_echoes), and once any reading is left in doubt the sum vouches for no
    other. A decoding that changes an `as_read` field trusts nothing: the sum may confirm its reading, never
    replace it (build_record: a box written by hand on a sheet whose total is typed).
    """
    decoded = decode_with_total(boxes, total)
    if decoded is None:
        return boxes, total
    values, t = decoded
    fields = [*boxes, total]
    chosen = [*values, t]
    changes = sum(f.value != v for f, v in zip(fields, chosen, strict=True))
    if changes > MAX_CHANGES:
        return boxes, total
    unchanged = changes == 0
    unsure = [f for f in fields if f.confidence < threshold]
    all_print = unchanged and all(f.name in printed and f.confidence >= PRINT_CONFIRMABLE for f in unsure)
    nearly_read = all(dict(f.candidates).get(v, 0.0) >= SECOND_READING
                      for f, v in zip(fields, chosen, strict=True) if f.value != v)
    sure = _field_sure(fields, chosen, threshold) if unchanged or (changes <= CORRECTED and nearly_read) else None
    echoed = _echoes(boxes, total, threshold, printed)
    if not unchanged and (sure is None or echoed or min(sure) < ACCEPT_RIGHT or t != total.value
                          or any(f.name in as_read and f.value != v
                                 for f, v in zip(fields, chosen, strict=True))):
        sure = None  # the misread's place is a guess: every handwritten field goes to a person
    trusted_sum = unchanged or sure is not None
    vouched = {f.name for i, f in enumerate(fields) if f.confidence < threshold and (all_print or (
        sure is not None and sure[i] >= ACCEPT_RIGHT and f.name not in echoed))}
    # The sum is one equation: it settles one doubtful reading, not two. A field it leaves in doubt may be misread,
    # and then the sum only agrees because another field is misread too: it vouches for none (held-out seed 27000,
    # harsh: "4,5" and "5" read "7,5" at 0.72 and "2" at 0.40, the sum unchanged, the first trusted).
    if any(f.name not in vouched for f in unsure):
        vouched = set()
    out = []
    for i, (f, v) in enumerate(zip(fields, chosen, strict=True)):
        given_sheet = sure[i] if sure is not None else None
        if f.value != v:
            out.append(replace(f, value=v, confidence=threshold if f.name in vouched
                               else min(f.confidence, CHOSEN_CONFIDENCE)))
        elif not trusted_sum:
            out.append(f if f.name in printed else replace(f, confidence=min(f.confidence, UNCHECKED)))
        elif f.confidence < threshold:
            out.append(replace(f, confidence=threshold) if f.name in vouched else f)
        elif given_sheet is not None and given_sheet < ACCEPT_RIGHT and f.name not in printed:
            out.append(replace(f, confidence=min(f.confidence, UNCHECKED)))
        else:
            out.append(f)
    return out[:-1], out[-1]


def _echoes(boxes: list[ScoreBox], total: ScoreBox, threshold: float, printed: frozenset[str]) -> frozenset[str]:
    """Handwritten fields the sum cannot vouch for: a box and the total, each unsure on its own, whose whole parts
    end in the same digit written alike. One writer writes a digit one way, so a glyph misread in a box is likely
    misread alike in the total, and the two misreads move the boxes' sum and the total by the same amount: the sum
    agrees all the same (held-out seed 23000: a 5 written like an 8, "5,5" and "75,5" read "8,5" and "78,5" just
    below the threshold, both trusted once they added up). The joint decoding takes misreads to be independent; for
    these two they are not, so each is judged on its own reading.
    "Written alike" is what the recogniser saw: the two glyphs' other readings share a digit, each at ECHO_SHARE or
    more (seed 23000: 2 at 0.08 and 0.07 for both). Two glyphs it confuses with different digits, or with one digit
    only as a trace of its products, look different to it; the misreads are then as independent as any two, which
    the joint decoding weighs."""
    def units(f: ScoreBox) -> int | None:
        return int(f.value) % 10 if isinstance(f.value, float) and f.name not in printed else None

    def alternatives(f: ScoreBox) -> set[int]:
        """Digits the last whole digit was also read as, at ECHO_SHARE or more (every other digit and the fraction
        as read)."""
        assert isinstance(f.value, float)
        head, frac = int(f.value) // 10, round(f.value - int(f.value), 6)
        return {int(v) % 10 for v, score in f.candidates if v != f.value and score >= ECHO_SHARE
                and int(v) // 10 == head and round(v - int(v), 6) == frac}

    t = units(total)
    if t is None or total.confidence >= threshold:
        return frozenset()
    alike = alternatives(total)
    hits = {b.name for b in boxes
            if b.confidence < threshold and units(b) == t and alternatives(b) & alike}
    return frozenset({*hits, total.name}) if hits else frozenset()


def _compensated(before: list[ScoreBox], after: list[ScoreBox], reads: dict[str, FieldRead], threshold: float,
                 printed: frozenset[str] = frozenset()) -> list[ScoreBox]:
    """The fields (boxes, then the total; `before` and `after` apply_total) with every pair the sum cannot tell
    apart sent to a person (UNCHECKED at most): a handwritten field unsure on its own whose other reading (DOUBT_OTHER
    or more) would add up just as well if another handwritten field were one of its own other readings
    (COMPENSATING or more), moving the sum the other way by as much. The joint decoding weighs that second world by
    the recogniser's scores, and a sure misread (a 9 read 7 at 0.994, the commonest confusion) is exactly a truth
    they score low. The sum agrees in both worlds, so it vouches for neither: the doubt stays, and the sure field
    that may have made up for it is doubted too (else its misread is silent even when the sheet goes to review)."""
    def shifts(f: ScoreBox, sign: float, least: float) -> set[float]:
        """How much sum(boxes) - total moves if `f` were one of its other readings scored `least` or more."""
        r = reads.get(f.name)
        if r is None or r.source != "handwriting" or f.name in printed or not isinstance(f.value, float):
            return set()
        return {round(sign * (v - f.value), 6) for v, score in r.candidates
                if score >= least and v != f.value and plausible(v, f.max_points, f.step)}

    signs = [1.0] * (len(after) - 1) + [-1.0]
    moves = [shifts(f, sign, COMPENSATING) for f, sign in zip(after, signs, strict=True)]
    doubts = [shifts(f, sign, DOUBT_OTHER) if b.confidence < threshold else set()
              for b, f, sign in zip(before, after, signs, strict=True)]
    caught: set[int] = set()
    for i, doubt in enumerate(doubts):
        for j, move in enumerate(moves):
            if j != i and any(-d in move for d in doubt):
                caught |= {i, j}
    return [replace(f, confidence=min(f.confidence, UNCHECKED)) if i in caught else f for i, f in enumerate(after)]


def _field_sure(fields: list[ScoreBox], chosen: list[float], threshold: float) -> list[float] | None:
    """joint.field_sure over the boxes and the total (the last field) at the chosen values; None when a field is
    not a number (nothing to measure)."""
    readings = [Reading(f.value, f.confidence, f.candidates, f.max_points, f.step) for f in fields
                if isinstance(f.value, float)]
    if len(readings) != len(fields):
        return None
    return field_sure(readings[:-1], readings[-1], threshold, chosen)


def adds_up(values: Iterable[float | str | None], total: float | str | None) -> bool:
    """Whether scores add up to a numeric total, a blank counting 0 (if it held a score, the sum misses the total);
    never when a score or the total is not a number."""
    read = list(values)
    return isinstance(total, float) and all(isinstance(v, float) or v is None for v in read) \
        and abs(sum(v for v in read if isinstance(v, float)) - total) < 1e-6


def doubt_unchecked(boxes: list[ScoreBox], total: float | str | None, reads: dict[str, FieldRead]) -> list[ScoreBox]:
    """When no choice of readings agrees with the declared total, the sheet holds a misread (or the writer's own
    sum is wrong) and nothing says which handwritten box it is: none of them can be trusted on its own reading.
    A total or box that is not a number has its own finding: left as it is."""
    read = [b.value for b in boxes]
    if not isinstance(total, float) or not all(isinstance(v, float) or v is None for v in read):
        return boxes
    return boxes if adds_up(read, total) else handwriting_unchecked(boxes, reads)


def handwriting_unchecked(boxes: list[ScoreBox], reads: dict[str, FieldRead]) -> list[ScoreBox]:
    """The boxes with every handwritten one no surer than UNCHECKED: for a person, whatever its own reading."""
    return [replace(b, confidence=min(b.confidence, UNCHECKED)) if reads[b.name].source == "handwriting" else b
            for b in boxes]


def _disagrees(code: str, name: str, what: str) -> Reason:
    """A subject field read otherwise than its check in the code says was printed (payload: name, year, group)."""
    return Reason(code=code, field=name, severity="review",
                  message=f"{what} không khớp mã kiểm tra in trong mã QR của phiếu: có chữ hoặc số bị đọc sai. Hãy "
                          "đối chiếu với phiếu giấy.")


def build_record(pages: list[PageFields], *, missing_pages: list[int],
                 registry: CriteriaRegistry | None = None) -> tuple[Record, list[Reason]]:
    first = pages[0].payload
    ref = first.criteria_set or ""
    cset = registry.get(ref) if registry and ref in registry else None
    values: dict[str, FieldRead] = {}
    page_of: dict[str, int] = {}
    for pf in sorted(pages, key=lambda p: p.payload.page):
        for r in pf.reads:
            values[r.name] = r
            page_of[r.name] = pf.payload.page
    placed = sorted(pf.payload.page for pf in pages if pf.placed)
    bent_pages = {pf.payload.page for pf in pages if pf.bent}
    framed = frozenset(name for pf in pages if pf.bent for name in pf.framed)
    held_bent: set[int] = set()  # bent pages a field was distrusted on

    def distrusted(name: str, checked: bool = False) -> bool:
        """A field whose page may be another copy's, or whose box may be read a row off: on a bent page, every
        field but a box found in its own cell (framed) and a printed field its check in the code confirms."""
        page = page_of.get(name, 0)
        if page in placed:
            return True
        if page in bent_pages and name not in framed and not checked:
            held_bent.add(page)
            return True
        return False

    unit_scores: dict[str, float | str | None] = {}
    team_scored = _team_scored(first.form)
    if team_scored:
        values, page_of, unit_scores = _team_scores(values, page_of)
    fields: list[FieldProvenance] = []

    def prov(name: str, value: object, confidence: float, source: str | None = None,
             candidates: tuple[tuple[float, float], ...] = (), checked: bool = False) -> None:
        r = values.get(name)
        # Alternatives only for a box in doubt, the value taken first (the total may have chosen another than the
        # reader's best), and only as many as a reviewer picks with one key.
        if distrusted(name, checked):
            confidence = min(confidence, UNCHECKED)
        choices = None
        if candidates and confidence < threshold:
            ranked = [v for v, _ in candidates]
            choices = ([value] if isinstance(value, float) else []) + [v for v in ranked if v != value]
            choices = choices[:5]
        fields.append(FieldProvenance(
            name=name, value=value, confidence=round(max(0.0, min(1.0, confidence)), 3), page=page_of.get(name),
            bbox=r.bbox if r else None, source=(source or (r.source if r else "qr")), candidates=choices,
        ))

    scores: dict[str, float | str | None] = {}
    evidence: dict[str, str | None] = {}
    threshold = get_settings().review_confidence
    boxes: list[ScoreBox] = []
    order = [name.split(".", 1)[1] for name in values if name.startswith("scores.")]
    for name, r in values.items():
        if name.startswith("scores."):
            value = to_score(r.text)
            ind = cset.indicator(name.split(".", 1)[1]) if cset else None
            confidence = r.confidence
            if ind is not None and not plausible(value, ind.max_points, ind.step):
                confidence = min(confidence, 0.3)
                if (better := allowed_reading(r, value, ind.max_points, ind.step)) is not None:
                    value, confidence = better, min(r.confidence, 0.5)  # still flagged for a person to confirm
            if ind is not None:
                confidence = with_whole(r, value, confidence, ind.max_points, ind.step)
            if ind is not None and r.source != "text_layer" and not r.blank:
                boxes.append(ScoreBox(name, value, confidence, _allowed_candidates(
                    r, value, confidence, ind.max_points, ind.step, threshold), ind.max_points, ind.step))
            else:
                scores[name.split(".", 1)[1]] = value
                prov(name, value, confidence)
        elif name.startswith("evidence."):
            text = clean(r.text)
            evidence[name.split(".", 1)[1]] = text or None
    total_read = values.get("total_declared")
    total = to_score(total_read.text) if total_read else None
    total_conf = total_read.confidence if total_read else 0.0
    total_cands: tuple[tuple[float, float], ...] = ()
    # A total nobody wrote is not filled in from the boxes: only a written one is a checksum.
    if boxes and cset is not None and total_read is not None and total_read.source != "text_layer" \
            and not total_read.blank:
        step = min(i.step for i in cset.indicators)
        if not plausible(total, cset.total_max, step):
            total_conf = min(total_conf, IMPLAUSIBLE_TOTAL)
            if (better := allowed_reading(total_read, total, cset.total_max, step)) is not None:
                total = better  # a guess only the boxes' own sum can confirm
        total_conf = with_whole(total_read, total, total_conf, cset.total_max, step)
        total_box = ScoreBox("total_declared", total, total_conf,
                             _allowed_candidates(total_read, total, total_conf, cset.total_max, step, threshold),
                             cset.total_max, step)
        printed = frozenset(name for name, r in values.items() if r.typed)
        read_as = [*boxes, total_box]
        # A typed total was printed before anything was written by hand. A box read as handwriting the sum agrees
        # with was typed too (the print not recognised as such); one it disagrees with may have been written in
        # afterwards, which the total never counted: a red "8" in a box printed empty was read 8 with 0 close behind,
        # and the sum took 0 and made it sure. The sum may confirm such a box, not replace its reading.
        after_total = frozenset(b.name for b in boxes if values[b.name].source == "handwriting") \
            if total_read.typed else frozenset()
        boxes, total_box = apply_total(boxes, total_box, threshold, printed, after_total)
        *boxes, total_box = _compensated(read_as, [*boxes, total_box], values, threshold, printed)
        total, total_conf, total_cands = total_box.value, total_box.confidence, total_box.candidates
        boxes = doubt_unchecked(boxes, total, values)
    elif total_read is not None and total_read.blank:
        # A total left blank is no checksum: the boxes rest on their own confidence, calibrated on clean and mildly
        # degraded boxes, and on harsh captures 2-3 % of the boxes read surely are wrong (a pale half of "5,5" lost
        # to glare, read "5" at 1.0).
        boxes = handwriting_unchecked(boxes, values)
        if any(values[b.name].source == "handwriting" for b in boxes):
            # Glare or a pale pen empties a written total as surely as a writer who left it blank: a person looks.
            total_conf = min(total_conf, UNCHECKED)
    if any(distrusted(name) for name in [*(b.name for b in boxes), "total_declared"]):
        # A page that may be another copy's, or whose boxes may be read a row off, holds part of the sum: the sum
        # confirms nothing.
        boxes = handwriting_unchecked(boxes, values)
    for box in boxes:
        scores[box.name.split(".", 1)[1]] = box.value
        prov(box.name, box.value, box.confidence, candidates=box.candidates)
    scores = {k: scores[k] for k in order}
    if total_read:
        prov("total_declared", total, total_conf, candidates=total_cands)

    name_read = values.get("subject.full_name")
    full_name, dropped = name_letters(clean(name_read.text)) if name_read else ("", 0)
    name_page = page_of.get("subject.full_name")
    toneless = bool(full_name) and any(pf.bilevel and pf.payload.page == name_page for pf in pages)
    # Every page of a printed copy carries the same check; a page identified from its id line has none.
    check = next((pf.payload.name_check for pf in pages if pf.payload.name_check), None)
    checked = check_name(clean(name_read.text), check, full_name) if name_read and full_name and check \
        else None
    if name_read:
        confidence = name_read.confidence * (0.9 ** dropped)  # a stray mark removed: less sure, never surer
        name_sure = False
        if checked is not None and checked.verdict != "differs":
            # The name printed: only a reading agreeing with its 32-bit check by chance could be wrong.
            full_name, confidence, toneless, name_sure = checked.name, max(confidence, CHECKED_NAME), False, True
        elif checked is not None or toneless or confidence < NAME_SURE:
            # A black-and-white copier's threshold keeps a tone mark whole, breaks it or drops it, and Tesseract is
            # as sure of what is left as of any word (held-out: "Đỗ" read "Đỏ" at 0.96): none of its names is,
            # unless the printed check confirms it.
            confidence = min(confidence, UNCHECKED)
        prov("subject.full_name", full_name, confidence if full_name else 0.0, checked=name_sure)
    birth_year = None
    born_check = next((pf.payload.year_check for pf in pages if pf.payload.year_check), None)
    year_differs = False
    if "subject.birth_year" in values:
        year_read = values["subject.birth_year"]
        m = _YEAR.search(year_read.text)
        birth_year = int(m.group(0)) if m else None
        # A year printed (its check is in the code), or a line of ink, read as nothing is flagged, not left out.
        if clean(year_read.text) or born_check is not None or not year_read.blank:
            confidence = year_read.confidence if m else 0.0
            year_sure = False
            if born_check is not None and birth_year is not None:
                year_differs = year_check(birth_year) != born_check
                if year_differs:
                    confidence = min(confidence, UNCHECKED)
                elif max(confidence, year_word_confidence(year_read, birth_year)) >= YEAR_CONFIRMABLE:
                    confidence, year_sure = max(confidence, CHECKED_YEAR), True
            prov("subject.birth_year", birth_year, confidence, checked=year_sure)
    unit = clean(values["subject.unit"].text) if "subject.unit" in values else ""
    group = None
    printed_group = resolve_group(next((pf.payload.group_check for pf in pages if pf.payload.group_check), None))
    # The code names the group printed (by its number in groups.yaml) as surely as a roster would; or the form's
    # criteria set is one group's (its appendix), and whoever fills it in is of that group.
    form_group = printed_group or (resolve_group(cset.sole_group) if cset is not None else None)
    group_differs = group_sure = False
    line = clean(values["subject.group"].text) if "subject.group" in values else ""
    conf, source = 0.0, None
    if line:
        group, conf = match_group(line)
        conf *= values["subject.group"].confidence ** 0.5
        if form_group is not None and group is not None:
            # The line matched one of a few long labels (fuzzily, from however garbled a reading): agreeing with the
            # group the form is for, it is that one; else a person looks.
            group_differs = group != form_group.code
            group_sure = not group_differs
            conf = min(conf, UNCHECKED) if group_differs else max(conf, CHECKED_GROUP)
    if group is None and form_group is not None:
        # A line stained past matching any label, or not read at all.
        group, conf, source, group_sure = form_group.code, CHECKED_GROUP, "qr", True
    if line or group is not None:
        prov("subject.group", group, conf, source, checked=group_sure)

    year = first.year
    if year is None:
        year = dt.date.today().year
        prov("year", year, 0.0, "qr")
    extra_reasons: list[Reason] = []
    if missing_pages:
        extra_reasons.append(Reason(
            code="pages_missing", field="fields", severity="review",
            message=f"Thiếu trang {', '.join(map(str, missing_pages))} / {first.pages} của phiếu.",
        ))
    if placed:
        extra_reasons.append(Reason(
            code="pages_placed", field="fields", severity="review",
            message=f"Trang {', '.join(map(str, placed))} / {first.pages} không đọc được mã phiếu; đã xếp vào phiếu "
                    "này theo thứ tự các trang tải lên. Hãy xem trang đó đúng là của người này, rồi kiểm tra mọi ô "
                    "trên trang.",
        ))
    if held_bent:
        extra_reasons.append(Reason(
            code="page_bent", field="fields", severity="review",
            message=f"Trang {', '.join(map(str, sorted(held_bent)))} / {first.pages} bị gấp hoặc cong khi quét/chụp "
                    "(các dấu góc không cùng một mặt phẳng): ô không tìm được đúng khung kẻ của nó có thể bị đọc lệch "
                    "dòng. Hãy kiểm tra các ô được đánh dấu trên trang.",
        ))
    if checked is not None and checked.verdict == "differs":
        extra_reasons.append(_disagrees("name_check_failed", "subject.full_name", f"Họ tên đọc được «{full_name}»"))
    elif toneless:
        extra_reasons.append(Reason(
            code="name_bilevel", field="subject.full_name", severity="review",
            message=f"Trang {name_page} được quét đen trắng: dấu thanh trong họ tên có thể đã mất hoặc bị đọc thành "
                    "dấu khác (ví dụ «ũ» thành «ù»). Hãy đối chiếu họ tên với danh sách hoặc quét lại bằng chế độ "
                    "xám/màu.",
        ))
    if group_differs and printed_group is not None:
        extra_reasons.append(_disagrees("group_check_failed", "subject.group", "Dòng «Đối tượng» đọc được"))
    if year_differs:
        extra_reasons.append(_disagrees("birth_year_check_failed", "subject.birth_year",
                                        f"Năm sinh đọc được «{birth_year}»"))
    record = Record(
        form=first.form, criteria_set=first.criteria_set or "", year=year,
        subject={"id": first.subject_id, "full_name": full_name, "birth_year": birth_year,
                 "unit": unit or None, "group": group},
        scores=scores, evidence=evidence, total_declared=total, fields=fields,
        extra={"doc": first.doc, "template_version": first.template_version, "pages": first.pages,
               **({"unit_self_scores": unit_scores} if team_scored else {})},
    )
    return record, extra_reasons
