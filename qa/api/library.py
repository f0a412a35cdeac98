"""The corpus as the API manages it: look documents and passages up, save and delete files.

Uploads go to `corpus_dir/uploads/`; nothing is ever written or removed outside `corpus_dir`.
"""

import errno
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from qa.api.errors import (
    ConflictError,
    InsufficientStorageError,
    NotFoundError,
    StorageError,
    UnsupportedTypeError,
    UploadError,
    UploadTooLargeError,
)
from qa.chunking import Chunk
from qa.index import DocumentRecord, Index
from qa.readers import READERS

UPLOADS = "uploads"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._() -]{0,150}")
COPY_BLOCK = 1 << 20


def document_record(index: Index, doc_id: str) -> DocumentRecord:
    """The manifest entry of an indexed document; `NotFoundError` names the way to list them."""
    record = index.manifest.documents.get(doc_id)
    if record is None:
        raise NotFoundError(f"No indexed document has id {doc_id!r}; GET /documents lists them.")
    return record


def document_chunks(index: Index, doc_id: str) -> list[Chunk]:
    """A document's passages in reading order."""
    return sorted((c for c in index.chunks if c.doc_id == doc_id), key=lambda c: c.ordinal)


def passage_with_neighbours(
    index: Index, chunk_id: str, *, around: int
) -> tuple[Chunk, list[Chunk], list[Chunk]]:
    """A passage and up to `around` passages either side of it in the same document."""
    position = index.by_id.get(chunk_id)
    if position is None:
        raise NotFoundError(
            f"No passage has id {chunk_id!r} in the current index; passage ids come from "
            "/ask, /search and /documents/{doc_id}, and change when a document's text changes."
        )
    chunk = index.chunks[position]
    siblings = document_chunks(index, chunk.doc_id)
    at = next(i for i, c in enumerate(siblings) if c.chunk_id == chunk_id)
    return chunk, siblings[max(0, at - around) : at], siblings[at + 1 : at + 1 + around]


def safe_upload_name(file_name: str | None) -> str:
    """The file name if it is a plain, supported name; otherwise a 4xx error saying why."""
    name = file_name or ""
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise UploadError(
            f"The file name {name!r} is not allowed: send a plain name such as guideline.pdf "
            "(letters, digits, spaces, '.', '-', '_', brackets), without folders."
        )
    suffix = Path(name).suffix.lower()
    if suffix not in READERS:
        supported = ", ".join(sorted(READERS))
        raise UnsupportedTypeError(
            f"{name}: unsupported file type {suffix or '(none)'!r}; upload one of {supported}."
        )
    return name


def corpus_files(corpus_dir: Path, doc_id: str) -> list[Path]:
    """Supported files in the corpus whose document id (file stem) is `doc_id`."""
    if not corpus_dir.is_dir():
        return []
    return sorted(
        path
        for path in corpus_dir.rglob(f"{glob_escape(doc_id)}.*")
        if path.is_file()
        and path.stem == doc_id
        and path.suffix.lower() in READERS
        and not any(part.startswith(".") for part in path.relative_to(corpus_dir).parts)
    )


def glob_escape(text: str) -> str:
    """`text` with glob metacharacters made literal."""
    return re.sub(r"([*?\[])", r"[\1]", text)


