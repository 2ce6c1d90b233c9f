"""Phone photos as messaging apps forward them (≈ 1280 px on the long side, ≈ 100 dpi on the page, perspective,
a shadow, JPEG): typed scores are read as print, names come back, and the sheet needs no person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from fixtures.captures import phone_photo
from fixtures.scans import random_record, rasterise
from formsvc.extract.pipeline import extract_files
from formsvc.render import render_document
from formsvc.render.converter import get_converter
from formsvc.settings import get_settings

pytestmark = pytest.mark.slow  # renders with LibreOffice and reads pages with Tesseract

@pytest.fixture(scope="module", autouse=True)
def _close() -> Iterator[None]:
    yield
    get_converter().close()


@pytest.mark.parametrize("seed", [8000, 8003])
def test_low_resolution_phone_photo_of_typed_scores(seed: int, tmp_path: Path) -> None:
    truth = random_record(seed)
    rng = np.random.default_rng(seed)
    files = []
    for n, page in enumerate(rasterise(render_document("cdht-self-assessment", truth), 200)):
        photo = phone_photo(page, rng)
        assert max(photo.shape) == 1280
        files.append(tmp_path / f"p{n}.jpg")
        cv2.imwrite(str(files[-1]), photo, [cv2.IMWRITE_JPEG_QUALITY, 70])
    [doc] = extract_files(files).documents
    assert doc.scores == truth["scores"] and doc.total_declared == truth["total_declared"]
    assert doc.subject.full_name == truth["subject"]["full_name"]
    # Print read as print: nothing on this sheet needs a person.
    threshold = get_settings().review_confidence
    assert [f.name for f in doc.fields if f.name.startswith("scores.") and f.confidence < threshold] == []
