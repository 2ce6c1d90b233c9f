"""The printed name's check in the first code: a name read back without the roster is confirmed, its tone marks
put right when exactly one reading of them agrees, and anything else is sent to a person, never guessed."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
import segno

from fixtures.roster_gen import FAMILY, GIVEN, MIDDLE
from formsvc.criteria import default_registry
from formsvc.errors import InputError
from formsvc.extract.name_check import CheckedName, check_name
from formsvc.extract.parse import (
    CHECKED_GROUP,
    CHECKED_NAME,
    CHECKED_YEAR,
    UNCHECKED,
    YEAR_CONFIRMABLE,
    PageFields,
    build_record,
)
from formsvc.extract.read import FieldRead
from formsvc.payload import PagePayload, is_second, name_check, parse_id_line, year_check
from formsvc.render.api import payloads_for
from formsvc.render.registry import get_form
from formsvc.roster import Person
from formsvc.service.known_values import apply_roster
from formsvc.settings import get_settings
from formsvc.text import word_variants

P1 = PagePayload("cdht-self-assessment", 1, "cdht-324-pl4", "nv-001", 2024, 1, 2, "90913a2cc9",
                 name_check=name_check("Trần Quốc Dũng"), year_check=year_check(1966))


def test_the_check_rides_in_the_first_code_only_and_old_codes_still_decode() -> None:
    first, second, line = P1.encode(), P1.encode_second(), P1.id_line()
    assert first == f"{P1.identity()}|{P1.name_check}{P1.year_check}" and len(str(P1.name_check)) == 6
    decoded = PagePayload.decode(first)
    assert (decoded.name_check, decoded.year_check) == (P1.name_check, P1.year_check) and not is_second(first)
    for name, year, group in itertools.product((None, P1.name_check), (None, P1.year_check), (None, 3)):
        if (name, year, group) == (None, None, None):
            continue  # nothing printed: no ninth field
        some = replace(P1, name_check=name, year_check=year, group_check=group)
        alone = PagePayload.decode(some.encode())
        assert (alone.name_check, alone.year_check, alone.group_check) == (name, year, group), some.encode()
    # The second code and the id line carry the identity only: their size and the line's check are as before.
    assert second == P1.identity() + "|2" and is_second(second) and PagePayload.decode(second).name_check is None
    assert line.split()[:8] == P1.identity().split("|")
    read = parse_id_line(line, ["cdht-self-assessment"], ["cdht-324-pl4"])
    assert read == P1 and read is not None and read.name_check is None
    # A code printed before the check existed: the same page, no check.
    old = PagePayload.decode(P1.identity())
    assert old == P1 and old.name_check is None
    for bad in (P1.identity() + "|Dũng!!", P1.identity() + "|123456780", P1.identity() + "|.",
                P1.identity() + "|..", P1.identity() + "|aff65Qu0", first + "|extra"):
        with pytest.raises(InputError):
            PagePayload.decode(bad)
    for bad_checks in ({"name_check": "nope"}, {"year_check": "!"}, {"group_check": 10}):
        with pytest.raises(ValueError):
            replace(P1, **bad_checks).encode()


def test_the_check_is_of_the_letters_printed_not_their_spacing() -> None:
    assert name_check("Trần  Quốc Dũng ") == name_check("Trần Quốc Dũng.") == P1.name_check
    assert name_check("Nguyễn V. An") == name_check("Nguyễn V An") != name_check("Nguyễn An")
    assert name_check("TRẦN QUỐC DŨNG") != P1.name_check and name_check("Trần quốc Dũng") != P1.name_check
    assert name_check("Trần Quốc Dùng") != P1.name_check and name_check("Tran Quoc Dung") != P1.name_check
    assert name_check("") is None and name_check(" . ") is None
    form = get_form("cdht-self-assessment")
    [page] = payloads_for(form, {"subject": {"id": "nv-001", "full_name": "Trần Quốc Dũng"}}, 1)
    assert page.name_check == P1.name_check
    assert payloads_for(form, {"subject": {"id": "nv-001"}}, 1)[0].name_check is None  # a blank name line
    [page] = payloads_for(form, {"subject": {"id": "nv-001", "full_name": "Trần Quốc Dũng", "birth_year": 1966,
                                             "group": "Cán bộ, công chức, viên chức"}}, 1)
    assert (page.name_check, page.year_check, page.group_check) == (P1.name_check, P1.year_check, 3)
    # Never at the cost of a denser first code: checks are left out, the group's first, until it keeps its version
    # (a long roster id leaves no room).
    for sid, kept in (("0123456789abcdefg", 3), ("0123456789abcdefgh", 2), ("0123456789abcdefghi", 1),
                      ("0123456789abcdefghij", 0)):
        [long] = payloads_for(form, {"subject": {"id": sid, "full_name": "Trần Quốc Dũng", "birth_year": 1966,
                                                 "group": "official"}}, 1)
        assert [long.name_check, long.year_check, long.group_check] == [P1.name_check, P1.year_check, 3][:kept] \
            + [None] * (3 - kept), sid
        assert segno.make(long.encode(), error="m", micro=False).version == \
            segno.make(long.identity(), error="m", micro=False).version


def test_a_name_read_with_wrong_marks_is_put_right_when_one_reading_agrees() -> None:
    check = str(P1.name_check)
    assert check_name("Trần Quốc Dũng", check).verdict == "as_read"
    for misread in ("Trần Quốc Dùng", "Trần Quộc Dung", "Tran Quoc Dũng", "Trân Quôc Dũng", "Trần Quoc Đúng"):
        r = check_name(misread, check)
        assert r.name == "Trần Quốc Dũng" and r.verdict == "corrected", (misread, r)
    # What OCR adds to a name (a speck read as a letter) is taken out first; what was printed is kept, every word of
    # a unit's name too (name_letters would drop "THCS": the name confirmed would not be the one printed).
    assert check_name("Trần Quốc Dùng S", check, "Trần Quốc Dùng") == CheckedName("Trần Quốc Dũng", "corrected")
    # Punctuation is not checked: a name agreeing is given without what OCR read around or inside it (held out:
    # "; Trần Thị Mai", "L.ê Thu Dùng" given as read at 0.99 before).
    assert check_name("; Trần Quốc Dũng", check, "Trần Quốc Dũng") == CheckedName("Trần Quốc Dũng", "as_read")
    assert check_name("Tr.ần Quốc Dùng", check, "Trần Quốc Dùng") == CheckedName("Trần Quốc Dũng", "corrected")
    unit = str(name_check("Trường THCS Tân Thành"))
    assert check_name(": Trường THCS Tân Thanh.", unit, "Trường Tân Thanh") == CheckedName("Trường THCS Tân Thành",
                                                                                           "corrected")
    assert check_name("Trường Tân Thành", unit).verdict == "differs"
    # One word's vowels read as their look-alikes, the commonest names pulling Tesseract (held out: "Thu" read "Thị",
    # "Hồng" "Hầng", "Võ" "Vã", "Ngọc" "Ngục", "Quốc" "Quạc").
    for printed, misread in (("Huỳnh Thu Trường", "Huỳnh Thị Trường"), ("Lê Hồng Khánh", "Lê Hầng Khánh"),
                             ("Võ Hữu Việt", "Vã Hữu Việt"), ("Vũ Ngọc Đức", "Vũ Ngục Đức"),
                             ("Hồ Quốc Mai", "Hồ Quạc Mai")):
        assert check_name(misread, str(name_check(printed))) == CheckedName(printed, "corrected"), misread
    ede = str(name_check("H'Hen Niê"))
    assert check_name("H'Hen Niê", ede, "H'Hen Niê").name == "H'Hen Niê" and check_name("HHen Niê", ede).verdict \
        == "differs"
    # Three words' marks wrong, a consonant wrong, two words' vowels, a word lost: not guessed at.
    for misread in ("Tran Quoc Dung", "Trần Quóc Dũnq", "Trần Quác Dăng", "Trần Quốc Dũnh", "Trần quốc Dũng",
                    "Trần Dũng", "Trần Quốc Dùng Anh"):
        r = check_name(misread, check)
        assert r.verdict == "differs" and r.name == misread, (misread, r)


def test_a_name_read_with_specks_beside_it_as_words_is_the_run_of_words_that_agrees() -> None:
    """Held out (harsh, print-and-scan): "Lý Kim Tuấn GUẾ UHẾ Nuây. ,BẾP (1", "Huỳnh Ngọc Khánh th nay", "3+. Phạm
    Văn Hạnh .. - H": specks, a fold or a neighbour's ink read as words of their own beside the name."""
    check = str(P1.name_check)
    for misread, cleaned in (("Trần Quốc Dũng GUẾ UHẾ Nuây. ,BẾP (1", "Trần Quốc Dũng GUẾ UHẾ Nuây BẾP"),
                             ("3+. Trần Quốc Dũng .. - H", None),
                             ("Anh Trần Quốc Dũng th", "Anh Trần Quốc Dũng th"),
                             ("Trần Quốc Dũng: . “l4 # . È“;jilâ", None)):
        assert check_name(misread, check, cleaned) == CheckedName("Trần Quốc Dũng", "trimmed"), misread
    # A mark no Vietnamese letter has, put on a consonant (held out: "Ngô Hữu Phương" read "Ñgô Hữu Phương", which
    # name_letters makes "gô Hữu Phương"), is read as its letter.
    assert check_name("Ñgô Hữu Phương", str(name_check("Ngô Hữu Phương")), "gô Hữu Phương") == \
        CheckedName("Ngô Hữu Phương", "as_read")
    # Runs of words are tried as read only: a misread mark inside one is not also put right.
    assert check_name("Trần Quốc Dùng Anh", check).verdict == "differs"
    # However long a line of noise, the runs tried are bounded.
    noise = " ".join(f"W{i}" for i in range(500)) + " Trần Quốc Dũng"
    assert check_name(noise, check).verdict == "differs"
    assert check_name("Trần Quốc Dũng " + noise, check) == CheckedName("Trần Quốc Dũng", "trimmed")


