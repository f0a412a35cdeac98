"""Build or update the index from document files: incremental, locked and crash-safe.

Unchanged documents (same sha256, same chunker settings, same model) keep their chunks and
vectors; chunks of changed documents are embedded again unless their exact text was embedded
before. The new index is published atomically by `Index.save`.
"""

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from qa.chunking import CHUNKER_VERSION, Chunk
from qa.embed import Embedder, ProgressFn
from qa.errors import IndexMismatchError, IndexNotFoundError, IngestError, QAError
from qa.index import DenseOptions, DocumentRecord, Index, Manifest, read_manifest
from qa.parsing import ParseJob, ParseLimits, Parser
from qa.readers import READERS
from qa.readers.document import LOCAL, OFFICIAL, UPLOADED, file_sha256
from qa.sources import Source

MANIFEST_NAMES = {"sources.toml"}
DEFAULT_LIMITS = ParseLimits()
UPLOADS = "uploads"  # corpus/uploads/: files saved by POST /documents (qa.api.library)


@dataclass
class IngestReport:
    """What an ingest did, per document and in total."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    index_path: Path | None = None

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.unchanged)} "
            f"unchanged, {len(self.removed)} removed, {len(self.failed)} failed documents; "
            f"{self.chunks} chunks ({self.embedded} embedded, {self.reused} reused) "
            f"in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class ChunkSettings:
    """The chunker parameters the vectors depend on."""

    max_chars: int = 1000
    min_chars: int = 150


def discover(paths: Sequence[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to index under `paths`, and (file, reason) for those that will be skipped."""
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                if any(part.startswith(".") for part in relative.parts) or not file.is_file():
                    continue
                if file.name in MANIFEST_NAMES:
                    continue
                if file.suffix.lower() in READERS:
                    found.append(file)
                else:
                    skipped.append((str(file), f"unsupported file type {file.suffix!r}"))
        else:
            skipped.append((str(path), "no such file or directory"))
    return found, skipped


