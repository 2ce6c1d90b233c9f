"""Audience groups: codes, Vietnamese labels and accepted spellings, from groups.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

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
