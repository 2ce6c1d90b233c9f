"""`formsvc extract FILE... [--out FILE.json] [--roster ROSTER.csv]`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("extract")
    def extract_cmd(
        files: Annotated[list[Path], typer.Argument(help="PDF, JPEG, PNG, TIFF, HEIC, AVIF or WebP files, in any mix")],
        out: Annotated[Path | None, typer.Option("--out", help="Write JSON here instead of stdout")] = None,
        jobs: Annotated[int, typer.Option("--jobs", help="Worker processes for page work")] = 1,
        roster: Annotated[Path | None, typer.Option(
            "--roster", help="The roster (.csv or .xlsx) the forms were printed from: its names, birth years and "
                             "groups are the known values, as the service applies them")] = None,
    ) -> None:
        """Read filled-in forms into validated records: {"documents": [...], "errors": [...]}."""
        from formsvc.extract.pipeline import extract_files, read_files
        from formsvc.render.converter import get_converter
        from formsvc.roster import read_roster
        from formsvc.service.ingest import with_known_values

        # Read first: a bad roster is refused before any page is.
        people = None
        if roster:
            parsed = read_roster(roster)
            for row in parsed.errors:
                typer.echo(f"Bỏ qua một dòng của danh sách — {row.message}", err=True)
            people = {p.id: p for p in parsed.people if p.id}
            if not people:
                typer.echo(f"Danh sách {roster.name} không có cột «Mã» (mã trong mã QR của phiếu): không khớp được "
                           "người nào với phiếu.", err=True)
        try:
            if people is None:
                result = extract_files(files, jobs=jobs)
            else:
                result = read_files(files, jobs=jobs, names={pid: p.full_name for pid, p in people.items()})
                result.documents, result.findings = with_known_values(result.documents, result.findings, people)
        finally:
            get_converter().close()
        payload = {"documents": [d.model_dump(mode="json") for d in result.documents],
                   "errors": [asdict(e) for e in result.errors]}
        text = json.dumps(payload, ensure_ascii=False, indent=2)
        if out:
            out.write_text(text, encoding="utf-8")
            typer.echo(f"{len(result.documents)} phiếu, {len(result.errors)} lỗi -> {out}", err=True)
        else:
            typer.echo(text)
