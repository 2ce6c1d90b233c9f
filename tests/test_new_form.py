"""Adding a return-trip form is a template plus a registry entry (issue 13 §4).

A test-only form is added the way a maintainer would add one: a DOCX template and an entry in a registry.yaml
(here in a folder named by FORMSVC_FORMS_DIRS), then the build step (release + zone data). No code names it; it
prints with its QR, comes back as a record, is validated as the self-assessment its registry entry says it is,
and the print pack accepts it because the entry says `packable`.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fixtures.scans import random_record
from formsvc.criteria import default_registry
from formsvc.extract.pipeline import extract_files
from formsvc.forms import TEMPLATES_DIR, get_form, list_forms
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.render.zonebuild import build_form_zones
from formsvc.settings import get_settings
from formsvc.templates.build.release import release_templates
from formsvc.zonedata import packaged_path

NEW = "test-cdht-quick-sheet"
TITLE_MARK = "PHIẾU THỬ NGHIỆM"


@pytest.fixture
def new_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "forms"
    folder.mkdir()
    # The template: the self-assessment's layout under a title of its own (a real DOCX, written here).
    with zipfile.ZipFile(TEMPLATES_DIR / "cdht-self-assessment.docx") as src, \
            zipfile.ZipFile(folder / f"{NEW}.docx", "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "word/document.xml":
                body = body.replace("BẢN TỰ ĐÁNH GIÁ".encode(), TITLE_MARK.encode(), 1)
                assert TITLE_MARK.encode() in body
            out.writestr(item, body)
    entry = {"id": NEW, "title": "Phiếu thử nghiệm", "kind": "cdht", "template_version": 1, "return_trip": True,
             "default_criteria_set": "cdht-324-pl4", "reader": "zones", "document": "self_assessment",
             "packable": True, "context": ["criteria"], "source": "test"}
    (folder / "registry.yaml").write_text(yaml.safe_dump({"forms": [entry]}, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("FORMSVC_FORMS_DIRS", json.dumps([str(folder)]))
    get_settings.cache_clear()
    try:
        yield folder
    finally:
        get_converter().close()
        get_settings.cache_clear()


def test_a_return_trip_form_added_by_template_and_registry_entry_comes_back_as_a_record(
        new_form: Path, tmp_path: Path) -> None:
    form = get_form(NEW)
    assert form.folder == new_form and NEW in {f.id for f in list_forms()}
    # The build step: the version released, its zones measured (here for the one set this test prints with).
    assert release_templates(new_form) == [new_form / "released" / f"{NEW}@1.docx"]
    registry = default_registry()
    cset = registry.get("cdht-324-pl4")
    [zones] = build_form_zones(form, [cset], packaged_path, registry)
    assert zones == new_form / "zones" / f"{NEW}@1" / f"{cset.id}@{cset.version}.json"
    data = random_record(733)
    pdf = tmp_path / "moi.pdf"
    pdf.write_bytes(render_document(NEW, data))
    get_converter().close()
    result = extract_files([pdf])
    assert result.errors == []
    [doc] = result.documents
    assert doc.form == NEW and doc.subject.full_name == data["subject"]["full_name"]
    assert doc.scores == data["scores"]
    assert doc.status == "valid", doc.result
    assert doc.result is not None and doc.result.total == data["total_declared"]


def test_packable_and_document_kind_come_from_the_entry(new_form: Path) -> None:
    from formsvc.forms import forms_of_document, packable_forms

    assert NEW in {f.id for f in packable_forms()}
    assert NEW in forms_of_document("self_assessment")
    shutil.rmtree(new_form)


def test_every_table_read_form_has_a_reader_for_its_document_kind() -> None:
    """`reader: table` hands the pages to the reader registered for the form's document kind."""
    import formsvc.extract.pipeline  # noqa: F401  (registers the built-in readers)
    from formsvc.extract.readers import document_reader, reader_for, registered_kinds

    assert {"minutes", "self_assessment"} <= set(registered_kinds())
    for form in list_forms():
        if form.reader == "table":
            assert reader_for(form.document) is not None, form.id
    with pytest.raises(ValueError):
        document_reader("minutes", "biên bản")(lambda pages, registry: None)
