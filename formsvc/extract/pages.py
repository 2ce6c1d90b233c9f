"""Stage 1, pages: open PDFs and images, split them into pages, rasterise at a fixed dpi, one page at a time.

A page with a real text layer is "digital" and keeps its words (read without OCR); every page is also
rasterised, because the QR code and markers are read from pixels.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pdfplumber
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageOps, UnidentifiedImageError

from formsvc.extract.budget import Budget, Overrun, PageReader
from formsvc.extract.colour import drop_colour, is_colour
from formsvc.extract.heif import is_heif
from formsvc.extract.heif import register as register_heif
from formsvc.extract.spread import split_spread
from formsvc.extract.tiff import count_frames, is_tiff
from formsvc.extract.types import PageError, Word

log = logging.getLogger(__name__)

MIN_DIGITAL_CHARS = 20
MIN_IMAGE_SIDE = 400  # pixels: an A4 page at even 50 dpi is 413 px wide
HEAD_BYTES = 12  # of a file's start, enough for sniff to tell every kind read here
register_heif()


@dataclass
class Page:
    file: str
    number: int  # 1-based within its file
    image: np.ndarray  # grayscale uint8 at `dpi` (a colour page without its seal ink: colour.py)
    dpi: float
    digital: bool
    words: list[Word] = field(default_factory=list)  # text-layer words, pixel coordinates at `dpi`
    luma: np.ndarray | None = None  # a colour page's plain grey levels, when seal ink was dropped from `image`
    # Scanned in black and white (one threshold, 1 bit a pixel): a tone mark's thin stroke fell on either side of
    # the threshold, so printed Vietnamese text on it may have lost or changed its marks ("Dũng" read "Dùng").
    bilevel: bool = False


def _grey(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A colour page as the readers see it (seal ink dropped) and its plain luminance when anything was dropped."""
    if not is_colour(rgb):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None
    dropped = drop_colour(rgb)
    return dropped.image, dropped.luma


def _pages_of(name: str, number: int, image: np.ndarray, luma: np.ndarray | None, src_dpi: float | None,
              dpi: float, bilevel: bool = False) -> Iterator[Page]:
    """The page(s) of one scanned image: an open booklet photographed as one image holds two, each scaled on its
    own (`src_dpi` None: already at `dpi`)."""
    for x0, x1 in split_spread(image):
        part, part_luma = image[:, x0:x1], None if luma is None else luma[:, x0:x1]
        if src_dpi is not None:
            part = _at_dpi(part, src_dpi, dpi)
            part_luma = None if part_luma is None else _at_dpi(part_luma, src_dpi, dpi)
        yield Page(name, number, np.ascontiguousarray(part), dpi, digital=False,
                   luma=None if part_luma is None else np.ascontiguousarray(part_luma), bilevel=bilevel)


def _two_levels(grey: np.ndarray) -> bool:
    """Only black and white: a black-and-white scan saved in an 8-bit format (PNG, an uncompressed TIFF)."""
    return not bool(np.any((grey > 0) & (grey < 255)))


def sniff(head: bytes) -> str | None:
    """The kind of file, "pdf" or "image", from its first HEAD_BYTES; None for any other kind."""
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"\x89PNG") or head[:3] == b"\xff\xd8\xff" or head[:4] in (b"II*\x00", b"MM\x00*") \
            or is_heif(head) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    return None


def _err(file: str, page: int | None, code: str, message: str) -> PageError:
    return PageError(file=file, page=page, code=code, message=message)


def _unsupported(name: str) -> PageError:
    return _err(name, None, "file_type_unsupported",
                f"{name}: không phải PDF, JPEG, PNG, TIFF, HEIC hay WebP (nội dung tệp không khớp).")


REOPEN_EVERY = 25  # pages
MAX_FORM_DEPTH = 8  # nesting of Form XObjects searched for images (print packs nest one level)


@dataclass
class _OpenPdf:
    doc: pdfium.PdfDocument
    plumber: pdfplumber.PDF


