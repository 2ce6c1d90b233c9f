"""Vietnamese wording of validation reasons, one function per stable code family."""

from __future__ import annotations

from decimal import Decimal

from formsvc.criteria.model import CriteriaSet, Indicator

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
_MINUTES_LABELS = {
    "meeting_start": "thời gian họp", "meeting_end": "giờ kết thúc", "place": "địa điểm", "chair": "chủ trì",
    "secretary": "thư ký", "members_present": "số thành viên có mặt", "members_total": "tổng số thành viên",
    "votes_for": "số phiếu tán thành", "votes_total": "tổng số phiếu", "candidates": "danh sách đề nghị",
    "full_name": "họ và tên", "birth_year": "năm sinh", "self_total": "tổng điểm tự đánh giá",
    "agreed_total": "tổng điểm hội đồng thống nhất", "proposed": "đề nghị công nhận",
}


def _minutes_label(path: str) -> str:
    """'candidates.2.agreed_total' -> 'Biên bản, người thứ 3: tổng điểm hội đồng thống nhất'."""
    parts = path.split(".")
    if len(parts) == 3 and parts[0] == "candidates" and parts[1].isdigit():
        return f"Biên bản, người thứ {int(parts[1]) + 1}: {_MINUTES_LABELS.get(parts[2], parts[2])}"
    return "Biên bản: " + _MINUTES_LABELS.get(path, path.replace("_", " "))


def field_label(name: str) -> str:
    """A record path as users know it: 'scores.ct3' -> 'Điểm chỉ tiêu 3', 'subject.full_name' -> 'Họ và tên'."""
    if name in _FIELD_LABELS:
        return _FIELD_LABELS[name]
    head, _, rest = name.partition(".")
    if head in ("scores", "evidence") and rest.startswith("ct") and rest[2:].isdigit():
        return f"{_PREFIX_LABELS[head]} chỉ tiêu {int(rest[2:])}"
    if head == "minutes":
        return _minutes_label(rest)
    if head == "extra" and rest.startswith("minutes."):
        return _minutes_label(rest.removeprefix("minutes."))
    return f"{_PREFIX_LABELS.get(head, head)} {rest}".strip()


# Labels of a record's fields on review screens (the web review page and the review queue).
FIXED_LABELS = {"subject.full_name": "Họ và tên", "subject.birth_year": "Năm sinh", "subject.id": "Mã người",
                "subject.unit": "Đơn vị công tác", "subject.group": "Nhóm đối tượng", "year": "Năm đánh giá",
                "assessment_date": "Ngày tự đánh giá", "registered_on": "Ngày đăng ký",
                "total_declared": "Tổng điểm tự chấm", "approved": "Duyệt"}


def label_for(name: str, cset: CriteriaSet | None = None) -> str:
    """A field as a reviewer sees it beside its crop: 'Chỉ tiêu 3 – điểm', 'Họ và tên'."""
    if name in FIXED_LABELS:
        return FIXED_LABELS[name]
    prefix, _, key = name.partition(".")
    ind = cset.indicator(key) if cset else None
    what = f"Chỉ tiêu {ind.number}" if ind else key
    if prefix == "scores":
        return f"{what} – điểm"
    if prefix == "evidence":
        return f"{what} – minh chứng"
    return name
