"""Plain data passed between extraction stages (dataclasses inside; pydantic only at boundaries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Word:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in page pixels (at the page's dpi)
    confidence: float  # 0..1; 1.0 for a digital text layer


@dataclass
class PageText:
    """Text of one page, from the PDF text layer or from OCR, in reading order."""

    words: list[Word]
    width: float
    height: float
    dpi: float
    source: Literal["text_layer", "ocr"]
    page_number: int  # 1-based within its file
    file: str
    tables: list[list[list[str | None]]] = field(default_factory=list)  # pdfplumber-style rows, when known

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass(frozen=True)
class PageError:
    file: str
    page: int | None
    code: str
    message: str  # Vietnamese
