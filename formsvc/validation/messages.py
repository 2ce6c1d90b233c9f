"""Vietnamese wording of validation reasons, one function per stable code family."""

from __future__ import annotations

from decimal import Decimal

from formsvc.criteria.model import Indicator

_TITLE_MAX = 70


def num(value: float | Decimal) -> str:
    """Vietnamese number style: decimal comma, no trailing zeros (7.5 -> '7,5', 80.0 -> '80')."""
    d = Decimal(str(value)).normalize()
    text = format(d, "f")
    return text.replace(".", ",")


def indicator_label(ind: Indicator) -> str:
    title = ind.title if len(ind.title) <= _TITLE_MAX else ind.title[: _TITLE_MAX - 1] + "…"
    return f"Chỉ tiêu {ind.number} ({title})"
