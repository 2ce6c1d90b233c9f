"""Committee minutes (biên bản họp xét) data: what the minutes form prints and what a reader extracts.

Stored in `Record.extra["minutes"]` of a record whose `form` is `cdht-minutes` (subject = the unit).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: str
    subject_id: str | None = None
    birth_year: int | None = None
    self_total: float | None = Field(default=None, description="Self-assessed total")
    agreed_total: float | None = Field(default=None, description="Total agreed by the committee")
    proposed: bool | None = Field(default=None, description="Proposed for recognition")


class MinutesData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    meeting_start: dt.datetime | None = None
    meeting_end: dt.datetime | None = None
    place: str | None = None
    chair: str | None = None
    secretary: str | None = None
    members_present: int | None = Field(default=None, ge=0)
    members_total: int | None = Field(default=None, ge=0)
    candidates: list[Candidate] = Field(default_factory=list)
    votes_for: int | None = Field(default=None, ge=0)
    votes_total: int | None = Field(default=None, ge=0)
    chair_signed: bool | None = None
    secretary_signed: bool | None = None
