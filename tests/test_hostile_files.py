"""Files that took down a worker or the API (issue 16, items 1-8), each bounded at its root: QR numbers, XLSX
rosters, print-pack size, TIFF frame counts, PDF page budgets and the worker's memory cap, JSON depth, file
name length in bytes, and error messages that never name a server path."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from fixtures.bad_inputs import LONG_VIETNAMESE_FILENAME, build_corpus
from formsvc.api.json_depth import DepthScanner
from formsvc.errors import FormsvcError
from formsvc.extract.budget import MB, Budget, Overrun, PageReader
from formsvc.extract.pages import check_file
from formsvc.extract.tiff import count_frames
from formsvc.payload import PagePayload
from formsvc.render.roster import read_roster
from formsvc.service.jobs import MAX_FILENAME_BYTES, safe_filename
from formsvc.settings import get_settings
from tests.servers import RedisServer
from tests.service_app import App, service_app

UNIT = "Trường THCS Hòa Bình"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set FORMSVC_* variables for one test; the cached settings are dropped before and after."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


# ---------------------------------------------------------------------------------------------- 1. QR numbers


def _payload(**changes: object) -> PagePayload:
    base: dict[str, object] = dict(form="cdht-self-assessment", template_version=1, criteria_set="cdht-324-pl4",
                                   subject_id=None, year=2024, page=1, pages=2, doc="a1b2c3d4e5")
    return PagePayload(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("changes", [
    {"pages": 200_000}, {"pages": 3_000_000}, {"pages": 10**12}, {"pages": 51}, {"pages": 0}, {"page": 0},
    {"page": 3, "pages": 2}, {"year": 1}, {"year": 99_999}, {"template_version": 10**9}, {"template_version": 0},
    {"year": 10**3999, "pages": 10**3999, "page": 10**3999},  # as many digits as a QR code holds
])
def test_every_number_in_a_qr_code_is_bounded(changes: dict[str, object]) -> None:
    payload = PagePayload.decode("|".join(["FSV1", "cdht-self-assessment", str(changes.get("template_version", 1)),
                                           "cdht-324-pl4", "-", str(changes.get("year", 2024)),
                                           f"{changes.get('page', 1)}/{changes.get('pages', 2)}", "a1b2c3d4e5"]))
    with pytest.raises(FormsvcError) as info:
        payload.check(max_pages=50)
    assert info.value.code == "payload_invalid"
    assert len(info.value.message) < 300  # never a list sized by the forged number


def test_a_real_payload_passes_the_bounds() -> None:
    _payload().check(max_pages=50)
    _payload(page=50, pages=50, year=None).check(max_pages=50)


# ---------------------------------------------------------------------------------------------- 2. XLSX rosters


def test_xlsx_roster_without_defusedxml_is_refused_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Họ và tên", "Năm sinh"])
    ws.append(["Lê Văn Tám", 1980])
    path = tmp_path / "ds.xlsx"
    wb.save(path)
    assert [p.full_name for p in read_roster(path).people] == ["Lê Văn Tám"]
    assert openpyxl.DEFUSEDXML  # installed (requirements.lock), so openpyxl parses sheets with it
    monkeypatch.setattr(openpyxl, "DEFUSEDXML", False)
    with pytest.raises(FormsvcError) as info:
        read_roster(path)
    assert info.value.code == "defusedxml_missing"


def test_xlsx_zip_bomb_is_refused_by_its_unzipped_size(tmp_path: Path, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("FORMSVC_MAX_ROSTER_UNPACKED_BYTES", str(1024 * 1024))
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Họ và tên", "Ghi chú"])
    for n in range(300):
        ws.append([f"Người {n}", "x" * 10_000])  # 3 MB of text, a few KB zipped
    path = tmp_path / "ds.xlsx"
    wb.save(path)
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(FormsvcError) as info:
        read_roster(path)
    assert info.value.code == "roster_too_large"


def test_roster_columns_are_capped(tmp_path: Path, settings_env: pytest.MonkeyPatch) -> None:
    settings_env.setenv("FORMSVC_MAX_ROSTER_COLUMNS", "3")
    path = tmp_path / "ds.csv"
    path.write_text("Họ và tên,Năm sinh,Đơn vị," + ",".join(f"c{i}" for i in range(5000)) + "\n"
                    "Lê Văn Tám,1980,Trường A," + ",".join("x" * 5000) + "\n", encoding="utf-8")
    people = read_roster(path).people
    assert [(p.full_name, p.birth_year, p.unit) for p in people] == [("Lê Văn Tám", 1980, "Trường A")]


# ---------------------------------------------------------------------------------------------- 3. print packs


def test_print_pack_over_the_form_cap_is_refused_before_rendering(tmp_path: Path,
                                                                  settings_env: pytest.MonkeyPatch) -> None:
    from formsvc.render.pack import print_pack

    settings_env.setenv("FORMSVC_MAX_PACK_FORMS", "2")
    settings_env.setenv("FORMSVC_SOFFICE_PATH", "/nonexistent/soffice")  # reaching LibreOffice would fail
    roster = tmp_path / "ds.csv"
    roster.write_text("Họ và tên,Năm sinh\nA Một,1980\nB Hai,1981\nC Ba,1982\n", encoding="utf-8")
    with pytest.raises(FormsvcError) as info:
        print_pack("cdht-self-assessment", roster, tmp_path / "pack.pdf", 2024)
    assert info.value.code == "pack_too_large" and "tối đa 2 phiếu" in info.value.message
    assert not (tmp_path / "pack.pdf").exists()


def test_print_pack_is_joined_from_parts_written_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More forms than one part holds: every form is there, in order, each starting on an odd page."""
    import pdfplumber

    from fixtures.roster_gen import write_roster
    from formsvc.render import pack
    from formsvc.render.converter import get_converter

    monkeypatch.setattr(pack, "PACK_CHUNK", 2)
    roster = write_roster(tmp_path / "ds.csv", 5, seed=3, groups=["Giáo viên"])
    try:
        report = pack.print_pack("cdht-self-assessment", roster, tmp_path / "pack.pdf", 2024)
    finally:
        get_converter().close()
    people = read_roster(roster).people
    with pdfplumber.open(tmp_path / "pack.pdf") as doc:
        assert report.pages == len(doc.pages) == 5 * 2
        firsts = [doc.pages[2 * i].extract_text() or "" for i in range(5)]
    for person, text in zip(people, firsts, strict=True):
        assert person.full_name.split()[-1] in text
    assert not list(tmp_path.glob(".pack-*")) and not list(tmp_path.glob("*.part"))


