"""A unit loads the official appendix it holds: Word, digital PDF and scanned PDF tables become a criteria set
with exactly the file's wording and points; the accepted version is stored and used at once; forms printed
before still read and validate against the version they were printed with."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from docx import Document
from typer.testing import CliRunner

from fixtures.official_tables import (
    CDHT_FRAMEWORK,
    CDHT_SCANNED,
    DVHT_TT22,
    Official,
    docx_headings,
    docx_merged,
    pdf_table,
    scanned_pdf,
)
from formsvc.cli import app
from formsvc.criteria import CriteriaSet, Criterion, default_registry, load_registry
from formsvc.criteria.diff import diff_sets, side_by_side
from formsvc.criteria.importer import import_file, label_of
from formsvc.criteria.store import VersionedRegistry, get_store
from formsvc.errors import CriteriaImportError, NotFoundError
from formsvc.payload import PagePayload
from formsvc.settings import get_settings


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own deployment store (the settings are cached per process)."""
    folder = tmp_path / "criteria-store"
    monkeypatch.setenv("FORMSVC_CRITERIA_STORE_DIR", str(folder))
    monkeypatch.setenv("FORMSVC_DATA_DIR", str(tmp_path / "data"))  # zone data of loaded sets goes there
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def _as_lists(cset_criteria: list[Criterion]) -> list[tuple[str, list[tuple[str, float]]]]:
    return [(c.title, [(i.title, i.max_points) for i in c.indicators]) for c in cset_criteria]


def _expected(official: Official) -> list[tuple[str, list[tuple[str, float]]]]:
    return [(t, [(w, float(p)) for w, p in inds]) for t, inds in official.criteria]


CASES: dict[str, tuple[Callable[[Official], bytes], Official, str, str]] = {
    # name: (builder, official text, file suffix, reader)
    "word-merged-criteria-column-lettered": (docx_merged, DVHT_TT22, ".docx", "docx"),
    "word-heading-rows-chi-tieu-N": (docx_headings, CDHT_FRAMEWORK, ".docx", "docx"),
    "pdf-points-first-roman-headings": (lambda o: pdf_table(o, numbering="global"), CDHT_FRAMEWORK, ".pdf", "pdf"),
    "pdf-over-four-pages-header-repeated": (lambda o: pdf_table(o, font_size=26), DVHT_TT22, ".pdf", "pdf"),
    "pdf-over-three-pages-header-once": (lambda o: pdf_table(o, font_size=26, repeat_header=False), DVHT_TT22,
                                         ".pdf", "pdf"),
    "scanned-pdf-ocr": (scanned_pdf, CDHT_SCANNED, ".pdf", "ocr"),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if CASES[c][3] == "ocr" else c
                                  for c in CASES])  # the scanned appendix goes through OCR: full suite only
def test_official_table_round_trips_exactly(case: str, tmp_path: Path) -> None:
    build, official, suffix, reader = CASES[case]
    path = tmp_path / f"phu-luc{suffix}"
    path.write_bytes(build(official))
    registry = load_registry()
    result = import_file(path, registry, base_id=official.base)
    cset = result.cset
    assert _as_lists(cset.criteria) == _expected(official)
    assert [i.number for i in cset.indicators] == list(range(1, len(official.indicators) + 1))
    assert cset.total_max == sum(p for _, p in official.indicators)
    assert result.table.reader == reader
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert cset.source.sha256 == sha and cset.imported_from is not None and cset.imported_from.sha256 == sha
    assert cset.fully_verified  # official wording: no "provisional" note on forms
    base = registry.get(official.base)
    assert cset.id == base.id and cset.version == base.version + 1 and cset.outcome == base.outcome
    assert [i.id for i in cset.indicators[: len(base.indicators)]] == [i.id for i in base.indicators][
        : len(cset.indicators)]


