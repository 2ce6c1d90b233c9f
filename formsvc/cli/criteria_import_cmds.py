"""`formsvc criteria import|versions`: load the official appendix a unit holds, and see the stored versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError

from formsvc.criteria import default_registry
from formsvc.criteria.diff import diff_sets, side_by_side
from formsvc.criteria.importer import import_file
from formsvc.criteria.store import VersionedRegistry, dump_set
from formsvc.errors import InputError
from formsvc.service.criteria_imports import add_set


def _criteria_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "criteria" and group.typer_instance is not None:
            return group.typer_instance
    raise RuntimeError("criteria_cmds must register the 'criteria' group first")  # module order is by name


def register(app: typer.Typer) -> None:
    criteria = _criteria_group(app)

    @criteria.command("import")
    def import_cmd(
        file: Annotated[Path, typer.Argument(help="Official appendix: .docx, or .pdf (digital or scanned)")],
        out: Annotated[Path, typer.Option("--out", help="Where to write the new set's YAML")],
        base: Annotated[str | None, typer.Option(
            "--base", help="Set the file is the official text of (default: the set whose wording is closest)")] = None,
        accept: Annotated[bool, typer.Option("--accept", help="Also store it as the set's next version, used at "
                                                              "once by rendering and validation")] = False,
        width: Annotated[int, typer.Option("--width", min=60, max=400, help="Width of the side-by-side diff")] = 120,
    ) -> None:
        """Read the criteria table of an official Word/PDF file into a criteria set and show what changes."""
        if not file.is_file():
            raise InputError(f"Không tìm thấy tệp {file}.", code="file_not_found")
        registry = default_registry()
        result = import_file(file, registry, base_id=base)
        assert result.base is not None
        out.write_text(dump_set(result.data), encoding="utf-8")
        if result.base_guessed:
            typer.echo(f"Bộ tiêu chí gốc (nhận theo nội dung): {result.base.id} — {result.base.title}")
        typer.echo(f"Đã đọc {len(result.cset.criteria)} tiêu chí, {len(result.cset.indicators)} chỉ tiêu từ "
                   f"{file.name} (SHA-256 {result.table.sha256}); đã ghi {out}.\n")
        typer.echo(side_by_side(diff_sets(result.base, result.cset), width))
        if accept:
            stored = add_set(result.data)
            typer.echo(f"\nĐã lưu {stored.id} phiên bản {stored.version}; biểu mẫu in từ nay mang mã "
                       f"{stored.id}@{stored.version}.")

    @criteria.command("accept")
    def accept_cmd(file: Annotated[Path, typer.Argument(help="A set written by 'criteria import --out', "
                                                          "e.g. after correcting a word OCR misread")]) -> None:
        """Store a set written by 'criteria import' as its next version (used at once)."""
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"Không đọc được tệp {file}: {exc}", code="criteria_file_unreadable") from exc
        if not isinstance(data, dict) or not isinstance(data.get("imported_from"), dict):
            raise InputError(f"Tệp {file} không phải bộ tiêu chí do lệnh 'formsvc criteria import' ghi ra.",
                             code="criteria_not_imported")
        registry = default_registry()
        base = registry.get(str(data.get("id")))
        try:
            stored = add_set(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
            raise InputError(f"Tệp {file} không phải bộ tiêu chí hợp lệ: {problems}",
                             code="criteria_file_invalid") from exc
        typer.echo(side_by_side(diff_sets(base, stored)))
        typer.echo(f"\nĐã lưu {stored.id} phiên bản {stored.version}; biểu mẫu in từ nay mang mã "
                   f"{stored.id}@{stored.version}.")

    @criteria.command("zones")
    def zones_cmd() -> None:
        """Measure zone data of the loaded sets for every released form version (after a template change)."""
        from formsvc.render.converter import get_converter
        from formsvc.service.criteria_imports import measure_loaded_sets

        try:
            written = measure_loaded_sets()
        finally:
            get_converter().close()
        typer.echo(f"Đã đo vị trí ô: {written} tệp mới.")

    @criteria.command("versions")
    def versions_cmd(set_id: str) -> None:
        """List every version of a set: the data files' one and those accepted from official files."""
        registry = default_registry()
        cset = registry.get(set_id)
        versions = registry.versions_of(cset.id) if isinstance(registry, VersionedRegistry) else [cset.version]
        for v in versions:
            one = registry.get(f"{cset.id}@{v}") if isinstance(registry, VersionedRegistry) else cset
            origin = (f"nhập từ tệp {one.imported_from.file_name} ({one.imported_from.imported_at:%d/%m/%Y})"
                      if one.imported_from else "tệp dữ liệu của phần mềm")
            current = "  [đang dùng]" if v == cset.version else ""
            typer.echo(f"{cset.id}@{v}: {origin}{current}")
