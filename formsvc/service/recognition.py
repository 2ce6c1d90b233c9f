"""ĐVHT recognition figures read from the store: the unit's CDHT records of a year -> shares -> record."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from formsvc.criteria.model import CriteriaSet
from formsvc.db.tables import RecordRow
from formsvc.exports import ExportRow
from formsvc.records import Record
from formsvc.reports.dvht_measures import MeasureName, Share, cdht_shares, fill_computed
from formsvc.service.auth import Principal
from formsvc.service.records import RecordFilter, as_record, filtered_query


def unit_cdht_shares(session: Session, who: Principal, *, unit: str, year: int, members: int | None = None,
                     learners: int | None = None) -> dict[MeasureName, Share]:
    """The shares of `unit`'s members and learners holding CDHT in `year`, from its stored records.

    Only rows the caller may see are read (a unit key sees its own unit only).
    """
    stmt = filtered_query(select(RecordRow), who, RecordFilter(unit=unit, year=year))
    rows = [ExportRow(record=as_record(r), id=r.id, unit=r.unit, approved=r.approved, updated_at=r.updated_at)
            for r in session.scalars(stmt.order_by(RecordRow.updated_at, RecordRow.id))]
    return cdht_shares(rows, unit=unit, year=year, members=members, learners=learners)


def with_computed_shares(session: Session, who: Principal, record: Record, cset: CriteriaSet, *, unit: str,
                         members: int | None = None, learners: int | None = None) -> Record:
    """A ĐVHT recognition record with its computed percentages filled from the store (before validation)."""
    shares = unit_cdht_shares(session, who, unit=unit, year=record.year, members=members, learners=learners)
    return fill_computed(record, cset, shares)