def test_cli_writes_a_set_the_loader_reads_and_prints_the_diff(tmp_path: Path, store_dir: Path) -> None:
    src = tmp_path / "phu-luc-tt22.docx"
    src.write_bytes(docx_merged(DVHT_TT22))
    out_dir = tmp_path / "sets"
    out_dir.mkdir()
    out = out_dir / "dvht-tt22-2020.yaml"
    v = load_registry().get("dvht-tt22-2020").version
    res = CliRunner().invoke(app, ["criteria", "import", str(src), "--base", "dvht-tt22-2020", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert hashlib.sha256(src.read_bytes()).hexdigest() in res.output
    assert f"Hiện hành dvht-tt22-2020@{v}" in res.output and f"Từ tệp chính thức dvht-tt22-2020@{v + 1}" in res.output
    assert "Bản từ tệp: 3 tiêu chí, 10 chỉ tiêu (chia 3 / 4 / 3), tổng 100 điểm." in res.output
    assert "Chỉ tiêu 5. 100% thành viên trong đơn vị tuân thủ kỷ" in res.output  # wrapped at --width
    # The written YAML is the loader's schema: a unit may also ship it in FORMSVC_CRITERIA_DIRS.
    loaded = load_registry([out_dir]).get("dvht-tt22-2020")
    assert _as_lists(loaded.criteria) == _expected(DVHT_TT22)
    assert yaml.safe_load(out.read_text())["imported_from"]["reader"] == "docx"
    assert not (store_dir / "sets").exists()  # without --accept nothing is stored


def _small_set(version: int, criteria: list[tuple[str, list[tuple[int, str, float]]]]) -> CriteriaSet:
    return CriteriaSet.model_validate({
        "id": "thu", "title": "Bộ thử", "kind": "cdht", "version": version, "verified": False, "file": "-",
        "source": {"document": "Quyết định 1", "issuer": "Hội", "date": "2024-01-01"},
        "years": {"from": 2024, "to": 2030}, "outcome": {"type": "recognition", "min_total": 80},
        "total_max": sum(p for _, inds in criteria for _, _, p in inds),
        "criteria": [{"id": f"tc{k}", "number": k, "title": title,
                      "indicators": [{"id": f"ct{n}", "number": n, "title": t, "max_points": p, "step": 0.5,
                                      "origin": "thu"} for n, t, p in inds]}
                     for k, (title, inds) in enumerate(criteria, start=1)],
    })


def test_diff_names_wording_points_and_structure() -> None:
    old = _small_set(1, [
        ("Năng lực tự học", [(1, "Có kế hoạch học tập", 10),
                             (2, "Tham gia học tập, bồi dưỡng nâng cao trình độ, kỹ năng", 10),
                             (3, "Tự học qua sách báo", 10), (4, "Vận dụng kiến thức", 10)]),
        ("Năng lực sử dụng công cụ", [(5, "Sử dụng máy tính", 10), (6, "Sử dụng ngoại ngữ", 10)]),
    ])
    new = _small_set(2, [
        ("Năng lực tự học", [(1, "Có kế hoạch học tập", 10),
                             (2, "Tham gia học tập, bồi dưỡng nâng cao trình độ chuyên môn", 10),
                             (3, "Tự học qua sách báo", 5)]),
        ("Năng lực sử dụng công cụ", [(4, "Vận dụng kiến thức", 15), (5, "Sử dụng máy tính", 10),
                                      (6, "Sử dụng ngoại ngữ", 10)]),
        ("Tư duy", [(7, "Tư duy phản biện", 10)]),
    ])
    diff = diff_sets(old, new)
    by_label = {r.label: r.status for r in diff.rows}
    assert by_label == {"Tiêu chí 1": "changed", "Chỉ tiêu 1": "same", "Chỉ tiêu 2": "changed", "Chỉ tiêu 3": "changed",
                        "Tiêu chí 2": "changed", "Chỉ tiêu 4": "changed", "Chỉ tiêu 5": "same", "Chỉ tiêu 6": "same",
                        "Tiêu chí 3": "added", "Chỉ tiêu 7": "added"}
    row2 = next(r for r in diff.rows if r.label == "Chỉ tiêu 2")
    assert row2.wording_changed and not row2.points_changed
    assert [s.text for s in row2.old_words if s.op == "del"] == ["độ, kỹ năng"]
    assert [s.text for s in row2.new_words if s.op == "ins"] == ["độ chuyên môn"]
    row3 = next(r for r in diff.rows if r.label == "Chỉ tiêu 3")
    assert row3.points_changed and not row3.wording_changed and (row3.old_points, row3.new_points) == (10, 5)
    crit1 = diff.rows[0]  # same wording, its maximum follows its indicators
    assert not crit1.wording_changed and (crit1.old_points, crit1.new_points) == (40, 25)
    assert "Chỉ tiêu 4 chuyển từ tiêu chí 1 sang tiêu chí 2." in diff.structure
    assert "(chia 4 / 2)" in diff.structure[0] and "(chia 3 / 3 / 1)" in diff.structure[1]
    assert "Tổng điểm tối đa đổi từ 60 thành 70." in diff.structure
    text = side_by_side(diff, 100)
    assert "~ |" in text and "+ |" in text and max(len(line) for line in text.splitlines()) <= 100
    removed = diff_sets(new, old)
    assert {r.label: r.status for r in removed.rows}["Tiêu chí 3"] == "removed"


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("1.", "num", 1), ("12) Nội dung", "num", 12), ("a)", "letter", 1), ("đ) Một", "letter", 5),
    ("Chỉ tiêu 6", "ct", 6), ("CHỈ TIÊU 6:", "ct", 6), ("Tiêu chí 2. Năng lực", "tc", 2), ("III.", "roman", 3),
    ("Khoản 3 - Hiệu quả", "tc", 3), ("Internet và mạng", "none", 0), ("100% thành viên", "none", 0),
])
def test_numbering_labels(text: str, kind: str, value: int) -> None:
    label = label_of(text)
    assert (label.kind, label.value) == (kind, value)


