"""What changes between two versions of a criteria set: wording, points and structure, row by row.

Criteria are paired by number, indicators by their number across the set (the numbering forms print and records
keep). Wording changes are also given word by word so a page can highlight them.
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass, field
from typing import Literal

from formsvc.criteria.model import CriteriaSet, Criterion, Indicator

Status = Literal["same", "changed", "added", "removed"]
STATUS_MARK = {"same": " ", "changed": "~", "added": "+", "removed": "-"}
STATUS_LABEL = {"same": "giữ nguyên", "changed": "thay đổi", "added": "thêm mới", "removed": "bỏ"}


@dataclass(frozen=True)
class Segment:
    op: Literal["same", "del", "ins"]
    text: str


@dataclass(frozen=True)
class DiffRow:
    level: Literal["criterion", "indicator"]
    number: int
    old_title: str | None
    new_title: str | None
    old_points: float | None
    new_points: float | None
    status: Status
    old_words: list[Segment] = field(default_factory=list)
    new_words: list[Segment] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"Tiêu chí {self.number}" if self.level == "criterion" else f"Chỉ tiêu {self.number}"

    @property
    def wording_changed(self) -> bool:
        return None not in (self.old_title, self.new_title) and self.old_title != self.new_title

    @property
    def points_changed(self) -> bool:
        return None not in (self.old_points, self.new_points) and self.old_points != self.new_points


@dataclass
class SetDiff:
    old_ref: str
    new_ref: str
    rows: list[DiffRow]
    structure: list[str]  # Vietnamese sentences: counts, splits, moved indicators

    @property
    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in STATUS_MARK}
        for r in self.rows:
            out[r.status] += 1
        return out

    @property
    def unchanged(self) -> bool:
        return all(r.status == "same" for r in self.rows) and not self.structure[2:]


def word_diff(old: str, new: str) -> tuple[list[Segment], list[Segment]]:
    a, b = old.split(), new.split()
    left: list[Segment] = []
    right: list[Segment] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(Segment("same", " ".join(a[i1:i2])))
            right.append(Segment("same", " ".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(Segment("del", " ".join(a[i1:i2])))
        if j2 > j1:
            right.append(Segment("ins", " ".join(b[j1:j2])))
    return left, right


def _row(level: Literal["criterion", "indicator"], number: int, old: Criterion | Indicator | None,
         new: Criterion | Indicator | None) -> DiffRow:
    old_title, new_title = (old.title if old else None), (new.title if new else None)
    old_points, new_points = (old.max_points if old else None), (new.max_points if new else None)
    status: Status = ("added" if old is None else "removed" if new is None
                      else "same" if (old_title, old_points) == (new_title, new_points) else "changed")
    old_words, new_words = word_diff(old_title or "", new_title or "") if old and new else ([], [])
    return DiffRow(level, number, old_title, new_title, old_points, new_points, status, old_words, new_words)


def _split(cset: CriteriaSet) -> str:
    return " / ".join(str(len(c.indicators)) for c in cset.criteria)


def diff_sets(old: CriteriaSet, new: CriteriaSet) -> SetDiff:
    old_by_num = {i.number: i for i in old.indicators}
    new_nums = {i.number for i in new.indicators}
    structure = [
        f"Bản hiện hành: {len(old.criteria)} tiêu chí, {len(old.indicators)} chỉ tiêu (chia {_split(old)}), "
        f"tổng {old.total_max:g} điểm.",
        f"Bản từ tệp: {len(new.criteria)} tiêu chí, {len(new.indicators)} chỉ tiêu (chia {_split(new)}), "
        f"tổng {new.total_max:g} điểm.",
    ]
    rows: list[DiffRow] = []
    for k in range(max(len(old.criteria), len(new.criteria))):
        oc = old.criteria[k] if k < len(old.criteria) else None
        nc = new.criteria[k] if k < len(new.criteria) else None
        rows.append(_row("criterion", k + 1, oc, nc))
        numbers = sorted({i.number for i in (nc.indicators if nc else [])}
                         | {i.number for i in (oc.indicators if oc else []) if i.number not in new_nums})
        for n in numbers:
            new_ind = next((i for i in nc.indicators if i.number == n), None) if nc else None
            rows.append(_row("indicator", n, old_by_num.get(n), new_ind))
            was = old.criterion_of(old_by_num[n].id) if n in old_by_num and new_ind else None
            if was is not None and was.number != k + 1:
                structure.append(f"Chỉ tiêu {n} chuyển từ tiêu chí {was.number} sang tiêu chí {k + 1}.")
    if old.total_max != new.total_max:
        structure.append(f"Tổng điểm tối đa đổi từ {old.total_max:g} thành {new.total_max:g}.")
    return SetDiff(f"{old.id}@{old.version}", f"{new.id}@{new.version}", rows, structure)


def _pts(value: float | None) -> str:
    return "" if value is None else f"[{value:g}đ]"


def side_by_side(diff: SetDiff, width: int = 120) -> str:
    """Plain text, two columns (current | from the file), one mark per row: ~ changed, + added, - removed."""
    col = max(30, (width - 4) // 2)
    lines = [f"{'Hiện hành ' + diff.old_ref:<{col}} | {'Từ tệp chính thức ' + diff.new_ref}", "-" * (2 * col + 3)]
    for r in diff.rows:
        indent = "" if r.level == "criterion" else "  "
        left = f"{indent}{r.label}. {r.old_title} {_pts(r.old_points)}" if r.old_title is not None else ""
        right = f"{indent}{r.label}. {r.new_title} {_pts(r.new_points)}" if r.new_title is not None else ""
        a = textwrap.wrap(left, col - 3) or [""]
        b = textwrap.wrap(right, col - 2) or [""]
        for n in range(max(len(a), len(b))):
            mark = STATUS_MARK[r.status] if n == 0 else " "
            lines.append(f"{(a[n] if n < len(a) else ''):<{col - 2}}{mark} | {b[n] if n < len(b) else ''}")
    counts = diff.counts
    lines += ["-" * (2 * col + 3), *diff.structure,
              f"Giữ nguyên {counts['same']}, thay đổi {counts['changed']}, thêm {counts['added']}, "
              f"bỏ {counts['removed']} dòng (~ thay đổi, + thêm, - bỏ)."]
    return "\n".join(lines)
