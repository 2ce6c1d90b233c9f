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


_FIELD_LABELS = {
    "total_declared": "Tổng điểm tự chấm",
    "year": "Năm đánh giá",
    "assessment_date": "Ngày tự đánh giá",
    "registered_on": "Ngày đăng ký",
    "subject.full_name": "Họ và tên",
    "subject.birth_year": "Năm sinh",
    "subject.unit": "Đơn vị",
    "subject.group": "Nhóm đối tượng",
    "subject.id": "Mã người/đơn vị",
}
_PREFIX_LABELS = {"scores": "Điểm", "evidence": "Minh chứng", "extra": "Thông tin"}


def field_label(name: str) -> str:
    """A record path as users know it: 'scores.ct3' -> 'Điểm chỉ tiêu 3', 'subject.full_name' -> 'Họ và tên'."""
    if name in _FIELD_LABELS:
        return _FIELD_LABELS[name]
    head, _, rest = name.partition(".")
    if head in ("scores", "evidence") and rest.startswith("ct") and rest[2:].isdigit():
        return f"{_PREFIX_LABELS[head]} chỉ tiêu {int(rest[2:])}"
    if head == "extra" and rest.startswith("minutes."):
        return "Biên bản: " + rest.removeprefix("minutes.").replace("_", " ")
    return f"{_PREFIX_LABELS.get(head, head)} {rest}".strip()
