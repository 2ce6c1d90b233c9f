"""Committee minutes typed freely (not on formsvc's form): meeting facts, candidate table, votes, signers."""

from __future__ import annotations

import datetime as dt
import re

from formsvc.extract.lines import Line, page_lines, table_rows
from formsvc.extract.types import PageText
from formsvc.records import FieldProvenance, Record
from formsvc.records.minutes import Candidate, MinutesData
from formsvc.text import fold, nfc

NUM = re.compile(r"^\d{1,4}(?:[.,]\d{1,2})?$")
TIME_DATE = re.compile(r"(\d{1,2}) gio (\d{2})?.*?ngay (\d{1,2}) thang (\d{1,2}) nam (\d{4})")
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


def read_minutes(pages: list[PageText]) -> Record | None:
    lines = [line for p in pages for line in page_lines(p)]
    text = fold(" ".join(line.text for line in lines))
    if "bien ban" not in text:
        return None
    data = MinutesData()
    fields: list[FieldProvenance] = []
    m = TIME_DATE.search(text)
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
    data.candidates = _candidates(table_rows(lines, stop=("ket qua", "bieu quyet", "cuoc hop")))
    # A signer has signed when their name stands under the signature titles (the upper-case "THƯ KÝ … CHỦ TRÌ"
    # line at the end), not merely in the "Chủ trì: …" line at the top.
    titles = [i for i, line in enumerate(lines) if line.text.isupper() and ("chu tri" in line.key or
                                                                            "thu ky" in line.key)]
    below = " ".join(line.key for line in lines[titles[-1] + 1:]) if titles else ""
    data.chair_signed = bool(data.chair and fold(data.chair) in below)
    data.secretary_signed = bool(data.secretary and fold(data.secretary) in below)
    unit = next((line.text for line in lines[:6] if line.text.isupper() and "CỘNG HÒA" not in line.text), "")
    year = data.meeting_start.year if data.meeting_start else dt.date.today().year
    if not data.meeting_start:
        fields.append(FieldProvenance(name="minutes.meeting_start", value=None, confidence=0.0, source="ocr"))
    return Record(form="cdht-minutes", criteria_set="cdht-324-pl4", year=year,
                  subject={"full_name": nfc(unit) or "Không rõ đơn vị"}, fields=fields,
                  extra={"minutes": data.model_dump(mode="json"), "layout": "foreign"})
