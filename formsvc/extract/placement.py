"""Placing a formsvc page that carries no readable identity by where it lies in its upload.

A page can keep its corner markers (so it is formsvc's, and can be aligned) while both codes and the printed id
line are lost to a fold, a streak or a stain. A clerk who scans a stack sheet after sheet, or photographs a sheet
page after page, puts each copy's pages together, so such a page most likely continues the copy whose page comes
right before it in the upload (or precedes the one right after it): the page before it in its file, or the last
page of the file before when it is its file's first. That is what a person would assume, and only an assumption:
the page is read, but every value on it goes to a person (parse.build_record, `placed`), with a reason saying why.

Never placed: a page whose neighbours point to two different places, a place the copy already has (a certain page
wins, wherever in the batch it comes), two unidentified pages wanting one place, or a page whose id line, as far
as it could be read, names another copy, page or person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from formsvc.extract.align import PageMatrix
from formsvc.extract.identify import agreed_fields
from formsvc.extract.pages import Page
from formsvc.payload import PagePayload

# Fields of the id line (payload.unchecked_fields' order) a partial reading may contradict a place by. The template
# version and the criteria set are left out: the copy's own are resolved to stored versions (criteria.store).
_COMPARED = (0, 3, 4, 5, 6)


@dataclass
class Orphan:
    """A page with formsvc's markers and no identity, as the worker found it: the page itself (read again once
    placed), the matrix its markers give, and every reading of its id line."""
    page: Page
    matrix: PageMatrix
    seen: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Neighbour:
    """A page identified for certain: where it lies and what it is."""
    file: str
    number: int
    payload: PagePayload


def place(orphan: Orphan, before: Neighbour | None, after: Neighbour | None, forms: Iterable[str],
          criteria_sets: Iterable[str]) -> PagePayload | None:
    """The page `orphan` most likely is, from the pages read right before and after it (files are read one after
    the other, so a page of another file before it was that file's last), when identified for certain; None when
    they say nothing, disagree, or its id line's agreed fields name something else."""
    here = (orphan.page.file, orphan.page.number)
    places: set[PagePayload] = set()
    if before is not None and _next((before.file, before.number), here) \
            and before.payload.page < before.payload.pages:
        places.add(replace(before.payload, page=before.payload.page + 1))
    if after is not None and _next(here, (after.file, after.number)) and after.payload.page > 1:
        places.add(replace(after.payload, page=after.payload.page - 1))
    if len(places) != 1:
        return None
    payload = places.pop()
    return None if contradicts(orphan.seen, payload, forms, criteria_sets) else payload


def contradicts(seen: Iterable[str], payload: PagePayload, forms: Iterable[str], criteria_sets: Iterable[str]
                ) -> bool:
    """Whether readings of an id line agree (identify.agreed_fields) on a form, person, year, page or copy key other
    than `payload`'s."""
    agreed = agreed_fields(seen, forms, criteria_sets)
    printed = payload.identity().split("|")[1:8]
    return any(agreed[i] is not None and agreed[i] != printed[i] for i in _COMPARED)


def _next(first: tuple[str, int], second: tuple[str, int]) -> bool:
    """Whether page `second` (file, number) comes right after `first`, the two read one after the other: the next
    page of the same file, or the first page of another file (a page the reader dropped in between breaks it)."""
    return second[1] == first[1] + 1 if second[0] == first[0] else second[1] == 1