def test_no_misreading_is_ever_confirmed_as_another_name() -> None:
    """Names of the roster generator, misread every way OCR slips (a letter swapped, dropped or added, marks
    or vowels changed in any number of words, other names' words read beside it): the verdict is the printed name or
    `differs`, never a third name."""
    rng = random.Random(15)
    names = [" ".join(n) for n in itertools.product(FAMILY, MIDDLE, GIVEN)]
    letters = "abcdeghiklmnopqrstuvxyđăâêôơư"
    for name in rng.sample(names, min(len(names), 150)):
        check = str(name_check(name))
        words = name.split()
        for _ in range(8):
            out = list(words)
            for i in range(len(out)):
                if rng.random() < 0.6:
                    out[i] = rng.choice(word_variants(out[i], lookalikes=rng.random() < 0.3))
            text = " ".join(out)
            slip = rng.randrange(4)
            at = rng.randrange(len(text))
            if slip == 1 and text[at] != " ":
                text = text[:at] + rng.choice(letters) + text[at + 1:]
            elif slip == 2 and text[at] != " ":
                text = text[:at] + text[at + 1:]
            elif slip == 3:
                text = text[:at] + rng.choice(letters) + text[at:]
            if rng.random() < 0.5:  # other names' words read beside it (a neighbour's line, specks)
                extra = rng.sample([*FAMILY, *MIDDLE, *GIVEN], rng.randint(1, 3))
                text = " ".join([text, *extra] if rng.random() < 0.5 else [*extra, text])
            r = check_name(text, check)
            assert r.name == name or r.verdict == "differs", (name, text, r)
            assert r.verdict != "differs" or r.name == text