@contextmanager
def ingest_lock(index_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the index directory; a second ingest fails at once."""
    lock_path = index_dir / ".ingest.lock"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as ex:
        raise IngestError(
            f"Cannot create the ingest lock {lock_path} ({ex.strerror or ex}); make {index_dir}/ "
            "a writable folder or set QA_INDEX_DIR to one. The previous index is unchanged."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(
                f"Another ingest is running on {index_dir}/ (lock {lock_path}); "
                "wait for it to finish."
            ) from None
        yield
    finally:
        os.close(fd)


def provenance(
    file: Path,
    sha256: str,
    source: Source | None,
    corpus_dir: Path | None,
) -> tuple[str, Source | None, str | None]:
    """Where a file comes from: (origin, the sources.toml entry whose metadata applies to it,
    or the reason it is refused).

    `source` is the entry whose id matches the file's id ignoring case. Its metadata applies
    only to the official file: one whose sha256 is the one recorded, or, where none is
    recorded, the file `corpus fetch` put in place. An upload never gets it, and may not take
    a listed id; a file whose id differs from a listed one only in case is refused.
    """
    doc_id = file.stem
    resolved = file.resolve()
    uploads = (corpus_dir / UPLOADS).resolve() if corpus_dir is not None else None
    if uploads is not None and resolved.is_relative_to(uploads):
        if source is not None:
            return (
                UPLOADED,
                None,
                f"{file.name}: the id {doc_id!r} belongs to {source.short_title} in "
                "sources.toml, so an upload may not use it; upload it under another name",
            )
        return UPLOADED, None, None
    if source is None:
        return LOCAL, None, None
    if source.id != doc_id:
        return (
            LOCAL,
            None,
            f"{file.name}: the id {doc_id!r} differs only in case from {source.id!r} in "
            "sources.toml; rename the file",
        )
    if source.sha256 is not None:
        return (OFFICIAL, source, None) if sha256 == source.sha256 else (LOCAL, None, None)
    fetched = corpus_dir is not None and resolved == (corpus_dir / source.file).resolve()
    return (OFFICIAL, source, None) if fetched else (LOCAL, None, None)


def _same_metadata(record: DocumentRecord, source: Source) -> bool:
    """Whether the manifest entry still says what sources.toml says about the document."""
    recorded = (record.title, record.short_title, record.url, record.jurisdiction)
    listed = (source.title, source.short_title, source.url, source.jurisdiction)
    return recorded == listed and (
        record.aliases,
        record.superseded_by,
        record.status,
        record.caveat,
        record.amends,
    ) == (source.aliases, source.superseded_by, source.status, source.caveat, source.amends)


# Ingest only reuses and writes vectors, never searches them: no HNSW graph to build.
FLAT = DenseOptions(kind="flat")


def _previous(index_dir: Path, embedder: Embedder) -> Index | None:
    try:
        return Index.load(index_dir, model=embedder.model_name, dim=embedder.dim, dense=FLAT)
    except (IndexNotFoundError, IndexMismatchError):
        return None


def _previous_documents(index_dir: Path) -> dict[str, DocumentRecord]:
    try:
        return read_manifest(index_dir).documents
    except (IndexNotFoundError, IndexMismatchError):
        return {}


def build_index(
    paths: Sequence[Path],
    *,
    index_dir: Path,
    embedder: Embedder,
    chunking: ChunkSettings = ChunkSettings(),
    sources: Mapping[str, Source] | None = None,
    rebuild: bool = False,
    on_embed_start: Callable[[int], ProgressFn | None] | None = None,
    corpus_dir: Path | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> IngestReport:
    """Index the documents under `paths`, reusing what the previous index already holds.

    Documents indexed earlier from elsewhere are kept while their file still exists;
    documents under `paths` whose files are gone are removed. Each document is read and
    chunked in a worker process within `limits`; one that fails is skipped with its reason
    (`report.failed`) and the rest are indexed. `corpus_dir` tells uploads (its `uploads/`)
    and fetched files apart (see `provenance`).
    """
    started = time.perf_counter()
    listed = {source_id.lower(): source for source_id, source in (sources or {}).items()}
    report = IngestReport()
    with ingest_lock(index_dir):
        old_docs = _previous_documents(index_dir)
        previous = None if rebuild else _previous(index_dir, embedder)
        compatible = previous is not None and (
            previous.manifest.chunker_version == CHUNKER_VERSION
            and previous.manifest.chunk_max_chars == chunking.max_chars
            and previous.manifest.chunk_min_chars == chunking.min_chars
        )
        old_chunks: dict[str, list[int]] = {}
        cached: dict[str, int] = {}
        if previous is not None:
            for i, chunk in enumerate(previous.chunks):
                old_chunks.setdefault(chunk.doc_id, []).append(i)
                cached[chunk.embed_text] = i

        files, report.failed = discover(paths)
        # Documents indexed earlier from outside these paths stay while their file exists.
        scopes = [p.resolve() for p in paths]
        for old in old_docs.values():
            source_path = Path(old.source_path)
            inside = any(source_path.is_relative_to(scope) for scope in scopes)
            if not inside and source_path.is_file():
                files.append(source_path)
        records: dict[str, DocumentRecord] = {}
        chunks: list[Chunk] = []
        seen_files: dict[str, Path] = {}  # by lower-case id: ids are unique ignoring case
        with Parser(limits) as parser:
            for file in files:
                doc_id = file.stem
                try:
                    data = file.read_bytes()
                except OSError as ex:
                    report.failed.append((str(file), f"cannot read the file ({ex.strerror or ex})"))
                    continue
                sha256 = file_sha256(data)
                del data
                origin, source, refusal = provenance(
                    file, sha256, listed.get(doc_id.lower()), corpus_dir
                )
                if refusal is not None:
                    report.failed.append((str(file), refusal))
                    continue
                if (other := seen_files.get(doc_id.lower())) is not None:
                    report.failed.append(
                        (str(file), f"duplicate document id {doc_id!r} (also {other})")
                    )
                    continue
                seen_files[doc_id.lower()] = file
                kept = old_docs.get(doc_id)
                if (
                    compatible
                    and kept is not None
                    and kept.sha256 == sha256
                    and kept.origin == origin
                    and (source is None or _same_metadata(kept, source))
                ):
                    assert previous is not None
                    records[doc_id] = replace(kept, source_path=str(file.resolve()))
                    chunks.extend(previous.chunks[i] for i in old_chunks.get(doc_id, []))
                    report.unchanged.append(doc_id)
                    continue
                job = ParseJob(file, origin, source, chunking.max_chars, chunking.min_chars)
                try:
                    parsed = parser.parse(job)
                except QAError as ex:
                    report.failed.append((str(file), str(ex)))
                    continue
                doc, short_title, doc_chunks = parsed.doc, parsed.short_title, parsed.chunks
                if doc.sha256 != sha256:
                    reason = f"{file.name}: the file changed while it was read; ingest again"
                    report.failed.append((str(file), reason))
                    continue
                if not doc_chunks:
                    report.failed.append((str(file), f"{file.name}: no text to index"))
                    continue
                (report.changed if doc_id in old_docs else report.added).append(doc_id)
                records[doc_id] = DocumentRecord(
                    doc_id=doc_id,
                    title=doc.title,
                    short_title=short_title,
                    source_path=str(file.resolve()),
                    sha256=doc.sha256,
                    chunks=len(doc_chunks),
                    url=doc.url,
                    jurisdiction=doc.jurisdiction,
                    kind=doc.kind,
                    version_date=doc.version_date,
                    pages=len(doc.page_starts) or None,
                    aliases=source.aliases if source else (),
                    superseded_by=source.superseded_by if source else None,
                    status=source.status if source else "current",
                    caveat=source.caveat if source else "",
                    amends=source.amends if source else (),
                    origin=origin,
                )
                chunks.extend(doc_chunks)

        failed_ids = {Path(file).stem for file, _ in report.failed}
        report.removed = sorted(set(old_docs) - set(records) - failed_ids)

        if not chunks:
            reasons = "; ".join(reason for _, reason in report.failed[:3])
            raise IngestError(
                f"Nothing to index under {', '.join(map(str, paths))}"
                + (f" ({reasons})" if reasons else "")
                + "; run `atmp-qa corpus fetch` or add documents. The previous index is unchanged."
            )
        vectors = _vectors_for(chunks, previous, cached, embedder, report, on_embed_start)
        manifest = Manifest(
            model=embedder.model_name,
            dim=embedder.dim,
            chunker_version=CHUNKER_VERSION,
            chunk_max_chars=chunking.max_chars,
            chunk_min_chars=chunking.min_chars,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 3),
            documents=dict(sorted(records.items())),
            chunk_count=len(chunks),
        )
        index = Index(manifest, chunks, vectors, dense=FLAT)
        try:
            report.index_path = index.save(index_dir)
        except OSError as ex:
            raise IngestError(
                f"Cannot write the index to {index_dir}/ ({ex.strerror or ex}); "
                "the previous index is unchanged."
            ) from None
    report.chunks = len(chunks)
    report.seconds = time.perf_counter() - started
    return report


def _vectors_for(
    chunks: Sequence[Chunk],
    previous: Index | None,
    cached: Mapping[str, int],
    embedder: Embedder,
    report: IngestReport,
    on_embed_start: Callable[[int], ProgressFn | None] | None,
) -> np.ndarray:
    """Vectors for all chunks: reused from the previous index where the text is identical."""
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    todo: dict[str, list[int]] = {}  # text to embed → the chunks that need it (embedded once)
    for i, chunk in enumerate(chunks):
        j = cached.get(chunk.embed_text)
        if previous is not None and j is not None:
            vectors[i] = previous.vectors[j]
        else:
            todo.setdefault(chunk.embed_text, []).append(i)
    report.reused = len(chunks) - sum(map(len, todo.values()))
    report.embedded = len(todo)
    if todo:
        texts = list(todo)
        progress = on_embed_start(len(texts)) if on_embed_start else None
        embed_started = time.perf_counter()
        embedded = embedder.embed(texts, progress=progress)
        for text, vector in zip(texts, embedded, strict=True):
            vectors[todo[text]] = vector
        report.embed_seconds = time.perf_counter() - embed_started
    return vectors
