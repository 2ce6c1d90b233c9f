"""The ingestion pipeline, top to bottom: pages -> identify -> align -> read -> parse (-> validate, elsewhere).

Pages are streamed one at a time (never all images in memory); with jobs > 1 page work runs in a process
pool (Tesseract is never driven from threads). Anything that cannot be placed becomes a PageError with a
Vietnamese message, and the rest of the batch goes on.

Extraction never validates: `read_files` hands each document over with its own per-field findings, and the caller
validates once (formsvc.validation.batch); `extract_files` is that pair for the CLI and tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from formsvc import layout
from formsvc.criteria import CriteriaRegistry, default_registry
from formsvc.criteria.store import read_ref
from formsvc.errors import FormsvcError
from formsvc.extract import minutes as _minutes  # noqa: F401  (registers the minutes reader)
from formsvc.extract.align import PageMatrix, align
from formsvc.extract.foreign import classify_page
from formsvc.extract.identify import ID_LINE_UNCHECKED, identify, identify_own_page, known_ids
from formsvc.extract.ocr import PSM_AUTO, read_words, upright_turns
from formsvc.extract.pages import HEAD_BYTES, Page, frame_count, iter_pages, sniff
from formsvc.extract.parse import PageFields, build_record
from formsvc.extract.placement import Neighbour, Orphan, place
from formsvc.extract.print_match import with_printed_name
from formsvc.extract.read import FieldRead, read_digital, read_scanned
from formsvc.extract.readers import reader_for
from formsvc.extract.snap import framed, snapped
from formsvc.extract.table_grid import PageTables, find_tables
from formsvc.extract.table_read import PageReading, read_tables
from formsvc.extract.types import PageError, PageText, Word
from formsvc.forms import find_form
from formsvc.logs import stage
from formsvc.payload import PagePayload
from formsvc.records import Reason, Record
from formsvc.settings import get_settings
from formsvc.validation.batch import validate_batch
from formsvc.zonedata import load_zones

log = logging.getLogger(__name__)


@dataclass
class ExtractionResult:
    documents: list[Record] = field(default_factory=list)
    # Parallel to `documents`: each document's own findings (reasons tied to its fields), for the one validation.
    findings: list[list[Reason]] = field(default_factory=list)
    errors: list[PageError] = field(default_factory=list)
    # Parallel to `documents`: a stable key of the source document (same input -> same key), and the stored
    # page images (document page number -> reference returned by the page sink) for reviewers' crops.
    keys: list[str] = field(default_factory=list)
    pages: list[dict[int, str]] = field(default_factory=list)


@dataclass
class PageResult:
    file: str
    number: int
    payload: PagePayload | None = None
    reads: list[FieldRead] = field(default_factory=list)
    error: PageError | None = None
    method: str = ""
    text: PageText | None = None  # QR-less pages: their words, for the foreign-layout readers
    kind: str = ""
    image: bytes | None = None  # the page as read (aligned when scanned), JPEG, only when asked for
    # Identified by an id line whose check digits were unreadable: read, but kept only if a page identified for
    # certain names the same document (read_files); otherwise this error is reported.
    unconfirmed: PageError | None = None
    # formsvc's markers but no identity (`error` says so): kept whole for read_files to place by its neighbours.
    orphan: Orphan | None = None
    placed: bool = False  # identified by its place in the upload (placement.place), not by anything printed on it
    bent: bool = False  # its markers do not lie on one plane (align.PageMatrix.bent): any box may be off its row
    framed: frozenset[str] = frozenset()  # on a bent page, the boxes placed by the table's lines (snap.framed)
    bilevel: bool = False  # scanned in black and white (pages.Page.bilevel): its printed text may have lost marks


def page_text(page: Page, image: np.ndarray | None = None) -> PageText:
    """Words of a page: its text layer when digital, otherwise one full-page Tesseract `vie` pass over `image`
    (the page straightened or aligned; the page as scanned by default)."""
    if page.digital:
        words = page.words
        source = "text_layer"
    else:
        words = [Word(w.text, w.box, w.confidence)
                 for w in read_words(page.image if image is None else image, "vie", PSM_AUTO)]
        source = "ocr"
    h, w = (page.image if image is None else image).shape
    return PageText(words=words, width=w, height=h, dpi=page.dpi, source=source,  # type: ignore[arg-type]
                    page_number=page.number, file=page.file)


def _jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return buf.tobytes() if ok else b""


def process_page(page: Page, keep_image: bool = False, names: Mapping[str, str] | None = None) -> PageResult:
    """Identify, align and read one page (runs in a worker process when jobs > 1). With `keep_image`, the page
    as read (aligned when scanned) comes back as JPEG, only for pages that became part of a document. `names`: the
    roster the forms were printed from (roster id -> name), to look for a printed name OCR could not read; in a
    worker process, those it was started with by default."""
    with stage(log, "page", file=Path(page.file).name, page=page.number) as fields:
        result, image = _read_page(page, _worker_names if names is None else names)
        fields["outcome"] = result.error.code if result.error else (result.kind or "own_form")
    if keep_image and (result.payload is not None or result.text is not None):
        result.image = _jpeg(image)
    return result


def _foreign_reading(page: Page, image: np.ndarray) -> tuple[PageTables | None, np.ndarray, PageText, str]:
    """Tables, the image every box refers to, words and kind of a page not printed by formsvc. A scan is
    straightened first: its table's rules must be level to be found."""
    tables = None if page.digital else find_tables(image, page.dpi)
    image = image if tables is None else tables.image
    text = page_text(page, image)
    return tables, image, text, classify_page(text)