# ---------------------------------------------------------------------------------------------- 4. TIFF frames


def _tiff(frames: int, *, loop: bool = False) -> bytes:
    """Frames sharing one 8×8 strip, 6-entry directories (as the corpus's tiff_many_frames)."""
    strip = bytes(8)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + len(strip)) + strip)
    first, size = 8 + len(strip), 2 + 6 * 12 + 4
    for n in range(frames):
        nxt = first if loop and n == frames - 1 else (0 if n == frames - 1 else first + (n + 1) * size)
        out += struct.pack("<H", 6)
        for tag, value in ((256, 8), (257, 8), (262, 0), (273, 8), (278, 8), (279, len(strip))):
            out += struct.pack("<HHII", tag, 4, 1, value)
        out += struct.pack("<I", nxt)
    return bytes(out)


def test_tiff_of_40000_frames_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "tap.tif"
    path.write_bytes(_tiff(40_000))  # 3 MB, the case: PIL's n_frames took 33 s on it
    started = time.process_time()
    error = check_file(path, "tap.tif", max_pages=1200, max_pixels=60_000_000)
    assert time.process_time() - started < 1.0
    assert error is not None and error.code == "too_many_pages" and error.message.startswith("tap.tif: hơn 1200")
    assert count_frames(path, stop_after=1200) == 1201
    assert count_frames(path, stop_after=10**6) == 40_000


def test_tiff_whose_directories_loop_is_unreadable_not_endless(tmp_path: Path) -> None:
    path = tmp_path / "vong.tif"
    path.write_bytes(_tiff(3, loop=True))
    with pytest.raises(ValueError, match="loops"):
        count_frames(path, stop_after=1200)
    error = check_file(path, "vong.tif", max_pages=1200, max_pixels=60_000_000)
    assert error is not None and error.code == "image_unreadable"


