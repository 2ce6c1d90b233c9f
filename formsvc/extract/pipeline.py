"""The ingestion pipeline, top to bottom: pages -> identify -> align -> read -> parse -> validate.

Pages are streamed one at a time (never all images in memory); with jobs > 1 page work runs in a process
pool (Tesseract is never driven from threads). Anything that cannot be placed becomes a PageError with a
Vietnamese message, and the rest of the batch goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from formsvc.criteria import CriteriaRegistry, default_registry
from formsvc.errors import FormsvcError
from formsvc.extract.align import align
from formsvc.extract.identify import identify
from formsvc.extract.pages import Page, iter_pages
from formsvc.extract.parse import PageFields, build_record
from formsvc.extract.read import FieldRead, read_digital, read_scanned
from formsvc.extract.types import PageError
from formsvc.payload import PagePayload
from formsvc.records import Record
from formsvc.render.registry import list_forms
from formsvc.render.zones import form_zones
from formsvc.settings import get_settings
from formsvc.validation import validate_with_registry


@dataclass
class ExtractionResult:
    documents: list[Record] = field(default_factory=list)
    errors: list[PageError] = field(default_factory=list)


@dataclass
class PageResult:
    file: str
    number: int
    payload: PagePayload | None = None
    reads: list[FieldRead] = field(default_factory=list)
    error: PageError | None = None
    method: str = ""


def process_page(page: Page) -> PageResult:
    """Identify, align and read one page (runs in a worker process when jobs > 1)."""
    result = PageResult(page.file, page.number)
    where = f"{page.file}, trang {page.number}"
    ident = identify(page.image)
    if ident is None:
        result.error = PageError(
            page.file, page.number, "page_unidentified",
            f"{where}: không tìm thấy mã QR của biểu mẫu formsvc; trang chưa được xếp vào phiếu nào.")
        return result
    payload = ident.payload
    form = next((f for f in list_forms() if f.id == payload.form), None)
    if form is None or form.template_version != payload.template_version:
        result.error = PageError(page.file, page.number, "form_unknown",
                                 f"{where}: biểu mẫu '{payload.form}' phiên bản {payload.template_version} không có.")
        return result
    try:
        zones = form_zones(payload.form, payload.criteria_set).on_page(payload.page)
    except FormsvcError as exc:
        result.error = PageError(page.file, page.number, exc.code, f"{where}: {exc.message}")
        return result
    result.payload = payload
    if page.digital:
        result.reads = read_digital(zones, page.words, page.dpi)
        result.method = "text_layer"
        return result
    aligned = align(page.image, page.dpi, ident.corners)
    if aligned is None:
        result.error = PageError(page.file, page.number, "align_failed",
                                 f"{where}: không định vị được trang (dấu góc và mã QR bị hỏng).")
        result.payload = None
        return result
    result.reads = read_scanned(zones, aligned.image, page.dpi)
    result.method = aligned.method
    return result


def _pages(paths: Sequence[Path], errors: list[PageError]) -> Iterator[Page]:
    s = get_settings()
    for path in paths:
        for item in iter_pages(Path(path), dpi=s.raster_dpi, max_pages=s.max_pages_per_file,
                               max_pixels=s.max_image_pixels):
            if isinstance(item, PageError):
                errors.append(item)
            else:
                yield item


def _init_worker() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"


def _results(pages: Iterator[Page], jobs: int) -> Iterator[PageResult]:
    if jobs <= 1:
        for page in pages:
            yield process_page(page)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
        pending: list[Future[PageResult]] = []
        for page in pages:
            pending.append(pool.submit(process_page, page))
            while len(pending) >= 2 * jobs:  # bounded in flight: memory stays flat on long files
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def extract_files(paths: Sequence[Path], *, registry: CriteriaRegistry | None = None,
                  progress: Callable[[int, int], None] | None = None, jobs: int = 1) -> ExtractionResult:
    registry = registry or default_registry()
    out = ExtractionResult()
    docs: dict[str, dict[int, PageFields]] = {}
    order: list[str] = []
    done = 0
    for res in _results(_pages(paths, out.errors), jobs):
        done += 1
        if progress:
            progress(done, done)
        if res.error is not None or res.payload is None:
            if res.error:
                out.errors.append(res.error)
            continue
        doc = docs.setdefault(res.payload.doc, {})
        if res.payload.doc not in order:
            order.append(res.payload.doc)
        if res.payload.page in doc:
            out.errors.append(PageError(res.file, res.number, "page_duplicate",
                                        f"{res.file}, trang {res.number}: trang {res.payload.page} của phiếu này "
                                        "đã có (quét trùng); bỏ qua bản sau."))
            continue
        doc[res.payload.page] = PageFields(res.payload, res.reads)
    threshold = get_settings().review_confidence
    for doc_id in order:
        pages = list(docs[doc_id].values())
        expected = pages[0].payload.pages
        missing = sorted(set(range(1, expected + 1)) - set(docs[doc_id]))
        record, reasons = build_record(pages, missing_pages=missing, registry=registry)
        out.documents.append(validate_with_registry(record, registry, review_confidence=threshold,
                                                    extra_reasons=reasons))
    return out
