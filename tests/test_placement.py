"""A formsvc page that kept its markers but lost both codes and its id line is placed by the pages around it in its
upload: read as the page its copy lacks, every value on it for a person, never when the evidence disagrees (on
rendered pages: tests/test_identify_redundancy.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from formsvc.criteria import default_registry
from formsvc.extract.align import PageMatrix
from formsvc.extract.pages import Page
from formsvc.extract.parse import UNCHECKED, PageFields, build_record
from formsvc.extract.placement import Neighbour, Orphan, contradicts, place
from formsvc.extract.read import FieldRead
from formsvc.payload import PagePayload
from formsvc.settings import get_settings

FORMS, SETS = ["cdht-self-assessment", "cdht-minutes"], ["cdht-324-pl4"]
P1 = PagePayload("cdht-self-assessment", 1, "cdht-324-pl4", "nv-001", 2024, 1, 3, "90913a2cc9")
P2 = replace(P1, pages=2)


def _orphan(file: str = "a.pdf", number: int = 2, seen: list[str] | None = None) -> Orphan:
    page = Page(file, number, np.zeros((4, 4), np.uint8), 200.0, False)
    return Orphan(page, PageMatrix(np.eye(3), 200.0, "markers", 0.0, 4), seen or [])


def _at(number: int, page: int, file: str = "a.pdf", payload: PagePayload = P1) -> Neighbour:
    return Neighbour(file, number, replace(payload, page=page))


def test_a_page_continues_the_copy_before_it_or_precedes_the_copy_after_it() -> None:
    assert place(_orphan(), _at(1, 1), None, FORMS, SETS) == replace(P1, page=2)
    assert place(_orphan(), None, _at(3, 3), FORMS, SETS) == replace(P1, page=2)
    assert place(_orphan(), _at(1, 1), _at(3, 3), FORMS, SETS) == replace(P1, page=2)  # both say the same
    # Photographed page by page, one file each: the last page of the file before, the first of the file after.
    assert place(_orphan("b.jpg", 1), _at(1, 1, file="a.jpg"), None, FORMS, SETS) == replace(P1, page=2)
    assert place(_orphan("b.jpg", 1), None, _at(1, 3, file="c.jpg"), FORMS, SETS) == replace(P1, page=2)


@pytest.mark.parametrize("before,after", [
    (None, None),  # nothing around it
    (_at(1, 3), None),  # the copy before it has no page after its last
    (None, _at(3, 1)),  # nor one before its first
    (_at(1, 1, file="b.pdf"), None),  # another file's page, and this page is not its own file's first
    (_at(0, 1), None),  # not right before it
    (None, _at(3, 3, file="b.pdf")),  # another file's page after it, but not that file's first
    (_at(1, 1), _at(3, 3, payload=replace(P1, doc="90913a2cc8"))),  # the two neighbours say different things
])
def test_no_place_without_one_clear_neighbour(before: Neighbour | None, after: Neighbour | None) -> None:
    assert place(_orphan(), before, after, FORMS, SETS) is None


def test_an_id_line_read_in_part_vetoes_a_place_it_contradicts() -> None:
    line = replace(P1, page=2).id_line().rsplit(" ", 1)[0]
    other_key = line.replace("90913a2cc9", "5566778899")
    other_person = line.replace("nv-001", "nv-002")
    other_page = line.replace("2/3", "3/3")
    assert not contradicts([line] * 3, replace(P1, page=2), FORMS, SETS)
    assert not contradicts(["", "%%", other_key], replace(P1, page=2), FORMS, SETS)  # one reading agrees on nothing
    for wrong in (other_key, other_person, other_page):
        assert contradicts([wrong] * 3, replace(P1, page=2), FORMS, SETS)
        assert place(_orphan(seen=[wrong] * 3), _at(1, 1), None, FORMS, SETS) is None


def _two_pages(placed: bool) -> list[PageFields]:
    """Ten handwritten scores, read surely, five on each page, and the total on page 2: they add up."""
    def hand(name: str, value: float) -> FieldRead:
        return FieldRead(name, "score", f"{value:g}".replace(".", ","), False, 0.99, (0, 0, 1, 1), "handwriting",
                         ((value, 0.99),))
    first = [hand(f"scores.ct{i}", 7.0) for i in range(1, 6)]
    second = [*(hand(f"scores.ct{i}", 7.5) for i in range(6, 11)), hand("total_declared", 72.5)]
    return [PageFields(P2, first), PageFields(replace(P2, page=2), second, placed=placed)]


def test_nothing_a_placed_page_holds_or_confirms_is_trusted() -> None:
    threshold = get_settings().review_confidence
    record, reasons = build_record(_two_pages(False), missing_pages=[], registry=default_registry())
    assert all(f.confidence >= threshold for f in record.fields if f.name.startswith(("scores.", "total")))
    assert reasons == []
    record, reasons = build_record(_two_pages(True), missing_pages=[], registry=default_registry())
    assert record.scores["ct6"] == 7.5 and record.total_declared == 72.5  # read, for a person to confirm
    # Its own values, and page 1's too: the page holding the total may be another copy's, so the sum confirms none.
    assert all(f.confidence <= UNCHECKED for f in record.fields if f.name.startswith(("scores.", "total")))
    [reason] = reasons
    assert reason.code == "pages_placed" and reason.severity == "review" and "Trang 2 / 2" in reason.message
