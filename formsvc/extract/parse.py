"""Stage 5, parse: turn the fields read from a document's pages into a Record with provenance."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from formsvc.criteria import CriteriaRegistry, load_groups, resolve_group
from formsvc.extract.read import FieldRead
from formsvc.payload import PagePayload
from formsvc.records import FieldProvenance, Reason, Record
from formsvc.text import fold, name_letters, nfc

_FILLER = re.compile(r"^[\s.…·_:\-]*$")
_YEAR = re.compile(r"(19|20)\d{2}")


@dataclass
class PageFields:
    payload: PagePayload
    reads: list[FieldRead]


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


def plausible(value: float | str | None, max_points: float, step: float) -> bool:
    """A reading the criteria allow (0..max on the step); anything else cannot be trusted as read."""
    if not isinstance(value, float):
        return value is None
    return 0 <= value <= max_points and (value / step) == int(value / step)


def build_record(pages: list[PageFields], *, missing_pages: list[int],
                 registry: CriteriaRegistry | None = None) -> tuple[Record, list[Reason]]:
    first = pages[0].payload
    cset = registry.sets.get(first.criteria_set or "") if registry else None
    values: dict[str, FieldRead] = {}
    page_of: dict[str, int] = {}
    for pf in sorted(pages, key=lambda p: p.payload.page):
        for r in pf.reads:
            values[r.name] = r
            page_of[r.name] = pf.payload.page
    fields: list[FieldProvenance] = []

    def prov(name: str, value: object, confidence: float, source: str | None = None) -> None:
        r = values.get(name)
        fields.append(FieldProvenance(
            name=name, value=value, confidence=round(max(0.0, min(1.0, confidence)), 3), page=page_of.get(name),
            bbox=r.bbox if r else None, source=(source or (r.source if r else "qr")),
        ))

    scores: dict[str, float | str | None] = {}
    evidence: dict[str, str | None] = {}
    for name, r in values.items():
        if name.startswith("scores."):
            value = to_score(r.text)
            ind = cset.indicator(name.split(".", 1)[1]) if cset else None
            confidence = r.confidence
            if ind is not None and not plausible(value, ind.max_points, ind.step):
                confidence = min(confidence, 0.3)
                # OCR often drops a small decimal comma: "45" where at most 10 is allowed was "4,5". Offer that
                # reading, still flagged for a human to confirm.
                if isinstance(value, float) and value.is_integer() and 10 <= value < 100:
                    candidate = value / 10
                    if plausible(candidate, ind.max_points, ind.step):
                        value, confidence = candidate, min(r.confidence, 0.5)
            scores[name.split(".", 1)[1]] = value
            prov(name, value, confidence)
        elif name.startswith("evidence."):
            text = clean(r.text)
            evidence[name.split(".", 1)[1]] = text or None
    total = to_score(values["total_declared"].text) if "total_declared" in values else None
    if "total_declared" in values:
        prov("total_declared", total, values["total_declared"].confidence)

    name_read = values.get("subject.full_name")
    full_name, dropped = name_letters(clean(name_read.text)) if name_read else ("", 0)
    if name_read:
        confidence = name_read.confidence * (0.9 ** dropped)  # a stray mark removed: less sure, never surer
        prov("subject.full_name", full_name, confidence if full_name else 0.0)
    birth_year = None
    if "subject.birth_year" in values:
        m = _YEAR.search(values["subject.birth_year"].text)
        birth_year = int(m.group(0)) if m else None
        if clean(values["subject.birth_year"].text):
            prov("subject.birth_year", birth_year, values["subject.birth_year"].confidence if m else 0.0)
    unit = clean(values["subject.unit"].text) if "subject.unit" in values else ""
    group = None
    if "subject.group" in values and clean(values["subject.group"].text):
        group, conf = match_group(clean(values["subject.group"].text))
        prov("subject.group", group, conf * values["subject.group"].confidence ** 0.5)

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
    record = Record(
        form=first.form, criteria_set=first.criteria_set or "", year=year,
        subject={"id": first.subject_id, "full_name": full_name, "birth_year": birth_year,
                 "unit": unit or None, "group": group},
        scores=scores, evidence=evidence, total_declared=total, fields=fields,
        extra={"doc": first.doc, "template_version": first.template_version, "pages": first.pages},
    )
    return record, extra_reasons
