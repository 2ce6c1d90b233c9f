"""Helpers for rendering tests: rasterise pages, read QR codes and markers like the extractor will."""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
import pdfplumber
import pypdfium2 as pdfium
import zxingcpp
from pypdf import PdfReader

from formsvc import layout


def raster_pages(pdf: bytes, dpi: int = 150) -> list[np.ndarray]:
    doc = pdfium.PdfDocument(pdf)
    try:
        return [np.asarray(doc[i].render(scale=dpi / 72, grayscale=True).to_pil()) for i in range(len(doc))]
    finally:
        doc.close()


def qr_texts(image: np.ndarray) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def marker_centres(image: np.ndarray) -> dict[int, tuple[float, float]]:
    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, layout.MARKER_DICT))
    detector = cv2.aruco.ArucoDetector(dictionary, cv2.aruco.DetectorParameters())
    corners, ids, _ = detector.detectMarkers(image)
    if ids is None:
        return {}
    return {int(i): tuple(c[0].mean(axis=0)) for i, c in zip(ids.flatten(), corners, strict=True)}


def page_texts(pdf: bytes) -> list[str]:
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return [p.extract_text() or "" for p in doc.pages]


def fonts_embedded(pdf: bytes) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        fonts: Any = page.get("/Resources", {}).get("/Font", {})
        stack = [fonts]
        while stack:
            res = stack.pop()
            for ref in res.values():
                font = ref.get_object()
                descendants = font.get("/DescendantFonts")
                targets = [d.get_object() for d in descendants] if descendants else [font]
                for t in targets:
                    desc = t.get("/FontDescriptor")
                    desc = desc.get_object() if desc is not None else {}
                    out[str(font.get("/BaseFont"))] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
        xobjects: Any = page.get("/Resources", {}).get("/XObject", {})
        for ref in xobjects.values():
            sub = ref.get_object().get("/Resources", {}).get("/Font", {})
            for fref in sub.values():
                font = fref.get_object()
                desc = font.get("/FontDescriptor")
                desc = desc.get_object() if desc is not None else {}
                out[str(font.get("/BaseFont"))] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    return out


def page_sizes_mm(pdf: bytes) -> list[tuple[float, float]]:
    return [(round(float(p.mediabox.width) * 25.4 / 72, 1), round(float(p.mediabox.height) * 25.4 / 72, 1))
            for p in PdfReader(io.BytesIO(pdf)).pages]
