"""PDF reader (pypdf): text per page, with the offset where each page starts.

Untrusted PDFs (uploads) are bounded before any text is extracted: at most `MAX_PAGES` pages
(the declared count is checked before the page tree is walked) and at most
`MAX_CONTENT_BYTES` of decompressed page content, so a small file that inflates to gigabytes
is refused in about a second instead of being parsed for minutes.
"""

import io
from pathlib import Path
from typing import Any

from qa.errors import ReadError
from qa.readers.document import Document, doc_id_for, file_sha256
from qa.readers.text import first_line

MAX_PAGES = 5000
# Decompressed content streams (and the form XObjects they draw) over the whole document;
# dense text runs at 5-50 kB a page, so this leaves room for thousands of real pages.
MAX_CONTENT_BYTES = 64_000_000


def read_pdf(path: Path) -> Document:
    """Read a PDF's text layer; encrypted, image-only, corrupt or bomb-like PDFs raise ReadError."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

    data = path.read_bytes()
    if not data.strip():
        raise ReadError(f"{path.name}: the file is empty")
    if not data.lstrip().startswith(b"%PDF-"):
        raise ReadError(f"{path.name}: not a PDF file (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ReadError(f"{path.name}: the PDF is encrypted with a password; decrypt it first")
        declared = _declared_pages(reader)
        if declared > MAX_PAGES:
            raise ReadError(f"{path.name}: {declared} pages exceeds the limit of {MAX_PAGES}")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise ReadError(f"{path.name}: {len(pages)} pages exceeds the limit of {MAX_PAGES}")
        content = 0
        for page in pages:
            content += _content_bytes(page)
            if content > MAX_CONTENT_BYTES:
                raise ReadError(
                    f"{path.name}: the PDF's page content expands to more than "
                    f"{MAX_CONTENT_BYTES // 1_000_000} MB from a {len(data):,}-byte file, which "
                    "looks like a decompression bomb; it was not read"
                )
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
    except LimitReachedError as ex:
        raise ReadError(
            f"{path.name}: the PDF goes beyond the reader's safety limits ({ex}); it is either "
            "damaged or a decompression bomb, so it was not read"
        ) from None
    except RecursionError:
        raise ReadError(
            f"{path.name}: the PDF nests its objects too deeply to be read safely; it was not read"
        ) from None
    except DependencyError as ex:
        raise ReadError(f"{path.name}: the PDF needs a missing library to be read ({ex})") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as ex:
        raise ReadError(
            f"{path.name}: the PDF is corrupt or unreadable ({' '.join(str(ex).split())[:200]})"
        ) from None
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


def _declared_pages(reader: Any) -> int:
    """The page count the document claims (`/Root /Pages /Count`), read without walking the tree."""
    try:
        count = reader.trailer["/Root"].get_object()["/Pages"].get_object()["/Count"]
        return int(count)
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0  # let the page tree walk report what is wrong


def _content_bytes(page: Any) -> int:
    """Decompressed size of a page's content streams and the form XObjects it can draw."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    total = 0
    seen: set[int] = set()
    pending: list[Any] = [page.get("/Contents"), page.get("/Resources")]
    while pending:
        item = pending.pop()
        obj = item.get_object() if item is not None else None
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, ArrayObject):
            pending.extend(obj)
        elif isinstance(obj, StreamObject):
            total += len(obj.get_data())
            if obj.get("/Subtype") == "/Form":
                pending.append(obj.get("/Resources"))
        elif isinstance(obj, DictionaryObject):  # a resource dictionary
            xobjects = obj.get("/XObject")
            xobjects = xobjects.get_object() if xobjects is not None else None
            if isinstance(xobjects, DictionaryObject):
                pending.extend(
                    x for x in xobjects.values() if x.get_object().get("/Subtype") == "/Form"
                )
    return total
