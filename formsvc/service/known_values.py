"""Known values beat free OCR: a form printed from a roster carries the person's roster id in its QR code, so the
name read from the scan is checked against (and, when they agree closely, replaced by) the roster the unit printed
from, and the birth year and audience group printed from it are taken from it. A large disagreement in the name is
flagged, never silently overwritten, and then the birth year and group read are held against the roster's."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session

from formsvc.criteria import resolve_group
from formsvc.db.tables import Job, JobFile
from formsvc.errors import FormsvcError
from formsvc.records import FieldProvenance, Reason, Record
from formsvc.roster import Person, read_roster
from formsvc.settings import get_settings
from formsvc.storage import get_file_store
from formsvc.text import fold

SAME_NAME = 75  # fold()-ed ratio: OCR slips (a lost diacritic, one wrong letter) stay above it
# A name read with more slips than that is still the person's when it is at least NAME_FLOOR like the roster's name
# and NAME_MARGIN more like it than like anyone else's in the roster: grey paper turns "Lê Thu Dũng" into "Lâ đấu
# Dũng" (72.7). A name as like another person's, or like no one's, stays a finding.
NAME_FLOOR = 60
NAME_MARGIN = 15


def roster_people(session: Session, unit: str) -> dict[str, Person]:
    """People of the unit's print-pack rosters by roster id; the newest roster wins."""
    store = get_file_store()
    jobs = session.execute(
        select(Job.id, JobFile.sha256, JobFile.filename).join(JobFile, JobFile.job_id == Job.id)
        .where(Job.unit == unit, Job.kind == "print_pack", Job.status == "done")
        .order_by(Job.created_at).limit(get_settings().roster_max_files)).all()
    people: dict[str, Person] = {}
    for _, sha, filename in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            link = Path(tmp) / filename
            try:
                link.symlink_to(store.path(sha).resolve())
                roster = read_roster(link)
            except (FormsvcError, OSError, ValueError):
                continue
        people.update({p.id: p for p in roster.people if p.id})
    return people


def apply_roster(doc: Record, findings: list[Reason], people: dict[str, Person]) -> tuple[Record, list[Reason]]:
    """A document and its findings with the roster's known values applied (before validation)."""
    person = people.get(doc.subject.id or "") if doc.subject.id else None
    return _corrected(doc, findings, person, people) if person else (doc, findings)


def read_as(name: str, person: Person, people: dict[str, Person]) -> bool:
    """Whether a name read from a sheet is `person`'s, printed there from the roster `people`: close to it (SAME_NAME),
    or near it and nearer than to any other name in the roster (NAME_FLOOR, NAME_MARGIN)."""
    read = fold(name)
    own = fuzz.ratio(read, fold(person.full_name))
    if own >= SAME_NAME:
        return True
    others = [fuzz.ratio(read, fold(p.full_name)) for p in people.values()
              if fold(p.full_name) != fold(person.full_name)]
    return own >= NAME_FLOOR and own - max(others, default=0.0) >= NAME_MARGIN


def _corrected(doc: Record, findings: list[Reason], person: Person, people: dict[str, Person]
               ) -> tuple[Record, list[Reason]]:
    if not read_as(doc.subject.full_name, person, people):
        # A finding on the name: it goes when a reviewer corrects or confirms the name. The birth year and group the
        # roster printed are not taken either; one read otherwise, or not read, is a finding of its own.
        return doc, [*findings, Reason(
            code="name_differs_from_roster", field="subject.full_name", severity="review",
            message=f"Họ tên đọc được «{doc.subject.full_name}» khác danh sách in phiếu "
                    f"(«{person.full_name}», mã {person.id})."), *_unlike_roster(doc, person)]
    known: dict[str, object] = {"subject.full_name": person.full_name}
    subject = doc.subject.model_copy(update={"full_name": person.full_name})
    if person.birth_year is not None:
        known["subject.birth_year"] = person.birth_year
        subject = subject.model_copy(update={"birth_year": person.birth_year})
    if person.group is not None:  # the group line was printed from the roster too
        known["subject.group"] = person.group
        subject = subject.model_copy(update={"group": person.group})
    # The roster value is known: findings about reading it no longer apply (unsure OCR is judged from `fields`).
    findings = [r for r in findings if r.field not in known]
    fields = [f for f in doc.fields if f.name not in known]
    fields += [FieldProvenance(name=name, value=value, confidence=1.0, source="known_value",
                               page=next((f.page for f in doc.fields if f.name == name), None),
                               bbox=next((f.bbox for f in doc.fields if f.name == name), None))
               for name, value in known.items()]
    if all(f.confidence >= get_settings().review_confidence for f in fields):
        # A bent page's finding is about the fields it could not place (each held below the review threshold): once
        # the roster gave those values, it holds none (a curled photo's birth year line, unread, was all it held).
        findings = [r for r in findings if r.code != "page_bent"]
    return doc.model_copy(update={"subject": subject, "fields": fields}), findings


def _unlike_roster(doc: Record, person: Person) -> list[Reason]:
    """Findings on a birth year or group read otherwise than the roster printed them (or not read)."""
    out = []
    if person.birth_year is not None and doc.subject.birth_year != person.birth_year:
        out.append(Reason(code="birth_year_differs_from_roster", field="subject.birth_year", severity="review",
                          message=f"Năm sinh đọc được «{doc.subject.birth_year or 'không đọc được'}» khác danh sách in "
                                  f"phiếu ({person.birth_year}, mã {person.id})."))
    read_group, printed_group = resolve_group(doc.subject.group), resolve_group(person.group)
    if printed_group is not None and read_group != printed_group:
        out.append(Reason(code="group_differs_from_roster", field="subject.group", severity="review",
                          message=f"Đối tượng đọc được «{doc.subject.group or 'không đọc được'}» khác danh sách in "
                                  f"phiếu («{printed_group.label}», mã {person.id})."))
    return out
