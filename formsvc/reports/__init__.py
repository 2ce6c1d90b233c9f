"""Reports computed from stored records (the unit's yearly CDHT / ĐVHT report upward)."""

from formsvc.reports.unit_report import (
    BandCount,
    CdhtCounts,
    DvhtCounts,
    GroupCount,
    UnitReport,
    report_context,
    report_notes,
    unit_report,
)

__all__ = [
    "BandCount",
    "CdhtCounts",
    "DvhtCounts",
    "GroupCount",
    "UnitReport",
    "report_context",
    "report_notes",
    "unit_report",
]