def _read_page(page: Page, names: Mapping[str, str] | None = None) -> tuple[PageResult, np.ndarray]:
    """The page's result and the image its field boxes refer to."""
    result = PageResult(page.file, page.number)
    where = f"{page.file}, trang {page.number}"
    ident = identify(page.image)
    fallback = None
    if ident is None:
        # No code decoded as the page is: formsvc's markers say whether it is an own page all the same.
        seen: list[str] = []
        ident, fallback = identify_own_page(page.image, page.dpi, seen)
        if ident is None and fallback is not None:
            result.error = _own_unidentified(page, where)
            result.orphan = Orphan(page, fallback, seen)
            return result, page.image
        if ident is not None and ident.how == ID_LINE_UNCHECKED:
            result.unconfirmed = _own_unidentified(page, where)
    if ident is None:
        # Not printed by formsvc: classify by its title and leave it to the foreign-layout readers.
        tables, image, text, kind = _foreign_reading(page, page.image)
        if kind == "unknown" and not page.digital:
            # Scanned upside down or sideways, a page reads as nothing; only then is its orientation asked for.
            turns = upright_turns(page.image, page.dpi)
            if turns:
                tables, image, text, kind = _foreign_reading(page, np.ascontiguousarray(np.rot90(page.image, turns)))
        if any(w.text.startswith("FSV1") for w in text.words):
            # Markers and codes gone, but the printed id line shows it: an own form is never read as another layout.
            result.error = _own_unidentified(page, where)
        elif kind == "unknown":
            result.error = PageError(
                page.file, page.number, "page_unidentified",
                f"{where}: không có mã QR của formsvc và không nhận ra biểu mẫu; trang chưa được xếp vào phiếu nào.")
        else:
            if tables is not None:
                text = PageReading(**vars(text), table_reads=read_tables(tables, page.number, page.dpi))
            result.text, result.kind = text, kind
        return result, image
    try:
        ident.payload.check(get_settings().max_form_pages)
    except FormsvcError as exc:
        result.error = PageError(page.file, page.number, exc.code, f"{where}: {exc.message}")
        return result, page.image
    # A bare set id on a form printed before its set had stored versions means the data files' version.
    payload = replace(ident.payload, criteria_set=read_ref(default_registry(), ident.payload.criteria_set))
    return _read_identified(page, payload, result, ident.codes, fallback, names)


