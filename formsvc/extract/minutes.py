"""Committee minutes typed freely (not on formsvc's form): meeting facts, candidate table, votes, signers."""

from __future__ import annotations

import datetime as dt
import re

from formsvc.criteria import CriteriaRegistry
from formsvc.extract.lines import Line, page_lines, table_rows
from formsvc.extract.readers import document_reader
from formsvc.extract.table_read import CellRead, PageReading, TableRead
from formsvc.extract.types import PageText
from formsvc.records import FieldProvenance, Record
from formsvc.records.minutes import Candidate, MinutesData
from formsvc.text import fold, name_letters, nfc

NUM = re.compile(r"^\d{1,4}(?:[.,]\d{1,2})?$")
TIME_DATE = re.compile(r"(\d{1,2}) gio (\d{2})?.*?ngay (\d{1,2}) thang (\d{1,2}) nam (\d{4})")
# formsvc's own minutes print "14 giờ 00, ngày 20/11/2024".
TIME_DATE_SHORT = re.compile(r"(\d{1,2}) gio (\d{2})?\W*ngay (\d{1,2})/(\d{1,2})/(\d{4})")
COLUMNS = {"full_name": ("ho va ten", "ho ten"), "birth_year": ("nam sinh",),
           "self_total": ("tu danh gia", "tu cham", "diem tu"), "agreed_total": ("thong nhat",),
           "proposed": ("de nghi", "cong nhan")}
RATIO = re.compile(r"(\d+)\s*/\s*(\d+)")
END = re.compile(r"ket thuc (?:luc|vao luc)?\s*(\d{1,2}) gio (\d{2})?")
YES = ("co", "x", "dong y", "de nghi", "dat")


def _after(line: Line, label_words: int) -> str:
    return nfc(" ".join(w.text for w in line.words[label_words:]).lstrip(":").strip(" .:"))


def _label(lines: list[Line], label: str) -> tuple[str, Line] | None:
    for line in lines:
        if line.key.startswith(label):
            return _after(line, len(label.split())), line
    return None


def _candidates(lines: list[Line]) -> list[Candidate]:
    out = []
    for line in lines:
        words = line.words
        if len(words) < 4 or not words[0].text.rstrip(".").isdigit():
            continue
        nums = [i for i, w in enumerate(words) if NUM.match(w.text) and i > 0]
        if len(nums) < 2:
            continue
        # A wrapped name continues after the numbers: its words are the non-numeric ones before "Có"/"Không".
        name_words = [w.text for w in words[1:nums[0]]] + [w.text for w in words[nums[-1] + 1:]
                                                           if fold(w.text) not in ("co", "khong", "x")]
        if not name_words or any(ch.isdigit() for ch in "".join(name_words)):
            continue
        values = [float(words[i].text.replace(",", ".")) for i in nums]
        birth = int(values[0]) if values and 1900 <= values[0] <= 2100 else None
        totals = [v for v in values if v <= 100]
        rest = [fold(w.text) for w in words[nums[-1] + 1:]]
        proposed = True if any(r in YES for r in rest) else False if "khong" in rest else None
        out.append(Candidate(full_name=nfc(" ".join(name_words)), birth_year=birth,
                             self_total=totals[0] if totals else None,
                             agreed_total=totals[1] if len(totals) > 1 else None, proposed=proposed))
    return out


@document_reader("minutes", "biên bản")
def read_minutes_document(pages: list[PageText], registry: CriteriaRegistry) -> Record | None:
    return read_minutes(pages)