FULL_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def save_upload(
    corpus_dir: Path,
    file_name: str | None,
    data: BinaryIO,
    *,
    index: Index,
    max_bytes: int,
    reserved: Mapping[str, str] | None = None,
) -> tuple[Path, int, bool]:
    """Copy an uploaded file to `corpus_dir/uploads/`; returns (path, size, replaced).

    Ids are compared ignoring case; an id in `reserved` (sources.toml: id → short title) is
    refused.
    """
    name = safe_upload_name(file_name)
    uploads = (corpus_dir / UPLOADS).resolve()
    target = uploads / name
    if target.parent != uploads:  # belt and braces: the name check already forbids this
        raise UploadError(f"The file name {name!r} would leave the uploads folder.")
    doc_id = target.stem
    official = {k.lower(): name for k, name in (reserved or {}).items()}.get(doc_id.lower())
    if official is not None:
        raise ConflictError(
            f"The id {doc_id!r} belongs to the official text {official} listed in "
            "corpus/sources.toml; an upload may not use it, so upload under another file name."
        )
    clash = [p for p in _same_id_files(corpus_dir, doc_id) if p.resolve() != target]
    clash += [
        Path(r.source_path)
        for r in index.manifest.documents.values()
        if r.doc_id.lower() == doc_id.lower() and Path(r.source_path).resolve() != target
    ]
    if clash:
        raise ConflictError(
            f"A document with id {doc_id!r} already exists ({clash[0].name}); delete it first "
            "(DELETE /documents/{doc_id}) or upload under another file name."
        )
    partial = uploads / f".upload-{uuid.uuid4().hex}.part"  # hidden: ingest skips it
    try:
        uploads.mkdir(parents=True, exist_ok=True)
        size = _copy_limited(data, partial, name=name, max_bytes=max_bytes)
        _check_content(partial, name, size)
        replaced = target.exists()
        os.replace(partial, target)
    except OSError as ex:
        reason = ex.strerror or type(ex).__name__
        if ex.errno in FULL_DISK:
            raise InsufficientStorageError(
                f"There is no room on the server's disk to save {name} ({reason}); nothing was "
                "saved: free some space or ask the administrator, then upload it again."
            ) from None
        raise StorageError(
            f"The server could not save {name} ({reason}); nothing was saved: check that "
            f"{UPLOADS}/ in the corpus folder is writable, then upload it again."
        ) from None
    finally:
        partial.unlink(missing_ok=True)
    return target, size, replaced


def _same_id_files(corpus_dir: Path, doc_id: str) -> list[Path]:
    """Supported corpus files whose id is `doc_id` ignoring case (`32007r1394` clashes with
    `32007R1394`)."""
    if not corpus_dir.is_dir():
        return []
    wanted = doc_id.lower()
    return sorted(
        path
        for path in corpus_dir.rglob("*")
        if path.stem.lower() == wanted
        and path.suffix.lower() in READERS
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(corpus_dir).parts)
    )


def _copy_limited(data: BinaryIO, target: Path, *, name: str, max_bytes: int) -> int:
    size = 0
    with open(target, "wb") as out:
        while block := data.read(COPY_BLOCK):
            size += len(block)
            if size > max_bytes:
                raise UploadTooLargeError(
                    f"{name} is larger than the upload limit of {max_bytes:,} bytes; "
                    "raise QA_MAX_UPLOAD_BYTES or split the document."
                )
            out.write(block)
    return size


def _check_content(path: Path, name: str, size: int) -> None:
    if size == 0:
        raise UploadError(f"{name} is empty; upload the document's contents.")
    if name.lower().endswith(".pdf"):
        with open(path, "rb") as head:
            if b"%PDF-" not in head.read(1024):
                raise UploadError(f"{name} is not a PDF file (no %PDF- header); check the file.")


def delete_document(corpus_dir: Path, doc_id: str, *, index: Index) -> Path:
    """Remove a document's file from the corpus; returns the removed path."""
    root = corpus_dir.resolve()
    files = corpus_files(corpus_dir, doc_id)
    record = index.manifest.documents.get(doc_id)
    if record is not None and not files:
        source = Path(record.source_path)
        if source.exists() and not source.resolve().is_relative_to(root):
            raise ConflictError(
                f"Document {doc_id!r} was indexed from {source.name}, outside the corpus folder; "
                "remove that file where it is and run an ingest."
            )
    if not files:
        raise NotFoundError(f"No document with id {doc_id!r} is in the corpus; GET /documents.")
    for path in files:  # found under corpus_dir, so nothing outside it is touched
        path.unlink()
    return files[0]
