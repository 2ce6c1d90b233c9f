"""The QR payload printed on every page of every form that comes back (the return trip).

Format (ASCII, '|' separated, fixed field order, version-tagged so it can evolve):

    FSV1|<form>|<template_version>|<criteria_set or ->|<subject_id or ->|<year or ->|<page>/<pages>|<doc>

- form: form id from the form registry (e.g. cdht-self-assessment).
- template_version: integer version of that form's template.
- criteria_set: criteria set the indicator table was printed from, '-' when none: `ID` or, once the set has
  versions accepted from official files, `ID@VERSION` (the version printed, so the form is read and validated
  against it even after a newer version is accepted). A bare `ID` means the version shipped in the data files:
  every QR printed before versions existed carries one, and still decodes.
- subject_id: roster / upstream id of the person or unit when pre-filled, '-' when blank.
- year: assessed year when known, '-' otherwise.
- page/pages: 1-based page number within this document and the document's page count.
- doc: short random id of this printed document instance; all its pages share it, so a scanned
  stack of many people's forms is regrouped into documents even when pages are shuffled.
Fields never contain '|' (ids are [A-Za-z0-9._-], a criteria-set reference may add @VERSION).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from formsvc.errors import InputError

PREFIX = "FSV1"
_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_SET_REF = re.compile(r"^[A-Za-z0-9._-]+(?:@[1-9][0-9]{0,5})?$")


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
        for name, pattern in (("criteria_set", _SET_REF), ("subject_id", _ID)):
            value = getattr(self, name)
            if value is not None and not pattern.match(value):
                raise ValueError(f"{name} must match {pattern.pattern}")
        if not 1 <= self.page <= self.pages:
            raise ValueError("page must be within 1..pages")
        parts = [
            PREFIX, self.form, str(self.template_version), self.criteria_set or "-",
            self.subject_id or "-", str(self.year) if self.year is not None else "-",
            f"{self.page}/{self.pages}", self.doc,
        ]
        return "|".join(parts)

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


def new_doc_id() -> str:
    return secrets.token_hex(5)
