"""The `formsvc` command. Each concern registers its own sub-commands from its own module."""

from __future__ import annotations

import sys

import typer

from formsvc.errors import FormsvcError

app = typer.Typer(
    name="formsvc",
    help="Render, ingest and validate CDHT / ĐVHT assessment forms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Every `formsvc/cli/*_cmds.py` module adds its commands through `register(app)`.

    Discovery keeps concerns apart: adding a command group never edits this file.
    """
    import importlib
    import pkgutil

    import formsvc.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.endswith("_cmds"):
            importlib.import_module(f"formsvc.cli.{info.name}").register(app)


_register()


def main() -> None:
    try:
        app()
    except FormsvcError as exc:
        typer.echo(f"Lỗi [{exc.code}]: {exc.message}", err=True)
        if exc.hint:
            typer.echo(exc.hint, err=True)
        sys.exit(exc.exit_code)
