"""Document readers, registered by document kind (like paperless-ngx's parser registry).

A page that is not read by fixed zones (a form whose table grows with its content: `reader: table` in the form
registry, or a layout formsvc did not print, classified by its title) is grouped into a document and handed to the
reader registered for its document kind. Adding a form of a new kind read this way is a registry entry plus one
`@document_reader("kind", "label")` function; nothing else names the kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from formsvc.criteria import CriteriaRegistry
from formsvc.extract.types import PageText
from formsvc.records import Record

ReadFn = Callable[[list[PageText], CriteriaRegistry], Record | None]


@dataclass(frozen=True)
class DocumentReader:
    kind: str
    label: str  # Vietnamese, for messages: "nhận ra {label} nhưng không đọc được nội dung"
    read: ReadFn


_READERS: dict[str, DocumentReader] = {}


def document_reader(kind: str, label: str) -> Callable[[ReadFn], ReadFn]:
    def register(fn: ReadFn) -> ReadFn:
        if kind in _READERS:
            raise ValueError(f"a reader for document kind {kind!r} is already registered")
        _READERS[kind] = DocumentReader(kind, label, fn)
        return fn
    return register


def reader_for(kind: str) -> DocumentReader | None:
    return _READERS.get(kind)


def registered_kinds() -> list[str]:
    """Kinds with a reader. The built-in readers register when their modules are imported, which
    formsvc.extract.pipeline does."""
    return sorted(_READERS)