def _reads(name: str, conf: float) -> list[FieldRead]:
    hand = [FieldRead(f"scores.ct{i}", "score", "7", False, 0.99, (0, 0, 1, 1), "handwriting", ((7.0, 0.99),))
            for i in range(1, 11)]
    return [FieldRead("subject.full_name", "text", name, False, conf, (0, 0, 1, 1), "ocr"), *hand,
            FieldRead("total_declared", "score", "70", False, 0.99, (0, 0, 1, 1), "handwriting", ((70.0, 0.99),))]


def _record(name: str, conf: float, *, bilevel: bool, checked_page: int | None = 1):  # type: ignore[no-untyped-def]
    reads = _reads(name, conf)
    p1 = P1 if checked_page == 1 else replace(P1, name_check=None)
    p2 = replace(P1, page=2, name_check=P1.name_check if checked_page == 2 else None)
    return build_record([PageFields(p1, reads[:6], bilevel=bilevel), PageFields(p2, reads[6:])],
                        missing_pages=[], registry=default_registry())


def test_a_checked_name_needs_no_person_on_any_capture() -> None:
    threshold = get_settings().review_confidence
    # Black-and-white (tone marks untrusted) or read at 0.75 (below NAME_SURE): the check decides. It may ride on
    # another page of the copy than the name's (page 1's code lost, page 1 identified from its id line).
    for read, conf, bilevel, page in (("Trần Quốc Dùng", 0.95, True, 1), ("Trần Quốc Dũng", 0.75, False, 1),
                                      ("Trần Quốc Dùng", 0.95, True, 2)):
        record, reasons = _record(read, conf, bilevel=bilevel, checked_page=page)
        name = next(f for f in record.fields if f.name == "subject.full_name")
        assert record.subject.full_name == "Trần Quốc Dũng" and name.confidence == CHECKED_NAME >= threshold
        assert reasons == [], reasons


