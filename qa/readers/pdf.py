"""PDF reader (pypdf): text per page, with the offset where each page starts."""

import io
from pathlib import Path

from qa.errors import ReadError
from qa.readers.document import Document, doc_id_for, file_sha256
from qa.readers.text import first_line

MAX_PAGES = 5000


def read_pdf(path: Path) -> Document:
    """Read a PDF's text layer; encrypted, image-only or corrupt files raise `ReadError`."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    data = path.read_bytes()
    if not data.strip():
        raise ReadError(f"{path.name}: the file is empty")
    if not data.lstrip().startswith(b"%PDF-"):
        raise ReadError(f"{path.name}: not a PDF file (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ReadError(f"{path.name}: the PDF is encrypted with a password; decrypt it first")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise ReadError(f"{path.name}: {len(pages)} pages exceeds the limit of {MAX_PAGES}")
        texts: list[str] = []
        starts: list[int] = []
        offset = 0
        for page in pages:
            page_text = (page.extract_text() or "").replace("\r\n", "\n").strip("\n")
            starts.append(offset)
            texts.append(page_text)
            offset += len(page_text) + 2  # the "\n\n" joining pages
        title = str(reader.metadata.title or "").strip() if reader.metadata else ""
    except ReadError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as ex:
        raise ReadError(f"{path.name}: the PDF is corrupt or unreadable ({ex})") from None
    text = "\n\n".join(texts)
    if not text.strip():
        raise ReadError(f"{path.name}: the PDF has no text layer (scanned images?); OCR it first")
    doc_id = doc_id_for(path)
    return Document(
        doc_id=doc_id,
        title=title or first_line(text, doc_id),
        text=text,
        source_path=path,
        sha256=file_sha256(data),
        page_starts=tuple(starts),
    )
