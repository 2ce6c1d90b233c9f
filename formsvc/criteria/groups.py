"""Audience groups: codes, Vietnamese labels and accepted spellings, from groups.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from formsvc.errors import InputError
from formsvc.text import fold

GROUPS_FILE = Path(__file__).with_name("groups.yaml")


@dataclass(frozen=True)
class AudienceGroup:
    code: str
    number: int
    label: str
    short_label: str
    aliases: tuple[str, ...]


@lru_cache(maxsize=1)
def load_groups() -> tuple[AudienceGroup, ...]:
    data = yaml.safe_load(GROUPS_FILE.read_text(encoding="utf-8"))
    return tuple(
        AudienceGroup(code=g["code"], number=int(g["number"]), label=g["label"],
                      short_label=g.get("short_label", g["label"]),
                      aliases=tuple(fold(a) for a in g.get("aliases", ())))
        for g in data["groups"]
    )


def resolve_group(value: str | int | None) -> AudienceGroup | None:
    """Map a code, number, label or alias (any accents/case) to its group; None when unknown."""
    if value is None:
        return None
    key = fold(str(value))
    if not key:
        return None
    for group in load_groups():
        if key in (group.code, str(group.number), fold(group.label), fold(group.short_label), *group.aliases):
            return group
    return None


def allowed_groups_text() -> str:
    """The accepted groups, for error messages: 'official (Cán bộ, …), farmer (…)'."""
    return "; ".join(f"{g.code} hoặc {g.number} ({g.short_label})" for g in load_groups())


def require_group(value: str | int | None) -> AudienceGroup | None:
    """Like resolve_group, but a value given and not recognised is an InputError listing the groups.

    Printing the raw key ('Đối tượng: officials') would put a form in circulation that no reader
    and no criteria set can place; refusing it names what is accepted instead.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    group = resolve_group(value)
    if group is None:
        raise InputError(
            f"Đối tượng «{value}» không thuộc nhóm đối tượng nào. Các nhóm hợp lệ: {allowed_groups_text()}.",
            code="group_unknown",
            hint="Ghi mã, số thứ tự hoặc tên nhóm đối tượng như trong danh sách trên.",
            detail={"group": str(value), "allowed": [g.code for g in load_groups()]},
        )
    return group
