"""Readers turn a file into a `Document`; one reader per format, chosen by suffix."""

from collections.abc import Callable
from pathlib import Path

from qa.errors import ReadError
from qa.readers.document import Document
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
        return reader(path)
    except OSError as ex:
        raise ReadError(f"{path.name}: cannot read the file ({ex.strerror or ex})") from None


__all__ = ["READERS", "Document", "Reader", "read_document"]
