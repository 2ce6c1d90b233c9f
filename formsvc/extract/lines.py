"""Group words (text layer or OCR) into lines and columns: the geometry foreign layouts are read from."""

from __future__ import annotations

from dataclasses import dataclass

from formsvc.extract.types import PageText, Word
from formsvc.text import fold


@dataclass
class Line:
    words: list[Word]
    page: int

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def key(self) -> str:
        return fold(self.text)

    @property
    def top(self) -> float:
        return min(w.box[1] for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w.box[3] for w in self.words)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (min(w.box[0] for w in self.words), self.top, max(w.box[2] for w in self.words), self.bottom)

    def confidence(self) -> float:
        return min((w.confidence for w in self.words), default=0.0)

    def words_in(self, x0: float, x1: float) -> list[Word]:
        return [w for w in self.words if x0 <= (w.box[0] + w.box[2]) / 2 <= x1]


def page_lines(page: PageText) -> list[Line]:
    """Words whose vertical centres are within half a word height of each other form one line, left to right.

    Table rows come out as lines too: the cells of a row share a baseline band.
    """
    words = sorted(page.words, key=lambda w: ((w.box[1] + w.box[3]) / 2, w.box[0]))
    lines: list[list[Word]] = []
    for w in words:
        cy = (w.box[1] + w.box[3]) / 2
        h = w.box[3] - w.box[1]
        if lines:
            last = lines[-1]
            ly = sum((x.box[1] + x.box[3]) / 2 for x in last) / len(last)
            if abs(cy - ly) <= max(h, 1) * 0.5:
                last.append(w)
                continue
        lines.append([w])
    return [Line(sorted(ws, key=lambda w: w.box[0]), page.page_number) for ws in lines]


def table_rows(lines: list[Line], stop: tuple[str, ...] = ()) -> list[Line]:
    """Rows of a numbered table: a row starts at a line whose first word is its number (1, 2, …); the following
    lines without a number are the same row's wrapped cells. Lines starting with a `stop` key end the table."""
    rows: list[Line] = []
    current: Line | None = None
    for line in lines:
        first = line.words[0].text.rstrip(".")
        if any(line.key.startswith(s) for s in stop):
            if current:
                rows.append(current)
            current = None
            continue
        if first.isdigit() and len(first) <= 3:
            if current:
                rows.append(current)
            current = Line(list(line.words), line.page)
        elif current is not None and line.top - current.bottom < (line.bottom - line.top) * 1.5:
            current = Line(current.words + line.words, line.page)
        elif current is not None:
            rows.append(current)
            current = None
    if current:
        rows.append(current)
    return rows