def _bad_docx(path: Path, rows: list[list[str]]) -> Path:
    doc = Document()
    table = doc.add_table(rows=0, cols=len(rows[0]))
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    doc.save(str(path))
    return path


@pytest.mark.parametrize(("rows", "code", "says"), [
    ([["STT", "Nội dung", "Điểm tối đa"], ["I", "Tiêu chí một", "20"], ["1", "Chỉ tiêu một", "10"],
      ["2", "Chỉ tiêu hai", "mười"]], "criteria_import_bad_points", "Dòng 4 của bảng (chỉ tiêu «Chỉ tiêu hai»)"),
    ([["STT", "Nội dung", "Điểm tối đa"], ["I", "Tiêu chí một", "20"], ["1", "Chỉ tiêu một", "10"],
      ["2", "Chỉ tiêu hai", ""]], "criteria_import_bad_points", "Dòng 4 của bảng (chỉ tiêu «Chỉ tiêu hai»): thiếu"),
    ([["STT", "Nội dung", "Điểm tối đa"], ["I", "Tiêu chí một", "20"], ["1", "Chỉ tiêu một", "10"],
      ["3", "Chỉ tiêu hai", "10"]], "criteria_import_numbering", "Dòng 4 của bảng"),
    ([["STT", "Nội dung", "Điểm tối đa"], ["I", "Tiêu chí một", "25"], ["1", "Chỉ tiêu một", "10"],
      ["2", "Chỉ tiêu hai", "10"]], "criteria_import_points_mismatch", "Dòng 2 của bảng (tiêu chí «Tiêu chí một»)"),
    ([["Họ và tên", "Năm sinh"], ["Nguyễn Văn A", "1980"]], "criteria_import_no_table", "Không tìm thấy bảng"),
    ([["STT", "Nội dung", "Điểm"], ["1", "Chỉ tiêu một", "10"], ["2", "Chỉ tiêu hai", "10"]],
     "criteria_import_no_structure", "Không phân biệt được dòng tiêu chí"),
])
def test_malformed_tables_get_a_vietnamese_error_naming_the_row(rows: list[list[str]], code: str, says: str,
                                                                 tmp_path: Path) -> None:
    path = _bad_docx(tmp_path / "hong.docx", rows)
    with pytest.raises(CriteriaImportError) as err:
        import_file(path, load_registry(), base_id="cdht-324-pl1")
    assert err.value.code == code
    assert says in err.value.message, err.value.message


