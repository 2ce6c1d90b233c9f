"""`formsvc digits retrain` and `formsvc digits status`: the recogniser learning this deployment's handwriting."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    digits_app = typer.Typer(help="Score recogniser: learn from reviewers' corrections.", no_args_is_help=True)
    app.add_typer(digits_app, name="digits")

    @digits_app.command("retrain")
    def retrain_cmd(
        epochs: Annotated[int | None, typer.Option("--epochs", min=1, max=20, help="Passes over the data")] = None,
    ) -> None:
        """Fine-tune on every value reviewers confirmed; the new model is used only if it is not worse on the
        held-out handwriting (the shipped model stays the fallback)."""
        from formsvc.service.retrain import run

        report = run(epochs=epochs)
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        typer.echo(report["reason"], err=True)

    @digits_app.command("status")
    def status_cmd() -> None:
        """Answers kept, the model in use and the last retraining."""
        from formsvc.service.retrain import status

        typer.echo(json.dumps(status(), ensure_ascii=False, indent=2))
