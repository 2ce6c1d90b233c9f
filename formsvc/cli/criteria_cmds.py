"""`formsvc criteria list|show`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from formsvc.criteria import default_registry
from formsvc.criteria.model import PROVISIONAL_NOTE
from formsvc.criteria.views import set_detail, set_summary


def register(app: typer.Typer) -> None:
    criteria = typer.Typer(help="Criteria sets (bộ tiêu chí).", no_args_is_help=True)
    app.add_typer(criteria, name="criteria")

    @criteria.command("list")
    def list_sets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
        """List loaded criteria sets."""
        registry = default_registry()
        if as_json:
            typer.echo(json.dumps([set_summary(s) for s in registry], ensure_ascii=False, indent=2))
            return
        for s in registry:
            flag = "" if s.fully_verified else "  [tạm thời, chưa đối chiếu]"
            typer.echo(f"{s.id:<24} {s.kind:<5} {s.source.document} {s.source.appendix or ''}{flag}")
            typer.echo(f"{'':<24} {s.title}")

    @criteria.command("show")
    def show_set(set_id: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
        """Show one criteria set with its indicators."""
        cset = default_registry().get(set_id)
        if as_json:
            typer.echo(json.dumps(set_detail(cset), ensure_ascii=False, indent=2))
            return
        typer.echo(f"{cset.title}  [{cset.id} v{cset.version}]")
        src = cset.source
        typer.echo(f"Nguồn: {src.document}, {src.issuer}, ngày {src.date:%d/%m/%Y} {src.appendix or ''}")
        if not cset.fully_verified:
            typer.echo(f"Lưu ý: {PROVISIONAL_NOTE}.")
        for c in cset.criteria:
            head = f"Tiêu chí {c.number}. {c.title}"
            typer.echo(f"\n{head}" if cset.outcome.type == "levels" else f"\n{head} (tối đa {c.max_points:g} điểm)")
            for i in c.indicators:
                mark = "" if i.verified else " *"
                label = f" {i.label})" if i.label else ""
                if i.kind == "met":
                    how = ("đạt khi tỷ lệ ≥ " + " / ".join(f"{v:g}% (mức độ {lv})" for lv, v in
                                                             sorted(i.measure.thresholds.items()))
                           if i.measure else "đạt / không đạt")
                else:
                    how = f"tối đa {i.max_points:g}, bước {i.step:g}"
                typer.echo(f"  {i.number:>2}.{label} {i.title}{mark}  — {how}")
                for si in i.sub_items:
                    typer.echo(f"        - {si.text}{'' if si.verified else ' *'}")
                if i.source:
                    typer.echo(f"        Nguồn: {i.source}")
        for ref in cset.references:
            typer.echo(f"\nTham khảo: {ref.document}" + (f" — {ref.supports}" if ref.supports else ""))
        outcome_source = cset.outcome.source
        if outcome_source is not None:
            typer.echo(f"Nguồn quy tắc kết quả: {outcome_source.document}"
                       + (f" — {outcome_source.supports}" if outcome_source.supports else ""))
        if not cset.fully_verified:
            typer.echo("\n* Nội dung diễn đạt tạm thời.")