def test_not_word_or_pdf_and_unknown_base(tmp_path: Path) -> None:
    junk = tmp_path / "a.docx"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CriteriaImportError) as err:
        import_file(junk, load_registry())
    assert err.value.code == "criteria_import_unreadable"
    broken_pdf = tmp_path / "a.pdf"
    broken_pdf.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    with pytest.raises(CriteriaImportError) as err:
        import_file(broken_pdf, load_registry())
    assert err.value.code == "criteria_import_unreadable"
    text = tmp_path / "a.txt"
    text.write_text("Tiêu chí 1")
    with pytest.raises(CriteriaImportError) as err:
        import_file(text, load_registry())
    assert err.value.code == "criteria_import_file_type"
    good = tmp_path / "b.docx"
    good.write_bytes(docx_merged(DVHT_TT22))
    with pytest.raises(NotFoundError):
        import_file(good, load_registry(), base_id="khong-co")
    res = CliRunner().invoke(app, ["criteria", "import", str(text), "--out", str(tmp_path / "x.yaml")])
    assert res.exit_code != 0


def test_accepted_version_is_used_at_once_and_old_versions_stay(tmp_path: Path, store_dir: Path) -> None:
    src = tmp_path / "phu-luc.docx"
    src.write_bytes(docx_headings(CDHT_FRAMEWORK))
    before = default_registry()
    v = before.get("cdht-324-pl1").version  # the data files' version
    assert PagePayload.decode("FSV1|cdht-self-assessment|1|cdht-324-pl1|-|2024|1/2|abc").criteria_set == "cdht-324-pl1"
    res = CliRunner().invoke(app, ["criteria", "import", str(src), "--base", "cdht-324-pl1", "--out",
                                   str(tmp_path / "o.yaml"), "--accept"])
    assert res.exit_code == 0, res.output
    assert f"cdht-324-pl1@{v + 1}" in res.output
    registry = default_registry()  # same process, no restart
    assert isinstance(registry, VersionedRegistry)
    assert registry.get("cdht-324-pl1").version == v + 1
    assert _as_lists(registry.get("cdht-324-pl1").criteria) == _expected(CDHT_FRAMEWORK)
    assert registry.get(f"cdht-324-pl1@{v}") == before.get("cdht-324-pl1")
    assert registry.print_ref("cdht-324-pl1") == f"cdht-324-pl1@{v + 1}"
    assert registry.read_ref("cdht-324-pl1") == f"cdht-324-pl1@{v}"  # a QR printed before the import
    assert registry.print_ref("cdht-324-pl4") == "cdht-324-pl4"  # sets without stored versions print as before
    assert registry.read_ref("cdht-324-pl4") == "cdht-324-pl4"
    payload = PagePayload("cdht-self-assessment", 1, f"cdht-324-pl1@{v + 1}", None, 2024, 1, 2, "abc")
    assert PagePayload.decode(payload.encode()) == payload
    with pytest.raises(ValueError):
        PagePayload("cdht-self-assessment", 1, "cdht-324-pl1@x", None, 2024, 1, 2, "abc").encode()
    with pytest.raises(NotFoundError):
        registry.get(f"cdht-324-pl1@{v + 5}")
    # A second accepted import is the next version; the earlier ones remain.
    src2 = tmp_path / "phu-luc-2.pdf"
    src2.write_bytes(pdf_table(CDHT_FRAMEWORK))
    get_store().add(import_file(src2, registry, base_id="cdht-324-pl1").data, registry)
    registry = default_registry()
    assert isinstance(registry, VersionedRegistry) and registry.versions_of("cdht-324-pl1") == [v, v + 1, v + 2]
    res = CliRunner().invoke(app, ["criteria", "versions", "cdht-324-pl1"])
    assert f"cdht-324-pl1@{v + 2}: nhập từ tệp phu-luc-2.pdf" in res.output and "[đang dùng]" in res.output


