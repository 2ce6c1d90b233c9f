"""Where each machine-read field sits on a printed form page (the contract render -> extract).

The renderer computes these from its own rendered PDF (never hand-typed coordinates), so the
templates and the extractor cannot drift apart. Boxes are in millimetres from the page's top-left
corner, in the page's upright orientation (see formsvc.layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from formsvc.layout import Box

ZoneKind = Literal["text", "score", "tick", "signature"]


@dataclass(frozen=True)
class Zone:
    name: str  # record path: subject.full_name, year, scores.ct3, evidence.ct3, total_declared, signature.self
    kind: ZoneKind
    page: int  # 1-based
    box: Box


@dataclass(frozen=True)
class FormZones:
    form: str
    template_version: int
    criteria_set: str | None
    pages: int
    zones: list[Zone] = field(default_factory=list)

    def on_page(self, page: int) -> list[Zone]:
        return [z for z in self.zones if z.page == page]
