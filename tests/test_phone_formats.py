"""An iPhone's own photos are HEIC (sent by mail, AirDrop or a cable; messaging apps send JPEG): read like any photo,
turned upright as the phone shot them; so are AVIF and WebP. A broken or oversized HEIC is refused with a clear
error, never a crash."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures.captures import phone_photo
from fixtures.scans import random_record, rasterise
from formsvc.extract.pages import check_file, iter_pages, sniff
from formsvc.extract.pipeline import count_pages, extract_files
from formsvc.extract.types import PageError
from formsvc.render import render_document

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_converter")]

ORIENTATION = 0x0112  # EXIF tag


def _heic(rgb: np.ndarray, path: Path, orientation: int = 1, quality: int = 60) -> Path:
    """`rgb` saved as an iPhone does: pixels as the sensor held them, the way up recorded beside them."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(rgb).save(path, format="HEIF", quality=quality, exif=exif.tobytes())
    return path


def test_heic_is_told_apart_by_its_brand() -> None:
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00") == "image"
    assert sniff(b"\x00\x00\x00\x1cftypmif1\x00\x00") == "image"
    assert sniff(b"\x00\x00\x00\x1cftypavif\x00\x00") == "image"
    assert sniff(b"RIFF\x62\xd5\x01\x00WEBPVP8 ") == "image"
    # An MP4 video and a WAV sound share the containers, not the brands.
    assert sniff(b"\x00\x00\x00\x18ftypisom\x00\x00") is None
    assert sniff(b"RIFF\x62\xd5\x01\x00WAVEfmt ") is None


@pytest.mark.parametrize("fmt", ["AVIF", "WEBP"])
def test_other_phone_and_web_formats_are_read(fmt: str, tmp_path: Path) -> None:
    """AVIF (newer Android phones) and WebP (a picture saved from a web page or a chat in a browser)."""
    truth = random_record(8101)
    files = []
    for n, page in enumerate(rasterise(render_document("cdht-self-assessment", truth), 200)):
        files.append(tmp_path / f"p{n}.{fmt.lower()}")
        Image.fromarray(np.dstack([page] * 3)).save(files[-1], format=fmt, quality=70)
        assert check_file(files[-1], files[-1].name, max_pages=10, max_pixels=50_000_000) is None
    [doc] = extract_files(files).documents
    assert doc.scores == truth["scores"] and doc.subject.full_name == truth["subject"]["full_name"]


def test_iphone_photo_of_a_typed_sheet_is_read_upright(tmp_path: Path) -> None:
    truth = random_record(8100)
    rng = np.random.default_rng(8100)
    files = []
    for n, page in enumerate(rasterise(render_document("cdht-self-assessment", truth), 200)):
        grey = phone_photo(page, rng)
        rgb = np.dstack([grey, grey, (grey * 0.96).astype(np.uint8)])  # a warm indoor light
        # The sensor holds the portrait page on its side; EXIF orientation 6 says: turn it a quarter clockwise.
        files.append(_heic(np.ascontiguousarray(np.rot90(rgb, 1)), tmp_path / f"IMG_{n}.HEIC", orientation=6))
    assert count_pages(files) == 2
    [read] = list(iter_pages(files[0], dpi=200, max_pages=10, max_pixels=50_000_000))
    assert not isinstance(read, PageError) and read.image.shape[0] > read.image.shape[1]  # upright: portrait
    result = extract_files(files)
    assert result.errors == []
    [doc] = result.documents
    assert doc.scores == truth["scores"] and doc.total_declared == truth["total_declared"]
    assert doc.subject.full_name == truth["subject"]["full_name"]


def test_broken_heic_is_refused_clearly(tmp_path: Path) -> None:
    whole = io.BytesIO()
    Image.fromarray(np.full((600, 500, 3), 200, np.uint8)).save(whole, format="HEIF")
    cut = tmp_path / "cut.heic"
    cut.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    error = check_file(cut, "cut.heic", max_pages=10, max_pixels=10_000_000)
    assert error is not None and error.code == "image_unreadable" and "cut.heic" in error.message
    [item] = list(iter_pages(cut, dpi=200, max_pages=10, max_pixels=10_000_000))
    assert isinstance(item, PageError) and item.code == "image_unreadable"


def test_oversized_heic_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    big = _heic(np.full((2000, 1500, 3), 255, np.uint8), tmp_path / "big.heic", quality=30)
    error = check_file(big, "big.heic", max_pages=10, max_pixels=1_000_000)
    assert error is not None and error.code == "image_too_large"
    items = list(iter_pages(big, dpi=200, max_pages=10, max_pixels=1_000_000))
    assert [i.code for i in items if isinstance(i, PageError)] == ["image_too_large"]
