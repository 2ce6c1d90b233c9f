"""`formsvc dossier`: the year-end dossier of a unit from its stored, approved records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from formsvc.errors import InputError


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"Ngày «{text}» không đúng định dạng YYYY-MM-DD.", code="bad_date") from exc


def register(app: typer.Typer) -> None:
    @app.command("dossier")
    def dossier_cmd(
        unit: Annotated[str, typer.Option("--unit", help="Unit, exactly as records are stored under")],
        year: Annotated[int, typer.Option("--year", help="Assessed year")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (DOCX + PDF of every document)")],
        criteria_set: Annotated[str | None, typer.Option("--criteria-set",
                                                         help="Only records of this CDHT criteria set")] = None,
        exclude: Annotated[list[str] | None, typer.Option("--exclude",
                                                          help="Record id to leave out (listed on the cover)")] = None,
        staff: Annotated[int | None, typer.Option("--staff", help="Staff headcount, for the reports' rates",
                                                  min=1)] = None,
        place: Annotated[str | None, typer.Option("--place", help="Place printed before the date")] = None,
        date: Annotated[str | None, typer.Option("--date", help="Date of the documents, YYYY-MM-DD "
                                                               "(default: left blank for the signer)")] = None,
        as_zip: Annotated[bool, typer.Option("--zip", help="Also write dossier.zip into the folder")] = False,
    ) -> None:
        """Minutes draft, decision with its list, reports and cover sheet (records not yet approved)."""
        from formsvc.db.engine import session_scope
        from formsvc.render.converter import get_converter
        from formsvc.render.dossier import render_dossier
        from formsvc.service.dossier import SYSTEM, plan_from_store

        when = _date(date)  # a bad date fails before any work
        with session_scope() as s:
            plan = plan_from_store(s, SYSTEM, unit=unit, year=year, criteria_set=criteria_set, exclude=exclude or [])
        try:
            files = render_dossier(plan, {"staff": staff, "place": place, "date": when})
        finally:
            get_converter().close()
        written = files.write_dir(out)
        if as_zip:
            (out / "dossier.zip").write_bytes(files.zip_bytes())
        typer.echo(f"Đã lập hồ sơ năm {year} của {plan.unit}: {len(plan.reviewed)} người đã duyệt "
                   f"({len(plan.recognised)} được đề nghị công nhận), chưa duyệt: {len(plan.pending)} người; "
                   f"{len(written)} tệp trong {out} ({files.seconds:.1f} giây).")
