"""Pydantic models of a criteria-set file after composition."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

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


class Reference(_Strict):
    """A further piece of evidence for (part of) a set: what it is, where it is, what it supports."""

    document: str
    issuer: str | None = None
    date: dt.date | None = None
    url: str | None = None
    supports: str | None = Field(default=None, description="Which part of the set this reference backs")


class SubItem(_Strict):
    """A line printed under an indicator (e.g. the 8 qualities listed under TT 22/2020, Điều 5, 3a)."""

    text: str
    verified: bool = False


class Measure(_Strict):
    """How a 'met / not met' indicator is decided from a percentage: met iff measured ≥ threshold.

    `thresholds` are per recognition level (1, 2); `computed` names a value the service computes from
    stored records instead of letting anyone type it (see formsvc.reports.dvht_measures).
    """

    unit: Literal["percent"] = "percent"
    of: str = Field(description="What is counted, in Vietnamese, e.g. 'thành viên đạt danh hiệu CDHT'")
    thresholds: dict[int, float] = Field(min_length=1)
    computed: Literal["cdht_members_share", "cdht_learners_share"] | None = None

    @model_validator(mode="after")
    def _levels(self) -> Measure:
        for level, value in self.thresholds.items():
            if level < 1 or not 0 <= value <= 100:
                raise ValueError(f"threshold {level}: {value} must be a level >= 1 and a percentage 0..100")
        return self


class Indicator(_Strict):
    id: str
    number: int = Field(ge=1)
    label: str | None = Field(default=None, description="Numbering as printed in the source, e.g. 'a'")
    title: str
    kind: Literal["points", "met"] = Field(
        default="points", description="points: scored 0..max_points; met: 1 met / 0 not met, or a measure")
    max_points: float = Field(gt=0)
    step: float = Field(gt=0)
    min_points: float | None = Field(default=None, ge=0, description="Minimum for recognition")
    evidence_required: bool = True
    evidence_hint: str | None = None
    verified: bool = False
    origin: str = Field(description="Id of the set whose text this indicator carries")
    source: str | None = Field(default=None, description="Where exactly this indicator is written")
    sub_items: list[SubItem] = Field(default_factory=list)
    measure: Measure | None = None
    levels: list[int] | None = Field(default=None, description="Recognition levels it applies to; None: all")
    only_for: Literal["education_institution"] | None = Field(
        default=None, description="Applies only to units of this kind (TT 24/2023: learners in schools)")

    @model_validator(mode="before")
    @classmethod
    def _met_defaults(cls, data: Any) -> Any:
        # A met/not-met indicator is scored 1 or 0, or carries its measured percentage (0..100).
        if isinstance(data, dict) and data.get("kind") == "met":
            data = dict(data)
            percent = data.get("measure") is not None
            data.setdefault("max_points", 100 if percent else 1)
            data.setdefault("step", 0.1 if percent else 1)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Indicator:
        if self.kind == "met" and self.min_points is not None:
            raise ValueError("a met/not-met indicator has no min_points")
        if self.measure is not None and self.kind != "met":
            raise ValueError("only a kind: met indicator can have a measure")
        if self.min_points is not None and self.min_points > self.max_points:
            raise ValueError(f"min_points {self.min_points} > max_points {self.max_points}")
        if Decimal(str(self.max_points)) % Decimal(str(self.step)) != 0:
            raise ValueError(f"max_points {self.max_points} is not a multiple of step {self.step}")
        return self

    @property
    def display_title(self) -> str:
        return self.title if self.verified else f"{self.title} ({PROVISIONAL_NOTE.lower()})"

    @property
    def fully_verified(self) -> bool:
        return self.verified and all(s.verified for s in self.sub_items)


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
    require_registration_before_assessment: bool = False
    source: Reference | None = Field(default=None, description="Where the threshold is written")


class RankingBand(_Strict):
    code: str
    label: str
    min_total: float


class RankingRule(_Strict):
    """ĐVHT ranking: the first band whose min_total the total reaches, else the fallback."""

    type: Literal["ranking"]
    bands: list[RankingBand] = Field(min_length=1)
    fallback: RankingBand
    source: Reference | None = Field(default=None, description="Where the bands are written (may differ "
                                                               "from the criteria's own source)")

    @model_validator(mode="after")
    def _descending(self) -> RankingRule:
        mins = [b.min_total for b in self.bands]
        if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
            raise ValueError("bands must be listed from the highest min_total down, without ties")
        return self


class RecognitionLevel(_Strict):
    level: int = Field(ge=1)
    label: str = Field(description="e.g. 'Mức độ 1'")
    requires_level: int | None = Field(default=None, description="Level the unit must already hold")
    min_years_at_required: int = Field(default=0, ge=0, description="For how long (whole years)")


class DayMonth(_Strict):
    day: int = Field(ge=1, le=31)
    month: int = Field(ge=1, le=12)


class LevelsRule(_Strict):
    """TT 24/2023-style recognition: every applicable 'met / not met' indicator met -> "đạt mức độ N".

    The highest level whose indicators are all met (and whose prerequisite is held long enough) is the
    outcome. Dates are data, not code: the window of the figures, the dossier deadline (in the following
    year) and how long a recognition holds.
    """

    type: Literal["levels"]
    scope: Literal["huyen", "tinh"] = Field(description="Recognised at cấp huyện or cấp tỉnh")
    levels: list[RecognitionLevel] = Field(min_length=1)
    validity_years: int = Field(ge=1)
    data_window_start: DayMonth
    data_window_end: DayMonth
    dossier_deadline: DayMonth = Field(description="Day in the year after the assessed year")
    source: Reference | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LevelsRule:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("levels must be numbered 1, 2, … in order")
        for lv in self.levels:
            if lv.requires_level is not None and lv.requires_level >= lv.level:
                raise ValueError(f"level {lv.level} cannot require level {lv.requires_level}")
        return self

    def level(self, number: int) -> RecognitionLevel | None:
        return next((lv for lv in self.levels if lv.level == number), None)


OutcomeRule = Annotated[RecognitionRule | RankingRule | LevelsRule, Field(discriminator="type")]


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
    references: list[Reference] = Field(default_factory=list, description="Further evidence for the set")
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
        if self.outcome.type == "levels":
            # Recognition by levels counts indicators met, not points.
            if any(i.kind != "met" for i in self.indicators):
                raise ValueError("a levels outcome needs every indicator to be kind: met")
            if Decimal(str(self.total_max)) != len(self.indicators):
                raise ValueError(f"total_max of a levels set is its number of indicators "
                                 f"({len(self.indicators)}), not {self.total_max}")
            known = {lv.level for lv in self.outcome.levels}
            for ind in self.indicators:
                used = set(ind.levels or ()) | set(ind.measure.thresholds if ind.measure else ())
                if used - known:
                    raise ValueError(f"indicator {ind.id} names levels {sorted(used - known)} the rule lacks")
        else:
            if any(i.kind != "points" for i in self.indicators):
                raise ValueError("met/not-met indicators need a levels outcome")
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
        return self.verified and all(i.fully_verified for i in self.indicators)

    @property
    def sole_group(self) -> str | None:
        """The audience group whoever fills in this set's form is of, when the set is for one group only."""
        return self.audience_groups[0] if len(self.audience_groups) == 1 else None
