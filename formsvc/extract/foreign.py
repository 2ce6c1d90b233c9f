"""Self-assessments NOT printed by formsvc: the national software's printout or a unit's own Word table.

Works from words with boxes (a PDF text layer or Tesseract), so typed PDFs and scans of them go the same way:
find the header of the score column ("Tự chấm", "Điểm tự đánh giá", …), match each row's text to an indicator of
every criteria set by accent-folded fuzzy matching, take the number in the score column. The criteria set is the
one whose indicator texts match best; the person's name, unit and year come from their labelled lines.
"""

from __future__ import annotations

import re
from typing import Literal

from rapidfuzz import fuzz

from formsvc.criteria import CriteriaRegistry, CriteriaSet
from formsvc.extract.lines import Line, page_lines, table_rows
from formsvc.extract.types import PageText
from formsvc.records import FieldProvenance, Record
from formsvc.text import fold, nfc

SCORE_HEADERS = ("tu cham", "diem tu danh gia", "tu danh gia", "ca nhan tu cham", "diem tu cham")
NUM = re.compile(r"^\d{1,3}(?:[.,]\d{1,2})?$")
YEAR = re.compile(r"\bnam (20\d{2})\b")
MATCH_MIN = 75


def classify_page(page: PageText) -> Literal["self_assessment", "minutes", "unknown"]:
    head = fold(" ".join(line.text for line in page_lines(page)[:25]))
    if "bien ban" in head and ("hop" in head or "xet" in head):
        return "minutes"
    if "tu danh gia" in head or "tu cham" in head:
        return "self_assessment"
    return "unknown"


def _score_column(lines: list[Line]) -> tuple[float, float] | None:
    """x-span of the self-score column, from the table header ("STT … Điểm tự chấm"), wrapped or not."""
    for n, line in enumerate(lines):
        if not (line.key.startswith(("stt", "tt ")) or "noi dung" in line.key or "chi tieu" in line.key):
            continue
        header_words = [w for ln in lines[n:n + 3] for w in ln.words]
        anchors = [w for w in header_words if fold(w.text) == "cham"] or \
                  [w for w in header_words if fold(w.text) == "gia"]
        if not anchors:
            continue
        a = anchors[-1] if len(anchors) == 1 else anchors[0]
        near = [w for w in header_words if fold(w.text) in ("diem", "tu", "cham", "danh", "gia", "ca", "nhan")
                and abs((w.box[0] + w.box[2]) / 2 - (a.box[0] + a.box[2]) / 2) < (a.box[2] - a.box[0]) * 2.5]
        x0, x1 = min(w.box[0] for w in near), max(w.box[2] for w in near)
        pad = (x1 - x0) * 0.25 + 10
        return x0 - pad, x1 + pad
    return None


def _label_value(lines: list[Line], labels: tuple[str, ...]) -> tuple[str, Line] | None:
    for line in lines:
        for label in labels:
            if line.key.startswith(label):
                n = len(label.split())
                value = " ".join(w.text for w in line.words[n:]).lstrip(":").strip()
                return nfc(value.strip(" .…:")), line
    return None


def _best_set(rows: list[Line], registry: CriteriaRegistry) -> tuple[CriteriaSet, dict[int, tuple[str, float]]]:
    best: tuple[float, CriteriaSet, dict[int, tuple[str, float]]] | None = None
    for cset in registry:
        matches: dict[int, tuple[str, float]] = {}
        for n, row in enumerate(rows):
            text = fold(" ".join(w.text for w in row.words[1:]))  # without the row number
            scored = [(fuzz.token_set_ratio(fold(ind.title), text), ind.id) for ind in cset.indicators]
            ratio, ind_id = max(scored)
            if ratio >= MATCH_MIN:
                matches[n] = (ind_id, ratio)
        # Each indicator once: keep its best row.
        by_ind: dict[str, tuple[int, float]] = {}
        for n, (ind_id, ratio) in matches.items():
            if ind_id not in by_ind or ratio > by_ind[ind_id][1]:
                by_ind[ind_id] = (n, ratio)
        kept = {n: (i, r) for i, (n, r) in by_ind.items()}
        quality = sum(r for _, r in kept.values()) + (0.5 if cset.verified else 0)
        if best is None or quality > best[0]:
            best = (quality, cset, kept)
    assert best is not None
    return best[1], best[2]


def read_foreign_self_assessment(pages: list[PageText], registry: CriteriaRegistry) -> Record | None:
    lines = [line for p in pages for line in page_lines(p)]
    column = _score_column(lines)
    if column is None:
        return None
    rows = table_rows(lines, stop=("tong",))
    cset, matches = _best_set(rows, registry)
    if len(matches) < max(3, len(cset.indicators) // 2):
        return None
    fields: list[FieldProvenance] = []
    scores: dict[str, float | str | None] = {}
    for n, (ind_id, ratio) in matches.items():
        line = rows[n]
        nums = [w for w in line.words_in(*column) if NUM.match(w.text)]
        value: float | str | None = float(nums[0].text.replace(",", ".")) if nums else None
        conf = (ratio / 100) * (nums[0].confidence if nums else 0.5)
        scores[ind_id] = value
        fields.append(FieldProvenance(name=f"scores.{ind_id}", value=value, confidence=round(min(1.0, conf), 3),
                                      page=line.page, bbox=nums[0].box if nums else line.box,
                                      source="text_layer" if conf and nums and nums[0].confidence == 1 else "ocr"))
    total = None
    for line in lines:
        if line.key.startswith("tong") and "diem" in line.key:
            nums = [w for w in line.words_in(*column) if NUM.match(w.text)]
            if nums:
                total = float(nums[0].text.replace(",", "."))
                fields.append(FieldProvenance(name="total_declared", value=total, confidence=nums[0].confidence,
                                              page=line.page, bbox=nums[0].box, source="ocr"))
            break
    name = _label_value(lines, ("ho va ten", "ho ten"))
    unit = _label_value(lines, ("don vi", "co quan", "noi cong tac"))
    birth = _label_value(lines, ("nam sinh", "ngay sinh"))
    year_match = next((YEAR.search(line.key) for line in lines if YEAR.search(line.key)), None)
    if name:
        fields.append(FieldProvenance(name="subject.full_name", value=name[0], confidence=name[1].confidence(),
                                      page=name[1].page, bbox=name[1].box, source="ocr"))
    birth_year = None
    if birth:
        m = re.search(r"(19|20)\d{2}", birth[0])
        birth_year = int(m.group(0)) if m else None
    year = int(year_match.group(1)) if year_match else cset.years.last
    if not year_match:
        fields.append(FieldProvenance(name="year", value=year, confidence=0.0, source="ocr"))
    return Record(
        form="cdht-self-assessment" if cset.kind == "cdht" else "dvht-self-assessment",
        criteria_set=cset.id, year=year,
        subject={"full_name": name[0] if name else "", "birth_year": birth_year, "unit": unit[0] if unit else None,
                 "group": cset.audience_groups[0] if len(cset.audience_groups) == 1 else None},
        scores=scores, evidence={k: "(theo bản tự đánh giá)" for k, v in scores.items() if v},
        total_declared=total, fields=fields, extra={"layout": "foreign"},
    )
