"""`formsvc forms`, `formsvc render`, `formsvc print-pack`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from formsvc.cli.validate_cmds import read_json_file


def register(app: typer.Typer) -> None:
    @app.command("forms")
    def forms_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
        """List the forms formsvc renders."""
        from formsvc.render import list_forms

        forms = list_forms()
        if as_json:
            typer.echo(json.dumps([{"id": f.id, "title": f.title, "kind": f.kind,
                                    "template_version": f.template_version, "return_trip": f.return_trip}
                                   for f in forms], ensure_ascii=False, indent=2))
            return
        for f in forms:
            mark = " [QR]" if f.return_trip else ""
            typer.echo(f"{f.id:<28} {f.title}{mark}")

    @app.command("render")
    def render_cmd(
        form_id: Annotated[str, typer.Argument(help="Form id (see `formsvc forms`)")],
        out: Annotated[Path, typer.Option("--out", help="Output file")],
        data: Annotated[Path | None, typer.Option("--data", help="JSON: record shape plus form fields")] = None,
        fmt: Annotated[str, typer.Option("--format", help="pdf or docx")] = "pdf",
    ) -> None:
        """Render one form, blank (no --data) or pre-filled."""
        from formsvc.render import render_document
        from formsvc.render.converter import get_converter

        payload: dict[str, Any] | None = None
        if data is not None:
            loaded = read_json_file(data)
            if not isinstance(loaded, dict):
                from formsvc.errors import InputError

                raise InputError(f"{data}: dữ liệu phải là một đối tượng JSON.", code="json_shape")
            payload = loaded
        try:
            content = render_document(form_id, payload, fmt)  # type: ignore[arg-type]
        finally:
            get_converter().close()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(content)
        typer.echo(f"Đã ghi {out} ({len(content)} byte).")

    @app.command("print-pack")
    def print_pack_cmd(
        form_id: Annotated[str, typer.Argument(help="Form id, e.g. cdht-self-assessment")],
        roster: Annotated[Path, typer.Option("--roster", help="Roster .csv or .xlsx")],
        out: Annotated[Path, typer.Option("--out", help="Output PDF")],
        year: Annotated[int | None, typer.Option("--year", help="Assessed year")] = None,
        criteria_set: Annotated[str | None, typer.Option("--criteria-set", help="Force one criteria set")] = None,
        issuer: Annotated[str | None, typer.Option("--issuer", help="Issuing body printed top-left")] = None,
    ) -> None:
        """One pre-filled form per roster row in one duplex-safe PDF."""
        from formsvc.render.converter import get_converter
        from formsvc.render.pack import print_pack

        with Progress(TextColumn("Đang in"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True) as bar:
            task = bar.add_task("pack", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                report = print_pack(form_id, roster, out, year, progress, criteria_set=criteria_set, issuer=issuer)
            finally:
                get_converter().close()
        typer.echo(f"Đã in {report.forms} phiếu, {report.pages} trang vào {out} ({report.seconds:.1f} giây).")
        if report.errors:
            typer.echo(f"{len(report.errors)} dòng không in được:", err=True)
            for e in report.errors:
                typer.echo(f"  {e.message}", err=True)