def _read_identified(page: Page, payload: PagePayload, result: PageResult,
                     codes: Sequence[tuple[np.ndarray, layout.Box]] = (), fallback: PageMatrix | None = None,
                     names: Mapping[str, str] | None = None) -> tuple[PageResult, np.ndarray]:
    """`result` for `page` read as `payload` says (its criteria set resolved), aligned by `codes` and markers."""
    where = f"{page.file}, trang {page.number}"
    form = find_form(payload.form)
    if form is None or payload.template_version not in form.released_versions() or form.reader == "none":
        result.error = PageError(page.file, page.number, "form_unknown",
                                 f"{where}: biểu mẫu '{payload.form}' phiên bản {payload.template_version} không có.")
        return result, page.image
    # A table that grows with its content is read like its typed counterpart (the document kind names the reader).
    table_kind = form.document if form.reader == "table" else None
    if table_kind is not None and result.unconfirmed is not None:
        result.error = result.unconfirmed  # grouped by the copy's key as read: only a checked key may do that
        return result, page.image
    zones = None
    if table_kind is None:
        try:
            # Zone geometry is data made when the template (or the criteria set) was built: never rendered here.
            zones = load_zones(form, payload.template_version, payload.criteria_set).on_page(payload.page)
        except FormsvcError as exc:  # ZonesMissing among them
            result.error = PageError(page.file, page.number, exc.code, f"{where}: {exc.message}")
            return result, page.image
    aligned = None if page.digital else align(page.image, page.dpi, codes, fallback)
    if not page.digital and aligned is None:
        result.error = PageError(page.file, page.number, "align_failed",
                                 f"{where}: không định vị được trang (dấu góc và mã QR bị hỏng).")
        return result, page.image
    image = page.image if aligned is None else aligned.image
    result.bilevel = page.bilevel
    if aligned is not None:
        result.method, result.bent = aligned.method, aligned.bent
    if table_kind is not None:
        # Its table grows with the content: read like its typed counterpart, from the rules of the table.
        reads = [] if aligned is None else read_tables(find_tables(image, page.dpi, deskew=False),  # already level
                                                       page.number, page.dpi)
        result.text = PageReading(**vars(page_text(page, image)), payload=payload, table_reads=reads)
        result.kind = table_kind
        return result, image
    assert zones is not None
    result.payload = payload
    if aligned is None:
        result.reads = read_digital(zones, page.words, page.dpi)
        result.method = "text_layer"
    else:
        luma = None if page.luma is None else aligned.warp(page.luma)
        seen = image
        if aligned.bent:
            fit = framed(zones, image, page.dpi, aligned.bend_mm)
            zones, result.framed = fit.zones, fit.boxes
            seen, luma = fit.levelled(image), None if luma is None else fit.levelled(luma)
        else:
            zones = snapped(zones, image, page.dpi)
        result.reads = read_scanned(zones, seen, page.dpi, luma)
        if names:
            result.reads = with_printed_name(result.reads, seen, payload, names)
    return result, image


def _placed(res: PageResult, before: Neighbour | None, after: Neighbour | None, keep_image: bool) -> PageResult:
    """The orphan page `res` read as the page its neighbours place it as; without a place (or if it cannot be read
    so), `res` itself: its error stands."""
    assert res.orphan is not None
    orphan, res.orphan = res.orphan, None  # the page's pixels are not kept past this
    payload = place(orphan, before, after, *known_ids())
    if payload is None:
        return res
    # No roster names: the page's identity is its neighbours' guess, so its name line must be read, not recognised.
    again, image = _read_identified(orphan.page, payload, PageResult(res.file, res.number), (), orphan.matrix)
    if again.error is not None or again.payload is None:
        return res
    again.placed, again.error = True, res.error  # the error is reported if the place is taken after all
    if keep_image:
        again.image = _jpeg(image)
    return again


def _confirms(doc: dict[int, PageFields], payload: PagePayload) -> bool:
    """A document read from pages identified for certain confirms an unchecked id line that names it: the same
    printed copy (its key), form, template, criteria set, person, year and page count, and a page it is missing.
    A misread line naming another copy's 10-digit key by chance is far less likely than a misread check digit."""
    if not doc or payload.page in doc:
        return False
    known = next(iter(doc.values())).payload
    return replace(known, page=payload.page) == payload


def _own_unidentified(page: Page, where: str) -> PageError:
    return PageError(page.file, page.number, "own_page_unidentified",
                     f"{where}: trang biểu mẫu của formsvc nhưng cả hai mã QR và dòng mã phiếu in ở lề dưới đều không "
                     "đọc được (bị gấp, bẩn, đóng dấu đè hoặc nằm ngoài ảnh); hãy quét hoặc chụp lại trang này rõ "
                     "hơn, đặt trang thẳng và thấy đủ cả bốn góc.")