def _open_pdf(path: Path) -> _OpenPdf:
    return _OpenPdf(pdfium.PdfDocument(str(path)), pdfplumber.open(str(path)))


def _read_pdf_page(pdf: _OpenPdf, index: int, name: str, dpi: float, max_pixels: int) -> Page | PageError:
    """Rasterise one page and read its text layer (runs in the budgeted child process)."""
    try:
        page = pdf.doc[index]
        w_pt, h_pt = page.get_size()
        if w_pt * h_pt * (dpi / 72) ** 2 > max_pixels:
            return _err(name, index + 1, "page_too_large", f"{name}, trang {index + 1}: trang quá lớn.")
        # The images a page draws are decoded whole, whatever size they are drawn at: a few KB of doubly
        # deflated zeros can declare 900 MB of pixels. Their declared sizes are read without decoding them.
        images = list(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=MAX_FORM_DEPTH))
        image_pixels = sum(w * h for w, h in (obj.get_px_size() for obj in images))
        if image_pixels > max_pixels:
            return _err(name, index + 1, "page_too_large",
                        f"{name}, trang {index + 1}: trang chứa ảnh quá lớn (vượt {max_pixels} điểm ảnh).")
        textpage = page.get_textpage()
        n_chars = textpage.count_chars()
        textpage.close()
        words: list[Word] = []
        if n_chars >= MIN_DIGITAL_CHARS:
            s = dpi / 72
            words = [Word(w["text"], (w["x0"] * s, w["top"] * s, w["x1"] * s, w["bottom"] * s), 1.0)
                     for w in pdf.plumber.pages[index].extract_words(keep_blank_chars=False)]
        if words:
            image = np.asarray(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
            page.close()
            return Page(name, index + 1, image, dpi, digital=True, words=words)
        # A scan: rendered in colour, to drop seal ink (colour.py).
        rgb = np.asarray(page.render(scale=dpi / 72).to_pil().convert("RGB"))
        # A copier's black-and-white PDF holds its page as a 1-bit image (CCITT G4); rendered, its edges turn grey.
        bilevel = bool(images) and all(obj.get_metadata().bits_per_pixel == 1 for obj in images)
        page.close()
        grey, luma = _grey(rgb)
        return Page(name, index + 1, grey, dpi, digital=False, luma=luma, bilevel=bilevel)
    except (pdfium.PdfiumError, ValueError, KeyError) as exc:
        log.info("%s, page %d unreadable: %s: %s", name, index + 1, type(exc).__name__, exc)
        return _err(name, index + 1, "page_unreadable", f"{name}, trang {index + 1}: không đọc được trang này.")


def _overrun(name: str, number: int, overrun: Overrun, budget: Budget) -> PageError:
    if overrun.kind == "time":
        return _err(name, number, "page_too_slow",
                    f"{name}, trang {number}: trang quá phức tạp, đọc quá {budget.seconds:g} giây nên bị bỏ qua; "
                    "hãy in ra và quét lại trang này.")
    if overrun.kind == "memory":
        return _err(name, number, "page_too_much_memory",
                    f"{name}, trang {number}: trang cần quá {budget.memory_mb} MB bộ nhớ để đọc nên bị bỏ qua; "
                    "hãy in ra và quét lại trang này.")
    return _err(name, number, "page_unreadable", f"{name}, trang {number}: không đọc được trang này.")


def _pdf_pages(path: Path, dpi: float, max_pages: int, max_pixels: int,
               budget: Budget) -> Iterator[Page | PageError]:
    name = path.name
    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        text = str(exc).lower()
        if "password" in text:
            yield _err(name, None, "pdf_encrypted", f"{name}: tệp PDF có mật khẩu, không đọc được.")
        else:
            yield _err(name, None, "pdf_unreadable", f"{name}: tệp PDF bị hỏng hoặc không đọc được.")
        return
    try:
        count = len(doc)
    finally:
        doc.close()
    if count == 0:
        yield _err(name, None, "pdf_empty", f"{name}: tệp PDF không có trang nào.")
        return
    if count > max_pages:
        yield _err(name, None, "too_many_pages", f"{name}: {count} trang, vượt giới hạn {max_pages} trang mỗi tệp.")
        return
    # PDFium and pdfminer keep every object they have parsed (a scan's page image included) until the document
    # is closed; the reading process is replaced every REOPEN_EVERY pages, so a 1,000-page scanned PDF never
    # ends up wholly in memory.
    reader: PageReader[_OpenPdf, Page | PageError] = PageReader(
        lambda: _open_pdf(path), lambda pdf, index: _read_pdf_page(pdf, index, name, dpi, max_pixels), budget,
        reopen_every=REOPEN_EVERY)
    with reader:
        for index in range(count):
            item = reader.read(index)
            if isinstance(item, Overrun):
                yield _overrun(name, index + 1, item, budget)
            elif isinstance(item, Page) and not item.digital:
                # A scanned spread (two pages on one sheet) is cut like a photographed one.
                yield from _pages_of(name, item.number, item.image, item.luma, None, dpi, item.bilevel)
            else:
                yield item


@contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """PIL refuses to open an image over twice `max_pixels` (a decompression bomb), checked on open only; the
    limit is PIL's global, so it is put back for the rest of the process."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def frame_count(path: Path, img: Image.Image, max_pages: int) -> int:
    """Frames of an opened image, counted cheaply: a TIFF's directory chain is walked only up to one past
    `max_pages` (PIL's n_frames sets up every frame, quadratic in their number). ValueError when broken."""
    if img.format == "TIFF":
        with path.open("rb") as fh:
            if is_tiff(fh.read(4)):
                return count_frames(path, stop_after=max_pages)
    return int(getattr(img, "n_frames", 1))


def _too_many_frames(name: str, max_pages: int) -> PageError:
    return _err(name, None, "too_many_pages",
                f"{name}: hơn {max_pages} trang, vượt giới hạn {max_pages} trang mỗi tệp.")


def _image_pages(path: Path, dpi: float, max_pages: int, max_pixels: int) -> Iterator[Page | PageError]:
    name = path.name
    try:
        with _pixel_limit(max_pixels):
            img = Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        log.info("%s unreadable: %s: %s", name, type(exc).__name__, exc)
        yield _err(name, None, "image_unreadable", f"{name}: ảnh bị hỏng hoặc không đọc được.")
        return
    except Image.DecompressionBombError:
        yield _err(name, None, "image_too_large", f"{name}: ảnh quá lớn (vượt {max_pixels} điểm ảnh).")
        return
    with img:
        try:
            frames = frame_count(path, img, max_pages)
        except ValueError:
            yield _err(name, None, "image_unreadable", f"{name}: ảnh bị hỏng hoặc không đọc được.")
            return
        if frames > max_pages:
            yield _too_many_frames(name, max_pages)
            return
        for index in range(frames):
            try:
                img.seek(index)
                if img.width * img.height > max_pixels:
                    yield _err(name, index + 1, "image_too_large",
                               f"{name}, trang {index + 1}: ảnh quá lớn (vượt {max_pixels} điểm ảnh).")
                    continue
                if min(img.width, img.height) < MIN_IMAGE_SIDE:
                    # Scaling a thumbnail up to a page costs a full OCR pass and can never be read.
                    yield _err(name, index + 1, "image_too_small",
                               f"{name}, trang {index + 1}: ảnh quá nhỏ ({img.width}×{img.height} điểm ảnh) "
                               "để đọc; hãy quét ở 150–300 dpi.")
                    continue
                src_dpi = float((img.info.get("dpi") or (0, 0))[0] or 0)
                if img.mode in ("L", "1", "I;16", "I", "F", "LA"):
                    grey, luma = np.asarray(_upright(img.convert("L"))), None
                    bilevel = img.mode == "1" or (img.mode == "L" and _two_levels(grey))
                else:
                    rgb = _upright(img.convert("RGB"))
                    grey, luma = _grey(np.asarray(rgb))
                    bilevel = False
                    del rgb
                yield from _pages_of(name, index + 1, grey, luma, src_dpi, dpi, bilevel)
            except (OSError, ValueError, EOFError) as exc:
                log.info("%s, page %d unreadable: %s: %s", name, index + 1, type(exc).__name__, exc)
                yield _err(name, index + 1, "image_unreadable", f"{name}, trang {index + 1}: không đọc được.")


def _upright(frame: Image.Image) -> Image.Image:
    """The frame (a converted copy, ours to change) turned as its EXIF orientation says; turned in place, as
    copying a page that needs no turn cost as much as decoding it."""
    ImageOps.exif_transpose(frame, in_place=True)
    return frame


def _at_dpi(image: np.ndarray, src_dpi: float, dpi: float) -> np.ndarray:
    """Images come at any resolution; an A4-sized page is scaled to the pipeline's dpi."""
    scale = dpi / src_dpi if src_dpi > 50 else (dpi * 11.69) / max(image.shape)
    if abs(scale - 1) <= 0.05:
        return image
    h, w = image.shape
    return np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS))