def test_a_name_the_check_refuses_goes_to_a_person_even_when_tesseract_is_sure() -> None:
    record, reasons = _record("Trần Quốc Dũnh", 0.99, bilevel=False)
    name = next(f for f in record.fields if f.name == "subject.full_name")
    assert record.subject.full_name == "Trần Quốc Dũnh" and name.confidence <= UNCHECKED
    [reason] = reasons
    assert reason.code == "name_check_failed" and reason.field == "subject.full_name"
    assert "Trần Quốc Dũnh" in reason.message and "không khớp" in reason.message
    # Printed from a roster the service knows: the roster's name, and the finding goes.
    person = Person(row=2, full_name="Trần Quốc Dũng", birth_year=None, unit=None, group=None, id="nv-001",
                    criteria_set=None)
    known, found = apply_roster(record, reasons, {"nv-001": person})
    assert known.subject.full_name == "Trần Quốc Dũng" and found == []
    # A page printed before the check existed: the rules without it (black-and-white: a person looks).
    record, reasons = _record("Trần Quốc Dùng", 0.95, bilevel=True, checked_page=None)
    assert [r.code for r in reasons] == ["name_bilevel"]


def test_any_one_digit_misread_of_a_birth_year_disagrees_with_its_check() -> None:
    for year in range(1900, 2030):
        for place in range(4):
            for digit in "0123456789":
                text = str(year)
                misread = text[:place] + digit + text[place + 1:]
                if misread[:2] in ("19", "20") and misread != text:  # what parse reads as a year
                    assert year_check(int(misread)) != year_check(year), (year, misread)


def _year_record(text: str, conf: float, check: str | None, inked: bool = False):  # type: ignore[no-untyped-def]
    reads = _reads("Trần Quốc Dũng", 0.99)
    born = FieldRead("subject.birth_year", "text", text, not text and not inked, conf, (0, 0, 1, 1), "ocr")
    p1 = replace(P1, year_check=check)
    return build_record([PageFields(p1, [*reads[:6], born]), PageFields(replace(p1, page=2), reads[6:])],
                        missing_pages=[], registry=default_registry())


