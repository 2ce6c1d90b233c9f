"""Pydantic models of a criteria-set file after composition."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROVISIONAL_NOTE = "Nội dung tạm thời, chưa đối chiếu với văn bản chính thức"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    document: str = Field(description="Document number, e.g. 'Quyết định 324/QĐ-KHVN'")
    issuer: str
    date: dt.date
    appendix: str | None = None
    url: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                               description="SHA-256 of the official file the wording was imported from")


class Indicator(_Strict):
    id: str
    number: int = Field(ge=1)
    title: str
    max_points: float = Field(gt=0)
    step: float = Field(gt=0)
    min_points: float | None = Field(default=None, ge=0, description="Minimum for recognition")
    evidence_required: bool = True
    evidence_hint: str | None = None
    verified: bool = False
    origin: str = Field(description="Id of the set whose text this indicator carries")

    @model_validator(mode="after")
    def _consistent(self) -> Indicator:
        if self.min_points is not None and self.min_points > self.max_points:
            raise ValueError(f"min_points {self.min_points} > max_points {self.max_points}")
        if Decimal(str(self.max_points)) % Decimal(str(self.step)) != 0:
            raise ValueError(f"max_points {self.max_points} is not a multiple of step {self.step}")
        return self

    @property
    def display_title(self) -> str:
        return self.title if self.verified else f"{self.title} ({PROVISIONAL_NOTE.lower()})"


class Criterion(_Strict):
    id: str
    number: int = Field(ge=1)
    title: str
    indicators: list[Indicator] = Field(min_length=1)

    @property
    def max_points(self) -> float:
        return float(sum(Decimal(str(i.max_points)) for i in self.indicators))


class RecognitionRule(_Strict):
    """CDHT-style: recognised iff total ≥ min_total and each indicator ≥ its min_points."""

    type: Literal["recognition"]
    min_total: float
    min_criterion_ratio: float | None = Field(
        default=None, ge=0, le=1, description="Each criterion must reach this share of its maximum"
    )
    require_registration_before_assessment: bool = False


class RankingBand(_Strict):
    code: str
    label: str
    min_total: float


class RankingRule(_Strict):
    """ĐVHT ranking: the first band whose min_total the total reaches, else the fallback."""

    type: Literal["ranking"]
    bands: list[RankingBand] = Field(min_length=1)
    fallback: RankingBand

    @model_validator(mode="after")
    def _descending(self) -> RankingRule:
        mins = [b.min_total for b in self.bands]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("bands must be listed from the highest min_total down, without ties")
        return self


OutcomeRule = Annotated[RecognitionRule | RankingRule, Field(discriminator="type")]


class YearRange(_Strict):
    first: int = Field(alias="from")
    last: int = Field(alias="to")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ImportedFrom(_Strict):
    """The set's wording and points were read from an official file (`formsvc criteria import`), not typed."""

    file_name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reader: Literal["docx", "pdf", "ocr"]
    imported_at: dt.datetime
    base: str | None = Field(default=None, description="id@version of the set it was compared with")
    accepted_by: str | None = None


class CriteriaSet(_Strict):
    id: str
    title: str
    kind: Literal["cdht", "dvht"]
    version: int = Field(ge=1)
    source: Source
    verified: bool
    note: str | None = None
    extends: str | None = None
    audience_groups: list[str] = Field(default_factory=list, description="Empty: any group")
    years: YearRange
    total_max: float
    criteria: list[Criterion] = Field(min_length=1)
    outcome: OutcomeRule
    imported_from: ImportedFrom | None = None
    file: str = Field(description="File the set was loaded from")

    @model_validator(mode="after")
    def _consistent(self) -> CriteriaSet:
        ids = [i.id for i in self.indicators]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate indicator ids: {sorted(dupes)}")
        numbers = [i.number for i in self.indicators]
        if len(set(numbers)) != len(numbers):
            raise ValueError("indicator numbers must be unique across the set")
        total = sum(Decimal(str(i.max_points)) for i in self.indicators)
        if total != Decimal(str(self.total_max)):
            raise ValueError(f"indicator max_points add up to {total}, not total_max {self.total_max}")
        if self.years.first > self.years.last:
            raise ValueError("years.from is after years.to")
        if self.kind == "cdht" and self.outcome.type != "recognition":
            raise ValueError("a cdht set needs a recognition outcome rule")
        return self

    @property
    def indicators(self) -> list[Indicator]:
        return [ind for c in self.criteria for ind in c.indicators]

    def indicator(self, indicator_id: str) -> Indicator | None:
        return next((i for i in self.indicators if i.id == indicator_id), None)

    def criterion_of(self, indicator_id: str) -> Criterion | None:
        return next((c for c in self.criteria if any(i.id == indicator_id for i in c.indicators)), None)

    @property
    def fully_verified(self) -> bool:
        return self.verified and all(i.verified for i in self.indicators)