def count_pages(paths: Sequence[Path]) -> int:
    """Pages in a batch, counted cheaply up front so progress can say 'n of N' (unreadable files count 0)."""
    total = 0
    limit = get_settings().max_pages_per_file
    for path in paths:
        try:
            with open(path, "rb") as fh:
                kind = sniff(fh.read(HEAD_BYTES))
            if kind == "pdf":
                doc = pdfium.PdfDocument(str(path))
                total += len(doc)
                doc.close()
            elif kind == "image":
                with Image.open(path) as img:
                    total += min(frame_count(path, img, limit), limit)
        except (OSError, pdfium.PdfiumError, ValueError, Image.DecompressionBombError):
            continue
    return total


def _pages(paths: Sequence[Path], errors: list[PageError]) -> Iterator[Page]:
    s = get_settings()
    for path in paths:
        for item in iter_pages(Path(path), dpi=s.raster_dpi, max_pages=s.max_pages_per_file,
                               max_pixels=s.max_image_pixels):
            if isinstance(item, PageError):
                errors.append(item)
            else:
                yield item


# Pages a process may have waiting or in hand (see _results).
IN_FLIGHT = 4


# The roster names of the read a worker process serves (read_files' `names`), handed over once when it starts: a
# unit's rosters may name thousands, too many to send with every page.
_worker_names: Mapping[str, str] = {}


def _init_worker(names: Mapping[str, str]) -> None:
    global _worker_names
    os.environ["OMP_THREAD_LIMIT"] = "1"
    _worker_names = names


@contextlib.contextmanager
def _pool(jobs: int, names: Mapping[str, str]) -> Iterator[ProcessPoolExecutor | None]:
    if jobs <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(names,)) as pool:
        yield pool


def _results(pages: Iterator[Page], pool: ProcessPoolExecutor | None, jobs: int, keep_image: bool,
             names: Mapping[str, str]) -> Iterator[PageResult]:
    """Each page's result, in the order of the pages (placement needs each page's neighbours)."""
    if pool is None:
        for page in pages:
            yield process_page(page, keep_image, names)
        return
    pending: list[Future[PageResult]] = []
    for page in pages:
        pending.append(pool.submit(process_page, page, keep_image))
        # Bounded in flight, so memory stays flat on long files; wide enough that one slow page (a damaged one
        # tries every way to be identified) does not leave the other processes idle while it is waited for.
        while len(pending) >= IN_FLIGHT * jobs:
            yield pending.pop(0).result()
    for fut in pending:
        yield fut.result()


def _place_later(pool: ProcessPoolExecutor | None, orphan: tuple[PageResult, Neighbour | None],
                 after: Neighbour | None, keep_image: bool) -> Future[PageResult]:
    """_placed in the pool (a placed page is read again: a second or so), so the pages after it are not held up."""
    if pool is not None:
        return pool.submit(_placed, *orphan, after, keep_image)
    done: Future[PageResult] = Future()
    done.set_result(_placed(*orphan, after, keep_image))
    return done


def extract_files(paths: Sequence[Path], *, registry: CriteriaRegistry | None = None,
                  progress: Callable[[int, int], None] | None = None, jobs: int = 1,
                  page_sink: Callable[[bytes], str] | None = None) -> ExtractionResult:
    """`read_files`, then each document validated once with its findings (minutes against the sheets beside them):
    the CLI's and the tests' whole path. The service validates itself, with the stored records in view."""
    registry = registry or default_registry()
    out = read_files(paths, registry=registry, progress=progress, jobs=jobs, page_sink=page_sink)
    out.documents = validate_batch(out.documents, out.findings, registry,
                                   review_confidence=get_settings().review_confidence)
    return out