def test_big_tiff_frames_are_counted(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "big.tif"
    frames = [Image.new("L", (8, 8), n) for n in range(7)]
    frames[0].save(path, save_all=True, append_images=frames[1:], big_tiff=True)
    assert path.read_bytes()[:4] == b"II+\x00"
    assert count_frames(path, stop_after=100) == 7 and count_frames(path, stop_after=3) == 4


# ---------------------------------------------------------------------------------------------- 5. page budgets


def _open() -> dict[str, int]:
    return {}


def _read(_: dict[str, int], index: int) -> int:
    if index == 1:  # over the memory budget: 1 GB more than the child had
        block = np.ones(1024 * MB, dtype=np.uint8)
        return int(block[-1])
    if index == 2:  # over the time budget
        time.sleep(60)
    return index * 10


def test_a_page_over_its_budget_is_an_overrun_and_the_next_page_is_read() -> None:
    reader: PageReader[dict[str, int], int] = PageReader(_open, _read, Budget(seconds=3, memory_mb=256))
    started = time.monotonic()
    with reader:
        assert reader.read(0) == 0
        assert reader.read(1) == Overrun("memory")
        assert reader.read(3) == 30
        assert reader.read(2) == Overrun("time")
        assert reader.read(4) == 40
    assert time.monotonic() - started < 15


_WORKER_CAP = """
import numpy as np
from formsvc.extract.budget import limit_worker_memory
limit_worker_memory({mb})
try:
    np.ones({alloc_mb} * 1024 * 1024, dtype=np.uint8)
except MemoryError:
    print("refused")
else:
    print("allocated")
"""


def test_worker_memory_limit_caps_the_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for alloc_mb, expected in ((256, "allocated"), (3000, "refused")):
        out = subprocess.run([sys.executable, "-c", _WORKER_CAP.format(mb=2048, alloc_mb=alloc_mb)], env=env,
                             capture_output=True, text=True, timeout=120, check=True)
        assert out.stdout.strip() == expected, out.stderr


# ---------------------------------------------------------------------------------------------- 6. JSON depth


@pytest.mark.parametrize(("pieces", "depth_ok"), [
    ([b'{"a": [1, {"b": [2]}]}'], True),  # depth 4
    ([b'{"a": "[[[[[[[[[[[[[[[[["}'], True),  # brackets inside a string are text
    ([b'{"a": "\\"[[[[[[[[[[[[", "b": 1}'], True),  # an escaped quote does not end the string
    ([b'{"a": "x\\', b'"[[[[[[[[[[[[[[[[", "b": 1}'], True),  # ... also across a piece boundary
    ([b'{"a": "\\\\"', b", [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}"], False),  # an escaped backslash does
    ([b"[" * 17], False),
    ([b"[" * 8, b"{" * 9], False),
])
def test_depth_scanner(pieces: list[bytes], depth_ok: bool) -> None:
    scanner = DepthScanner(16)
    assert all([scanner.feed(p) for p in pieces]) is depth_ok


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
        database_url: str | None) -> Iterator[App]:
    with service_app(tmp_path_factory.mktemp("svc"), redis_server.url, database_url) as a:
        yield a


def test_deeply_nested_json_is_422_with_a_code_on_every_json_route(app: App, tmp_path: Path) -> None:
    corpus = {case.name: path for case, path in build_corpus(tmp_path / "bad") if case.kind == "json"}
    clerk = app.as_(app.key("clerk", UNIT))
    admin = app.as_(app.key("admin"))
    deep = corpus["json_deep_nesting"].read_bytes()
    r = app.client.post("/v1/validate", content=deep, headers={**clerk, "content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "json_too_deep"), r.text
    row = app.add_record(UNIT)
    nested = b'{"fields": {"extra.ghi_chu": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    for headers in ({"content-type": "application/json"}, {}):  # FastAPI parses an untyped body as JSON too
        r = app.client.patch(f"/v1/records/{row.id}", content=nested, headers={**admin, **headers})
        assert (r.status_code, r.json()["code"]) == (422, "json_too_deep"), r.text
    r = app.client.post("/v1/webhooks", content=b'{"url": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                        headers={**admin, "content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (422, "json_too_deep")
    # A shallow body still goes through (the middleware hands on what it read).
    r = app.client.patch(f"/v1/records/{row.id}", json={"fields": {"subject.unit": UNIT}}, headers=admin)
    assert r.status_code == 200, r.text
    assert app.client.get("/v1/health").status_code == 200


# ---------------------------------------------------------------------------------------------- 7, 8. names


def test_file_names_are_capped_by_bytes_keeping_the_extension() -> None:
    name = safe_filename(LONG_VIETNAMESE_FILENAME)
    assert len(name.encode()) <= MAX_FILENAME_BYTES and name.endswith(".png") and set(name[:-4]) == {"ệ"}
    assert safe_filename("ệ" * 300) == "ệ" * (MAX_FILENAME_BYTES // 3)
    assert safe_filename("a" * 300 + "." + "b" * 300).encode() == ("a" * 300 + "." + "b" * 300)[:200].encode()
    assert safe_filename("Bản tự đánh giá.pdf") == "Bản tự đánh giá.pdf"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / name).write_bytes(b"")  # the file system takes it


def test_upload_errors_name_the_uploaded_file_never_a_server_path(app: App, tmp_path: Path) -> None:
    corpus = {case.name: (case, path) for case, path in build_corpus(tmp_path / "bad")}
    clerk = app.as_(app.key("clerk", UNIT))
    case, path = corpus["png_header_only"]
    r = app.client.post("/v1/submissions", files={"files": (case.filename, path.read_bytes(), case.content_type)},
                        headers=clerk)
    assert (r.status_code, r.json()["code"]) == (422, "image_unreadable"), r.text
    text = r.text
    assert case.filename in r.json()["message"]
    assert "formsvc-up-" not in text and tempfile.gettempdir() not in text and str(tmp_path) not in text


def test_roster_errors_never_name_a_server_path(tmp_path: Path) -> None:
    path = tmp_path / "ds.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)  # a broken zip
    with pytest.raises(FormsvcError) as info:
        read_roster(path)
    assert str(tmp_path) not in info.value.message and "ds.xlsx" in info.value.message
    broken = tmp_path / "ds.csv"
    broken.write_bytes(io.BytesIO("Họ và tên\nLê\n".encode("utf-16")).getvalue())
    with pytest.raises(FormsvcError) as info:
        read_roster(broken)
    assert str(tmp_path) not in info.value.message and "ds.csv" in info.value.message