def test_a_birth_year_read_without_the_roster_is_held_against_its_check() -> None:
    threshold = get_settings().review_confidence
    check = year_check(1966)

    def year_of(record):  # type: ignore[no-untyped-def]
        return next(f for f in record.fields if f.name == "subject.birth_year")

    # Seen on a harsh capture: 1966 read 1960 at 0.88. The check disagrees: a person looks.
    record, reasons = _year_record("1960", 0.88, check)
    assert record.subject.birth_year == 1960 and year_of(record).confidence <= UNCHECKED
    assert [(r.code, r.field) for r in reasons] == [("birth_year_check_failed", "subject.birth_year")]
    assert "1960" in reasons[0].message
    # Agreeing and read fairly surely: sure. Agreeing but read at a guess: as unsure as read.
    record, reasons = _year_record("1966", YEAR_CONFIRMABLE, check)
    assert year_of(record).confidence == CHECKED_YEAR >= threshold and reasons == []
    record, reasons = _year_record("1966", YEAR_CONFIRMABLE - 0.01, check)
    assert year_of(record).confidence < threshold and reasons == []
    # Printed (the check says so) and read as nothing: flagged, where before it was left out.
    record, _ = _year_record("", 0.9, check)
    assert record.subject.birth_year is None and year_of(record).confidence == 0.0
    record, _ = _year_record("", 0.9, None)
    assert all(f.name != "subject.birth_year" for f in record.fields)
    # Without a check (a form printed before it): a line of ink read as nothing is flagged too (held out: harsh and
    # print-and-scan years lost under a stain, passed unflagged), a line without ink is left out.
    record, _ = _year_record("", 0.9, None, inked=True)
    assert record.subject.birth_year is None and year_of(record).confidence == 0.0
    # No check (a form printed before it): as read.
    record, reasons = _year_record("1960", 0.88, None)
    assert year_of(record).confidence == 0.88 and reasons == []


def test_a_birth_year_agreeing_with_its_check_is_as_sure_as_its_own_word() -> None:
    """Held out (print-and-scan, harsh): "1999 sàn", "1967 11U1Y111I INgọcC", ": 1984 sản : mm..." — the year read
    whole, specks or a fold's shadow beside it read as words at 0.0-0.5, and the line as unsure as they are."""
    threshold = get_settings().review_confidence
    check = year_check(1999)

    def year_of(words: tuple[tuple[str, float], ...], check: str | None):  # type: ignore[no-untyped-def]
        reads = _reads("Trần Quốc Dũng", 0.99)
        line = " ".join(w for w, _ in words)
        born = FieldRead("subject.birth_year", "text", line, False, min(c for _, c in words), (0, 0, 1, 1), "ocr",
                         words=words)
        p1 = replace(P1, year_check=check)
        record, reasons = build_record([PageFields(p1, [*reads[:6], born]), PageFields(replace(p1, page=2), reads[6:])],
                                       missing_pages=[], registry=default_registry())
        field = next(f for f in record.fields if f.name == "subject.birth_year")
        return field.value, field.confidence, [r.code for r in reasons]

    assert year_of((("1999", 0.93), ("sàn", 0.1)), check) == (1999, CHECKED_YEAR, [])
    assert year_of(((":", 0.04), ("1999.", 0.8), ("sản", 0.3)), check) == (1999, CHECKED_YEAR, [])
    # The year's own word read at a guess, or the year only part of a word: as unsure as the line.
    value, conf, _ = year_of((("1999", YEAR_CONFIRMABLE - 0.01), ("sàn", 0.1)), check)
    assert value == 1999 and conf < threshold
    value, conf, _ = year_of((("19997", 0.9), ("sàn", 0.1)), check)
    assert value == 1999 and conf < threshold
    # Disagreeing however sure its word, or with no check: as before.
    assert year_of((("1990", 0.97), ("sàn", 0.1)), check) == (1990, 0.1, ["birth_year_check_failed"])
    value, conf, reasons = year_of((("1999", 0.93), ("sàn", 0.1)), None)
    assert (value, conf, reasons) == (1999, 0.1, [])