def read_files(paths: Sequence[Path], *, registry: CriteriaRegistry | None = None,
               progress: Callable[[int, int], None] | None = None, jobs: int = 1,
               page_sink: Callable[[bytes], str] | None = None,
               names: Mapping[str, str] | None = None) -> ExtractionResult:
    """Read every page of `paths` into documents (not validated: no result, no status) with their findings.
    `page_sink` stores a page image and returns its reference; without it no images are kept. `names`: the names
    of the rosters the forms were printed from by roster id, when known (print_match.with_printed_name)."""
    registry = registry or default_registry()
    out = ExtractionResult()
    docs: dict[str, dict[int, PageFields]] = {}
    order: list[str] = []
    done = 0
    # Pages for the layout readers, by document key (own form: its printed-copy id; otherwise file#kind), with the
    # file they came from and their kind.
    foreign: dict[str, tuple[str, str, list[PageText]]] = {}
    held: list[PageResult] = []  # pages identified by an unchecked id line, for the batch to confirm
    orphan: tuple[PageResult, Neighbour | None] | None = None  # waiting for the page after it
    before: Neighbour | None = None  # the last page, when it was identified for certain
    images: dict[str, dict[int, str]] = {}
    total = count_pages(paths) if progress else 0

    def keep(doc: dict[int, PageFields], res: PageResult) -> None:
        assert res.payload is not None
        doc[res.payload.page] = PageFields(res.payload, res.reads, placed=res.placed, bent=res.bent,
                                           bilevel=res.bilevel, framed=res.framed)
        if page_sink is not None and res.image:
            images.setdefault(res.payload.doc, {})[res.payload.page] = page_sink(res.image)

    placing: list[Future[PageResult]] = []  # pages placed by their neighbours, read again
    names = names or {}
    with _pool(jobs, names) as pool:
        for res in _results(_pages(paths, out.errors), pool, jobs, page_sink is not None, names):
            done += 1
            if progress:
                progress(done, max(total, done))
            certain = None if res.error or res.unconfirmed or res.payload is None \
                else Neighbour(res.file, res.number, res.payload)
            if orphan is not None:
                placing.append(_place_later(pool, orphan, certain, page_sink is not None))
            orphan = None if res.orphan is None else (res, before)
            before = certain
            if res.text is not None:
                # formsvc's own minutes group by their printed copy (QR), like every own form; others by file.
                own = res.text.payload if isinstance(res.text, PageReading) else None
                key = own.doc if own else f"{res.file}#{res.kind}"
                foreign.setdefault(key, (res.file, res.kind, []))[2].append(res.text)
                if page_sink is not None and res.image:
                    bucket = images.setdefault(key, {})
                    bucket[own.page if own else len(bucket) + 1] = page_sink(res.image)
                continue
            if res.error is not None or res.payload is None:
                if res.error and res.orphan is None:
                    out.errors.append(res.error)
                continue
            if res.unconfirmed is not None:
                held.append(res)
                continue
            doc = docs.setdefault(res.payload.doc, {})
            if res.payload.doc not in order:
                order.append(res.payload.doc)
            if res.payload.page in doc:
                out.errors.append(PageError(res.file, res.number, "page_duplicate",
                                            f"{res.file}, trang {res.number}: trang {res.payload.page} của phiếu này "
                                            "đã có (quét trùng); bỏ qua bản sau."))
                continue
            keep(doc, res)
        if orphan is not None:
            placing.append(_place_later(pool, orphan, None, page_sink is not None))
        placed = [f.result() for f in placing]
    for res in held:
        assert res.payload is not None and res.unconfirmed is not None
        doc = docs.get(res.payload.doc, {})
        if not _confirms(doc, res.payload):
            out.errors.append(res.unconfirmed)
            continue
        keep(doc, res)
    wanted = Counter((r.payload.doc, r.payload.page) for r in placed if r.payload is not None)
    for res in placed:
        # Its copy got the page for certain meanwhile, or two pages want one place: the page stays unidentified.
        if res.payload is None or res.payload.doc not in docs or res.payload.page in docs[res.payload.doc] \
                or wanted[res.payload.doc, res.payload.page] > 1:
            assert res.error is not None
            out.errors.append(res.error)
            continue
        keep(docs[res.payload.doc], res)
    for doc_id in order:
        pages = list(docs[doc_id].values())
        expected = pages[0].payload.pages
        missing = sorted(set(range(1, expected + 1)) - set(docs[doc_id]))
        record, reasons = build_record(pages, missing_pages=missing, registry=registry)
        out.documents.append(record)
        out.findings.append(reasons)
        out.keys.append(doc_id)
        out.pages.append(images.get(doc_id, {}))
    for key, (file, kind, texts) in foreign.items():
        reader = reader_for(kind)
        foreign_record = reader.read(texts, registry) if reader else None
        if foreign_record is None:
            what = reader.label if reader else "tài liệu"
            out.errors.append(PageError(file, texts[0].page_number, "foreign_unreadable",
                                        f"{file}: nhận ra {what} nhưng không đọc được nội dung; cần nhập tay."))
            continue
        out.documents.append(foreign_record)
        out.findings.append([])
        out.keys.append(key)
        out.pages.append(images.get(key, {}))
    return out