def read_minutes(pages: list[PageText]) -> Record | None:
    lines = [line for p in pages for line in page_lines(p)]
    text = fold(" ".join(line.text for line in lines))
    if "bien ban" not in text:
        return None
    data = MinutesData()
    fields: list[FieldProvenance] = []
    m = TIME_DATE.search(text) or TIME_DATE_SHORT.search(text)
    if m:
        data.meeting_start = dt.datetime(int(m.group(5)), int(m.group(4)), int(m.group(3)), int(m.group(1)),
                                         int(m.group(2) or 0))
    e = END.search(text)
    if e and data.meeting_start:
        data.meeting_end = data.meeting_start.replace(hour=int(e.group(1)), minute=int(e.group(2) or 0))
    for attr, label in (("place", "dia diem"), ("chair", "chu tri"), ("secretary", "thu ky")):
        found = _label(lines, label)
        if found and found[0]:
            setattr(data, attr, found[0])
            fields.append(FieldProvenance(name=f"minutes.{attr}", value=found[0], confidence=found[1].confidence(),
                                          page=found[1].page, bbox=found[1].box, source="ocr"))
    for line in lines:
        k = line.key
        r = RATIO.search(k)
        if r and ("co mat" in k or "thanh phan" in k) and data.members_present is None:
            data.members_present, data.members_total = int(r.group(1)), int(r.group(2))
        elif r and "bieu quyet" in k:
            data.votes_for, data.votes_total = int(r.group(1)), int(r.group(2))
    tables = [t for p in pages if isinstance(p, PageReading) for t in p.table_reads]
    if any(p.source == "ocr" for p in pages):
        # A scan: the candidate table is read cell by cell (the full-page OCR misses lone numbers in cells).
        data.candidates, candidate_fields = _scanned_candidates(tables)
        fields.extend(candidate_fields)
    else:
        data.candidates = _candidates(table_rows(lines, stop=("ket qua", "bieu quyet", "cuoc hop")))
    # A signer has signed when their name stands under the signature titles (the upper-case "THƯ KÝ … CHỦ TRÌ"
    # line at the end), not merely in the "Chủ trì: …" line at the top.
    titles = [i for i, line in enumerate(lines) if line.text.isupper() and ("chu tri" in line.key or
                                                                            "thu ky" in line.key)]
    below = " ".join(line.key for line in lines[titles[-1] + 1:]) if titles else ""
    data.chair_signed = bool(data.chair and fold(data.chair) in below)
    data.secretary_signed = bool(data.secretary and fold(data.secretary) in below)
    # The issuing body stands left of the national title on the same line in formsvc's own header.
    unit = next((line.text.split("CỘNG HÒA")[0].strip() for line in lines[:6]
                 if line.text.isupper() and not line.text.startswith("CỘNG HÒA")), "")
    payload = next((p.payload for p in pages if isinstance(p, PageReading) and p.payload), None)
    year = (payload.year if payload and payload.year else None) or (
        data.meeting_start.year if data.meeting_start else dt.date.today().year)
    if not data.meeting_start:
        fields.append(FieldProvenance(name="minutes.meeting_start", value=None, confidence=0.0, source="ocr"))
    extra: dict[str, object] = {"minutes": data.model_dump(mode="json"), "layout": "foreign"}
    if payload:
        extra.update(layout="formsvc", doc=payload.doc, template_version=payload.template_version,
                     pages=payload.pages)
    return Record(form="cdht-minutes", criteria_set=(payload.criteria_set if payload else None) or "cdht-324-pl4",
                  year=year, subject={"full_name": nfc(unit) or "Không rõ đơn vị"}, fields=fields, extra=extra)


def _columns(table: TableRead) -> dict[str, int] | None:
    found = {name: table.column(*keys) for name, keys in COLUMNS.items()}
    if found["full_name"] is None or (found["self_total"] is None and found["agreed_total"] is None):
        return None
    return {k: v for k, v in found.items() if v is not None}


def _total(cell: CellRead | None) -> tuple[float | None, float]:
    if cell is None or cell.blank:
        return None, 0.97 if cell else 0.0
    value, conf = cell.number, cell.number_confidence
    if value is not None and not (0 <= value <= 100 and (value * 2).is_integer()):
        return value, min(conf, 0.3)  # not a total a committee can give: for a human to read
    return value, conf


def _scanned_candidates(tables: list[TableRead]) -> tuple[list[Candidate], list[FieldProvenance]]:
    """Candidates from the ruled table(s), each value with a confidence; a table continued on the next page
    without its header keeps the columns of the one before."""
    out: list[Candidate] = []
    fields: list[FieldProvenance] = []
    cols: dict[str, int] | None = None
    last_cols = 0
    for table in tables:
        found = _columns(table)
        start = 1 if found else 0
        if found is None and (cols is None or table.n_cols != last_cols or any(table.header)):
            continue
        cols, last_cols = found or cols, table.n_cols
        assert cols is not None
        for r in range(start, table.n_rows):
            name_cell = table.at(r, cols["full_name"])
            if name_cell is None or name_cell.row != r or name_cell.blank:
                continue
            name, dropped = name_letters(name_cell.text)
            if len(name.split()) < 2:
                continue  # not a person's name: a note or a stray line
            i = len(out)
            prefix = f"minutes.candidates.{i}"
            cand = Candidate(full_name=name)
            fields.append(FieldProvenance(name=f"{prefix}.full_name", value=name, page=table.page,
                                          confidence=round(name_cell.confidence * 0.9 ** dropped, 3),
                                          bbox=name_cell.box, source="ocr"))
            birth = table.at(r, cols["birth_year"]) if "birth_year" in cols else None
            if birth is not None and not birth.blank:
                year = birth.number if birth.number and 1900 <= birth.number <= 2100 else None
                cand.birth_year = int(year) if year is not None else None
                fields.append(FieldProvenance(name=f"{prefix}.birth_year", value=cand.birth_year, page=table.page,
                                              confidence=birth.number_confidence if year else 0.0, bbox=birth.box,
                                              source=birth.number_source))
            for attr in ("self_total", "agreed_total"):
                cell = table.at(r, cols[attr]) if attr in cols else None
                value, conf = _total(cell)
                setattr(cand, attr, value)
                fields.append(FieldProvenance(name=f"{prefix}.{attr}", value=value, confidence=round(conf, 3),
                                              page=table.page, bbox=cell.box if cell else None,
                                              source=cell.number_source if cell else "ocr"))
            said = table.at(r, cols["proposed"]) if "proposed" in cols else None
            if said is not None:
                key = fold(said.text)
                cand.proposed = False if "kh" in key else True if key in YES or key.startswith("c") else None
                sure = said.blank or (key in ("co", "khong") and said.confidence >= 0.6)
                fields.append(FieldProvenance(name=f"{prefix}.proposed", value=cand.proposed, page=table.page,
                                              confidence=0.9 if sure else 0.3, bbox=said.box, source="ocr"))
            out.append(cand)
    return out, fields
