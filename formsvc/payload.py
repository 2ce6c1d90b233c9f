"""The QR payload printed on every page of every form that comes back (the return trip).

Format (ASCII, '|' separated, fixed field order, version-tagged so it can evolve):

    FSV1|<form>|<template_version>|<criteria_set or ->|<subject_id or ->|<year or ->|<page>/<pages>|<doc>

- form: form id from the form registry (e.g. cdht-self-assessment).
- template_version: integer version of that form's template.
- criteria_set: criteria-set id the indicator table was printed from, '-' when none.
- subject_id: roster / upstream id of the person or unit when pre-filled, '-' when blank.
- year: assessed year when known, '-' otherwise.
- page/pages: 1-based page number within this document and the document's page count.
- doc: short random id of this printed document instance; all its pages share it, so a scanned
  stack of many people's forms is regrouped into documents even when pages are shuffled.
Fields never contain '|' (ids are [A-Za-z0-9._-]).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from formsvc.errors import InputError

PREFIX = "FSV1"
# Bounds of the numbers a code may carry (the page count's bound is a setting: Settings.max_form_pages).
MAX_TEMPLATE_VERSION = 999
MIN_YEAR, MAX_YEAR = 2000, 2100  # the years print packs accept
_ID = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class PagePayload:
    form: str
    template_version: int
    criteria_set: str | None
    subject_id: str | None
    year: int | None
    page: int
    pages: int
    doc: str

    def encode(self) -> str:
        for name in ("form", "doc"):
            if not _ID.match(getattr(self, name)):
                raise ValueError(f"{name} must match {_ID.pattern}")
        for name in ("criteria_set", "subject_id"):
            value = getattr(self, name)
            if value is not None and not _ID.match(value):
                raise ValueError(f"{name} must match {_ID.pattern}")
        if not 1 <= self.page <= self.pages:
            raise ValueError("page must be within 1..pages")
        parts = [
            PREFIX, self.form, str(self.template_version), self.criteria_set or "-",
            self.subject_id or "-", str(self.year) if self.year is not None else "-",
            f"{self.page}/{self.pages}", self.doc,
        ]
        return "|".join(parts)

    def check(self, max_pages: int) -> None:
        """Every number bounded by what a printed form can carry. The code is printed by formsvc but a page can
        be re-stamped with a forged one: a page count of 10^12 must never size anything downstream (a list of
        missing pages, a message). Raises InputError 'payload_invalid' (the page is then no record's page)."""
        problems = []
        if not 1 <= self.template_version <= MAX_TEMPLATE_VERSION:
            problems.append(f"phiên bản mẫu {_shown(self.template_version)}")
        if not 1 <= self.pages <= max_pages:
            problems.append(f"số trang {_shown(self.pages)} (tối đa {max_pages})")
        if not 1 <= self.page <= self.pages:
            problems.append(f"trang {_shown(self.page)}/{_shown(self.pages)}")
        if self.year is not None and not MIN_YEAR <= self.year <= MAX_YEAR:
            problems.append(f"năm {_shown(self.year)}")
        if problems:
            raise InputError("Mã QR của biểu mẫu mang số không hợp lệ: " + ", ".join(problems)
                             + "; trang không được xếp vào phiếu nào.", code="payload_invalid",
                             hint="In lại biểu mẫu từ formsvc rồi quét lại trang này.")

    @classmethod
    def decode(cls, text: str) -> PagePayload:
        parts = text.strip().split("|")
        if len(parts) != 8 or parts[0] != PREFIX:
            raise InputError("Mã QR không phải của biểu mẫu formsvc.", code="qr_not_ours")
        _, form, version, cset, subject, year, pages_part, doc = parts
        try:
            page_s, pages_s = pages_part.split("/")
            page, pages = int(page_s), int(pages_s)
            return cls(
                form=form, template_version=int(version), criteria_set=None if cset == "-" else cset,
                subject_id=None if subject == "-" else subject, year=None if year == "-" else int(year),
                page=page, pages=pages, doc=doc,
            )
        except ValueError as exc:
            raise InputError("Mã QR của biểu mẫu bị hỏng.", code="qr_malformed") from exc


def _shown(number: int) -> str:
    """A forged number in a message: a QR code holds up to ~4,000 digits, a message shows at most 15."""
    text = str(number)
    return text if len(text) <= 15 else text[:12] + "…"


def new_doc_id() -> str:
    return secrets.token_hex(5)
