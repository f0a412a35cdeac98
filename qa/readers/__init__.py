"""Readers turn a file into a `Document`; one reader per format, chosen by suffix."""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from qa.errors import ReadError
from qa.readers.document import MAX_META_CHARS, Document, cap_text, safe_url
from qa.readers.html import read_html
from qa.readers.markdown import read_markdown
from qa.readers.pdf import read_pdf
from qa.readers.text import read_text

Reader = Callable[[Path], Document]

READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".pdf": read_pdf,
    ".html": read_html,
    ".htm": read_html,
    ".txt": read_text,
}


def read_document(path: Path) -> Document:
    """Read one file with the reader for its suffix; unreadable files raise `ReadError`."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        supported = ", ".join(sorted(READERS))
        raise ReadError(
            f"{path.name}: unsupported file type {path.suffix!r} (supported: {supported})"
        )
    try:
        doc = reader(path)
    except OSError as ex:
        raise ReadError(f"{path.name}: cannot read the file ({ex.strerror or ex})") from None
    except RecursionError:
        raise ReadError(
            f"{path.name}: the file nests too deeply to be read safely; it was not read"
        ) from None
    except MemoryError:
        raise ReadError(f"{path.name}: reading the file ran out of memory; not read") from None
    return bounded(doc)


def bounded(doc: Document) -> Document:
    """The document with its metadata capped: a title of at most 500 characters, an http(s)
    URL or none, short metadata values; whatever a reader took from the file itself."""
    return replace(
        doc,
        title=cap_text(doc.title) or doc.doc_id,
        url=safe_url(doc.url),
        kind=cap_text(doc.kind, 100) or None if doc.kind else None,
        version_date=cap_text(doc.version_date, 100) or None if doc.version_date else None,
        metadata={
            cap_text(str(k), 100): cap_text(str(v), MAX_META_CHARS)
            for k, v in list(doc.metadata.items())[:50]
        },
    )


__all__ = ["READERS", "Document", "Reader", "bounded", "read_document"]
