"""Plain-text reader."""

from pathlib import Path

from qa.errors import ReadError
from qa.readers.document import Document, doc_id_for, file_sha256


def decode_text(path: Path, data: bytes) -> str:
    """Decode bytes as UTF-8 text (BOM tolerated), refusing binary data and empty files."""
    if not data.strip():
        raise ReadError(f"{path.name}: the file is empty")
    if b"\x00" in data[:4096]:
        raise ReadError(f"{path.name}: this is a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ReadError(f"{path.name}: the file holds no text")
    return text


def first_line(text: str, fallback: str) -> str:
    """The first non-blank line, stripped of Markdown heading marks."""
    for line in text.splitlines():
        stripped = line.strip().lstrip("#").strip()
        if stripped:
            return stripped[:300]
    return fallback


def read_text(path: Path) -> Document:
    """Read a UTF-8 plain-text document."""
    data = path.read_bytes()
    text = decode_text(path, data)
    doc_id = doc_id_for(path)
    return Document(
        doc_id=doc_id,
        title=first_line(text, doc_id),
        text=text,
        source_path=path,
        sha256=file_sha256(data),
    )