def test_an_audience_group_read_without_the_roster_is_held_against_its_check() -> None:
    """The group line matched one of the groups' long labels however garbled (held out: "Cán bộ, càn2° bức, viên
    chức, người lao động" read at 0.0): the code's group confirms it, or a person looks; a line matching no label
    is the group the code names, or the one group the form's criteria set is for."""
    threshold = get_settings().review_confidence
    reads = _reads("Trần Quốc Dũng", 0.99)

    def group_of(text: str, check: int | None, criteria_set: str = "cdht-324-pl4"):  # type: ignore[no-untyped-def]
        line = FieldRead("subject.group", "text", text, False, 0.0, (0, 0, 1, 1), "ocr")
        p1 = replace(P1, group_check=check, criteria_set=criteria_set)
        record, reasons = build_record([PageFields(p1, [*reads[:6], line]), PageFields(replace(p1, page=2), reads[6:])],
                                       missing_pages=[], registry=default_registry())
        return record.subject.group, next(f.confidence for f in record.fields if f.name == "subject.group"), reasons

    garbled = "Cán bộ, càn2° bức, viên chức, người lao động"
    group, conf, reasons = group_of(garbled, 3)
    assert group == "official" and conf >= threshold and reasons == []
    # No check (a form printed before it, a blank form): held against the one group the form's criteria set is for
    # (cdht-324-pl4: officials), as read on a set for any group.
    assert group_of(garbled, None) == ("official", CHECKED_GROUP, [])
    group, conf, reasons = group_of("Nông dân và lao động nông thôn", None)
    assert group == "farmer" and conf <= UNCHECKED and reasons == []
    group, conf, reasons = group_of(garbled, None, "cdht-324-pl1")
    assert group == "official" and conf < threshold and reasons == []
    group, conf, reasons = group_of(garbled, 1)  # printed "farmer": the line and the code disagree
    assert group == "official" and conf <= UNCHECKED and [r.code for r in reasons] == ["group_check_failed"]
    # A line matching no label, or no line read: the group the code says was printed, as a roster would say it.
    noise = "Cán 11UOI1S bộ, 111 công 1*šUuYVên"
    for line in (noise, ""):
        group, conf, reasons = group_of(line, 3)
        assert group == "official" and conf == CHECKED_GROUP and reasons == []
    # No check: the one group the form's criteria set is for; a set for any group: not guessed.
    for line in (noise, ""):
        assert group_of(line, None) == ("official", CHECKED_GROUP, [])
    assert default_registry().get("cdht-324-pl1").audience_groups == []
    group, conf, reasons = group_of(noise, None, "cdht-324-pl1")
    assert group is None and conf == 0.0


def test_a_line_of_noise_read_as_a_name_costs_a_bounded_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Harsh captures read noise into the name line ("Phạm Mãn HộỀHG CUAAUAOUUU ó ..."): at most MAX_READINGS
    readings are tried per text and MAX_TRIED in all, none for a line of more than MAX_NAME_WORDS words, and runs of
    at most MAX_NAME_WORDS of its first MAX_LINE_WORDS words: the chance of a false agreement stays bounded."""
    from formsvc.extract import name_check as module
    from formsvc.text import tone_variants

    noise = "Phạm Mãn HộỀHG CUAAUAOUUU ó HHH UUU OOO III AAA EEE"
    assert sum(len(t) for t in tone_variants(noise, 2, module.MAX_READINGS)) == module.MAX_READINGS
    check = str(P1.name_check)
    tried: list[str] = []

    def counted(text: str) -> int:
        tried.append(text)
        return 0

    monkeypatch.setattr(module, "key_crc", counted)
    runs = 3 * module.MAX_LINE_WORDS * module.MAX_NAME_WORDS
    for text in (noise, "Ñ" + noise, noise * 40, "Ạ" * 5000):
        tried.clear()
        assert check_name(text, check, noise[1:]).verdict == "differs"
        assert len(tried) <= module.MAX_TRIED + 3 + runs, (text, len(tried))
    monkeypatch.undo()
    assert check_name(noise + " Trần Quốc Dùng", check).verdict == "differs"  # no word dropped to make it agree
    assert check_name("Trần Quốc Dùng", "AAAAA!").verdict == "differs"  # a check that spells no CRC
