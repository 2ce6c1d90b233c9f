"""Template versions and zone data (issue 13 §2–3).

- every released template version keeps its DOCX, and a template whose content changed without a version bump
  fails here (content hash against the released copy);
- the committed zone data is current (measured from this template content and these criteria sets);
- a sheet printed before a template bump still becomes a record: extraction picks the layout by the QR's version;
- a worker with LibreOffice absent from PATH ingests scans (extraction never renders).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fixtures.scans import random_record, rasterise, save_scan
from formsvc.criteria import load_registry
from formsvc.extract.pipeline import extract_files
from formsvc.forms import TEMPLATES_DIR, list_forms
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.render.zones import zone_sets
from formsvc.settings import get_settings
from formsvc.templates.build.release import VersionNotBumped, release_templates
from formsvc.zonedata import is_current, packaged_path, template_hash, write_atomic

REPO = Path(__file__).resolve().parents[1]
FORM = "cdht-self-assessment"


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, object], Path]]:
    """A filled self-assessment printed from the current template (version 1), scanned at 200 dpi."""
    data = random_record(411)
    try:
        pdf = render_document(FORM, data)
    finally:
        get_converter().close()
    folder = tmp_path_factory.mktemp("printed")
    (folder / "digital.pdf").write_bytes(pdf)
    yield data, save_scan(rasterise(pdf, 200), folder / "scan.tif")


def test_every_template_is_released_at_its_version_with_the_same_content() -> None:
    for form in list_forms():
        kept = form.released_path(form.template_version)
        assert kept.exists(), f"{form.id}: released/{kept.name} is missing (run python -m formsvc.templates.build)"
        assert template_hash(kept) == template_hash(form.template_path), (
            f"{form.id}: the template's content changed but template_version is still {form.template_version}")


def test_a_changed_template_without_a_version_bump_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """The check above is not vacuous: a changed DOCX at the same version fails the release step."""
    folder = _forms_folder(tmp_path, version=1)
    import zipfile

    changed = tmp_path / "changed.docx"
    with zipfile.ZipFile(folder / f"{FORM}.docx") as src, zipfile.ZipFile(changed, "w") as out:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "word/document.xml":
                body = body.replace("Họ và tên".encode(), "Họ, tên".encode())
            out.writestr(item, body)
    shutil.copyfile(changed, folder / f"{FORM}.docx")
    _use_forms(monkeypatch, folder)
    assert template_hash(folder / f"{FORM}.docx") != template_hash(folder / "released" / f"{FORM}@1.docx")
    with pytest.raises(VersionNotBumped):
        release_templates(folder)


def test_committed_zone_data_is_current() -> None:
    files = load_registry()
    checked = 0
    for form in (f for f in list_forms() if f.reader == "zones"):
        for version in form.released_versions():
            for cset in zone_sets(form, files):
                path = packaged_path(form, version, cset)
                assert is_current(path, form, version, cset), f"{path} missing or stale: rebuild the templates"
                checked += 1
    assert checked >= 8


def _write_many(path: str, tag: int) -> None:
    for i in range(150):
        write_atomic(Path(path), json.dumps({"tag": tag, "i": i, "pad": "x" * 20000}))


def test_two_processes_writing_one_zone_file_never_collide(tmp_path: Path) -> None:
    """Unique temporary names: two processes replacing the same file never trip over one shared key.tmp, and a
    reader always sees one whole file."""
    import multiprocessing

    target = tmp_path / "z.json"
    write_atomic(target, "{}")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(target), n)) for n in (1, 2)]
    for p in procs:
        p.start()
    seen = 0
    while any(p.is_alive() for p in procs):
        json.loads(target.read_text())  # never a half-written file
        seen += 1
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    assert json.loads(target.read_text())["i"] == 149 and seen > 0
    assert [p.name for p in tmp_path.iterdir()] == ["z.json"]  # no temporary file left behind


def _forms_folder(tmp_path: Path, *, version: int) -> Path:
    """A forms folder where FORM is at `version`: its current DOCX, the released v1 copy and v1's zone data."""
    folder = tmp_path / "forms"
    (folder / "released").mkdir(parents=True)
    entry = next(e for e in yaml.safe_load((TEMPLATES_DIR / "registry.yaml").read_text(encoding="utf-8"))["forms"]
                 if e["id"] == FORM)
    entry["template_version"] = version
    (folder / "registry.yaml").write_text(yaml.safe_dump({"forms": [entry]}, allow_unicode=True), encoding="utf-8")
    shutil.copyfile(TEMPLATES_DIR / f"{FORM}.docx", folder / f"{FORM}.docx")
    shutil.copyfile(TEMPLATES_DIR / "released" / f"{FORM}@1.docx", folder / "released" / f"{FORM}@1.docx")
    shutil.copytree(TEMPLATES_DIR / "zones" / f"{FORM}@1", folder / "zones" / f"{FORM}@1")
    return folder


def _use_forms(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("FORMSVC_FORMS_DIRS", json.dumps([str(folder)]))
    get_settings.cache_clear()


@pytest.fixture
def _restore_settings() -> Iterator[None]:
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("_restore_settings")
def test_sheets_printed_before_a_template_bump_still_become_records(
        printed: tuple[dict[str, object], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, scan = printed
    folder = _forms_folder(tmp_path, version=2)
    _use_forms(monkeypatch, folder)
    assert next(f for f in list_forms() if f.id == FORM).template_version == 2  # the bump is in effect
    for path in (scan.parent / "digital.pdf", scan):  # one printed copy: digital and scanned apart
        result = extract_files([path])
        assert result.errors == []
        [doc] = result.documents
        assert doc.extra["template_version"] == 1
        assert doc.scores == data["scores"], doc.result
    # Without the released copy of version 1 the same sheets are unknown: the layout is what makes them readable.
    shutil.rmtree(folder / "released")
    result = extract_files([scan.parent / "digital.pdf"])
    assert {e.code for e in result.errors} == {"form_unknown"} and result.documents == []


def test_a_worker_without_libreoffice_ingests_scans(printed: tuple[dict[str, object], Path], tmp_path: Path) -> None:
    """Extraction in a process whose PATH has no soffice (and whose configured soffice does not exist): the scan
    becomes a record, and the renderer's converter module is never even imported."""
    data, scan = printed
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("tesseract",):  # whatever else a worker may call, never LibreOffice
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    code = (
        "import json, sys; from pathlib import Path\n"
        "from formsvc.extract.pipeline import extract_files\n"
        f"r = extract_files([Path({str(scan)!r})])\n"
        "print(json.dumps({'errors': [e.code for e in r.errors], 'scores': [d.scores for d in r.documents],\n"
        "  'converter': 'formsvc.render.converter' in sys.modules, 'render': 'formsvc.render.api' in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMSVC_")}
    env.update({"PATH": str(bin_dir), "PYTHONPATH": str(REPO), "FORMSVC_SOFFICE_PATH": str(tmp_path / "no-soffice"),
                "FORMSVC_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)})
    assert shutil.which("soffice", path=env["PATH"]) is None
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["errors"] == [] and got["scores"] == [data["scores"]]
    assert got["converter"] is False and got["render"] is False


def test_zone_data_does_not_depend_on_where_the_checkout_is() -> None:
    """CI clones into another folder: the criteria set's hash in the zone files must not hold its file's path."""
    from formsvc.criteria import default_registry
    from formsvc.zonedata import set_hash

    cset = default_registry().get("cdht-324-pl4")
    assert set_hash(cset) == set_hash(cset.model_copy(update={"file": "/elsewhere/cdht-324-pl4.yaml"}))