def iter_pages(path: Path, *, dpi: float, max_pages: int, max_pixels: int,
               budget: Budget | None = None) -> Iterator[Page | PageError]:
    """Pages of one file, streamed; errors are yielded as PageError so the rest of a batch goes on.
    A PDF page is read within `budget` (default: the settings' page time and memory budgets)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        yield _err(path.name, None, "file_unreadable", f"{path.name}: không mở được tệp ({exc.strerror}).")
        return
    kind = sniff(head)
    if kind == "pdf":
        if budget is None:
            from formsvc.settings import get_settings

            s = get_settings()
            budget = Budget(s.page_time_budget_s, s.page_memory_budget_mb)
        yield from _pdf_pages(path, dpi, max_pages, max_pixels, budget)
    elif kind == "image":
        yield from _image_pages(path, dpi, max_pages, max_pixels)
    elif not head:
        yield _err(path.name, None, "file_empty", f"{path.name}: tệp rỗng.")
    else:
        yield _unsupported(path.name)


def image_to_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def check_file(path: Path, name: str, *, max_pages: int, max_pixels: int) -> PageError | None:
    """A cheap look at a whole file before accepting it (no rasterising): type, readability, limits.

    The upload API refuses a request with such a file at once, instead of failing it later in a worker.
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    kind = sniff(head)
    if not head:
        return _err(name, None, "file_empty", f"{name}: tệp rỗng.")
    if kind is None:
        return _unsupported(name)
    if kind == "pdf":
        try:
            doc = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                return _err(name, None, "pdf_encrypted", f"{name}: tệp PDF có mật khẩu, không đọc được.")
            return _err(name, None, "pdf_unreadable", f"{name}: tệp PDF bị hỏng hoặc không đọc được.")
        try:
            count = len(doc)
        finally:
            doc.close()
        if count == 0:
            return _err(name, None, "pdf_empty", f"{name}: tệp PDF không có trang nào.")
        if count > max_pages:
            return _err(name, None, "too_many_pages",
                        f"{name}: {count} trang, vượt giới hạn {max_pages} trang mỗi tệp.")
        return None
    try:
        with _pixel_limit(max_pixels), Image.open(path) as img:
            if frame_count(path, img, max_pages) > max_pages:
                return _too_many_frames(name, max_pages)
            if img.width * img.height > max_pixels:
                return _err(name, None, "image_too_large", f"{name}: ảnh quá lớn (vượt {max_pixels} điểm ảnh).")
    except Image.DecompressionBombError:
        return _err(name, None, "image_too_large", f"{name}: ảnh quá lớn (vượt {max_pixels} điểm ảnh).")
    except (UnidentifiedImageError, OSError, ValueError, EOFError) as exc:
        # Never the exception's text: it names the server's temporary copy, not the file the user sent.
        log.info("%s unreadable: %s: %s", name, type(exc).__name__, exc)
        return _err(name, None, "image_unreadable", f"{name}: ảnh bị hỏng hoặc không đọc được.")
    return None