@pytest.mark.slow  # renders and reads forms of two versions
def test_forms_printed_before_and_after_an_import_validate_against_their_own_version(
        tmp_path: Path, store_dir: Path) -> None:
    """Real rendering (LibreOffice) and extraction: the QR says which version each form was printed with."""
    from fixtures.scans import random_record
    from formsvc.extract.pipeline import extract_files
    from formsvc.render import render_document
    from formsvc.render.converter import get_converter
    from formsvc.service.criteria_imports import add_set

    try:
        v = default_registry().get("cdht-324-pl4").version
        old_data = random_record(901, "cdht-324-pl4")
        old_pdf = tmp_path / "in-truoc.pdf"
        old_pdf.write_bytes(render_document("cdht-self-assessment", old_data))
        src = tmp_path / "phu-luc-iv.docx"
        src.write_bytes(docx_headings(CDHT_SCANNED))
        registry = default_registry()
        # Loaded the one way a set is loaded after the build: stored, then its zones measured once.
        add_set(import_file(src, registry, base_id="cdht-324-pl4").data)
        new_data = random_record(902, "cdht-324-pl4")  # drawn from version 2: 8 indicators
        assert len(new_data["scores"]) == len(CDHT_SCANNED.indicators) != len(old_data["scores"])
        new_pdf = tmp_path / "in-sau.pdf"
        rendered = render_document("cdht-self-assessment", new_data)
        new_pdf.write_bytes(rendered)
    finally:
        get_converter().close()
    result = extract_files([old_pdf, new_pdf])
    assert result.errors == []
    old_doc, new_doc = sorted(result.documents, key=lambda d: d.subject.id or "")
    assert old_doc.criteria_set == f"cdht-324-pl4@{v}" and new_doc.criteria_set == f"cdht-324-pl4@{v + 1}"
    assert old_doc.scores == old_data["scores"] and new_doc.scores == new_data["scores"]
    assert old_doc.status == "valid" and new_doc.status == "valid", (old_doc.result, new_doc.result)
    assert old_doc.result is not None and old_doc.result.total == old_data["total_declared"]
    assert new_doc.result is not None and new_doc.result.total == new_data["total_declared"]
    # Zone data of loaded sets can be measured again for every released form version (after a template change):
    # the worker reads it, nothing renders at extraction.
    measured = sorted((tmp_path / "data" / "zones").rglob("*.json"))
    assert [p.name for p in measured] == [f"cdht-324-pl4@{v + 1}.json"]
    measured[0].unlink()
    assert sorted((tmp_path / "data" / "zones").rglob("*.json")) == []
    try:
        res = CliRunner().invoke(app, ["criteria", "zones"])
    finally:
        get_converter().close()
    assert res.exit_code == 0 and "1 tệp mới" in res.output, res.output
    assert extract_files([new_pdf]).documents[0].scores == new_data["scores"]
    # The new form shows the official wording without the provisional note.
    import pdfplumber

    def text_of(path: Path) -> str:
        with pdfplumber.open(path) as pdf:
            return " ".join(" ".join((p.extract_text() or "") for p in pdf.pages).split())

    old_text, new_text = text_of(old_pdf), text_of(new_pdf)
    assert f"(cdht-324-pl4 v{v}) Lưu ý: Nội dung tạm thời" in old_text
    assert f"(cdht-324-pl4 v{v + 1})" in new_text and "tạm thời" not in new_text
    assert "Biết tính toán và tư duy phản biện" in new_text


@pytest.mark.slow  # builds and opens a file that inflates to hundreds of MB
def test_a_docx_that_inflates_enormously_is_refused_before_parsing(tmp_path: Path) -> None:
    import zipfile

    bomb = tmp_path / "bom.docx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"<" + b" " * (250 * 1024 * 1024) + b">")
    assert bomb.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(CriteriaImportError) as err:
        import_file(bomb, load_registry())
    assert err.value.code == "criteria_import_too_large"


