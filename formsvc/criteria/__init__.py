"""Criteria sets: versioned data files with their legal source, never constants in code."""

from formsvc.criteria.groups import AudienceGroup, load_groups, resolve_group
from formsvc.criteria.loader import CriteriaRegistry, default_registry, load_registry
from formsvc.criteria.model import (
    CriteriaSet,
    Criterion,
    Indicator,
    OutcomeRule,
    RankingBand,
    RankingRule,
    RecognitionRule,
    Source,
)

__all__ = [
    "AudienceGroup",
    "CriteriaRegistry",
    "CriteriaSet",
    "Criterion",
    "Indicator",
    "OutcomeRule",
    "RankingBand",
    "RankingRule",
    "RecognitionRule",
    "Source",
    "default_registry",
    "load_groups",
    "load_registry",
    "resolve_group",
]