def test_base_is_recognised_by_wording_only_when_clear(tmp_path: Path) -> None:
    """Each built-in set's own wording, as a table without --base: recognised when one set is clearly closest,
    refused (naming the candidates) when sets composed from one another tie."""
    registry = load_registry()
    guessed = refused = 0
    for cset in registry:
        official = Official(cset.id, [(c.title, [(i.title, i.max_points) for i in c.indicators])
                                      for c in cset.criteria])
        path = tmp_path / f"{cset.id}.docx"
        path.write_bytes(docx_headings(official))
        twins = [o.id for o in registry if o.id != cset.id
                 and _as_lists(o.criteria) == _as_lists(cset.criteria)]
        if twins:  # e.g. the ĐVHT ranking and recognition sets share their wording
            with pytest.raises(CriteriaImportError) as err:
                import_file(path, registry)
            assert err.value.code == "criteria_import_base_unknown" and twins[0] in err.value.message
            refused += 1
            continue
        result = import_file(path, registry)
        assert result.base_guessed and result.base is not None and result.base.id == cset.id
        assert diff_sets(result.base, result.cset).counts["changed"] == 0
        guessed += 1
    assert guessed >= 3 and refused >= 1


def test_pending_imports_are_decided_once_and_stale_ones_forgotten(tmp_path: Path, store_dir: Path) -> None:
    import os
    import time

    from formsvc.criteria.store import PENDING_DAYS

    src = tmp_path / "phu-luc.docx"
    src.write_bytes(docx_headings(CDHT_FRAMEWORK))
    registry = default_registry()
    result = import_file(src, registry, base_id="cdht-324-pl1")
    store = get_store()
    old = store.stage(result.data, {"base": "cdht-324-pl1"})
    stale = time.time() - (PENDING_DAYS + 1) * 86400
    os.utime(store.pending_dir / f"{old}.json", (stale, stale))
    kept = store.stage(result.data, {"base": "cdht-324-pl1"})
    with pytest.raises(NotFoundError):
        store.pending(old)
    store.discard(kept)
    with pytest.raises(NotFoundError):
        store.accept(kept, registry, accepted_by="x")  # rejected: nothing to accept
    assert default_registry().get("cdht-324-pl1").version == registry.get("cdht-324-pl1").version
    with pytest.raises(NotFoundError):
        store.pending("../../etc/passwd")


def test_a_word_corrected_in_the_written_yaml_is_stored_with_accept(tmp_path: Path, store_dir: Path) -> None:
    """The OCR path: import a scan to YAML, fix the word OCR got wrong, store it."""
    src = tmp_path / "phu-luc.docx"
    src.write_bytes(docx_headings(CDHT_FRAMEWORK))
    out = tmp_path / "sua.yaml"
    runner = CliRunner()
    res = runner.invoke(app, ["criteria", "import", str(src), "--base", "cdht-324-pl1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    v = default_registry().get("cdht-324-pl1").version
    assert "chi tiêu trong gia đình" in out.read_text()
    out.write_text(out.read_text().replace("chi tiêu trong gia đình", "chi tiêu hợp lý trong gia đình"))
    res = runner.invoke(app, ["criteria", "accept", str(out)])
    assert res.exit_code == 0, res.output
    assert f"Đã lưu cdht-324-pl1 phiên bản {v + 1}" in res.output
    stored = default_registry().get("cdht-324-pl1")
    assert stored.version == v + 1 and "chi tiêu hợp lý trong gia đình" in stored.indicators[6].title
    builtin = tmp_path / "builtin.yaml"
    builtin.write_text("id: cdht-324-pl1\nversion: 9\n")
    res = runner.invoke(app, ["criteria", "accept", str(builtin)])
    assert res.exit_code != 0 and default_registry().get("cdht-324-pl1").version == v + 1
