"""The on-disk index: FAISS vectors, a chunk store and a manifest, swapped in atomically.

Layout: `index/current` is a symlink to `index/builds/<build id>/`, which holds
`vectors.faiss`, `chunks.jsonl`, `manifest.json` and `bm25/` (the lexical index). A build is
written to a temporary folder, fsynced, then published by replacing the symlink, so a crash
mid-build leaves the previous index in place and loadable.
"""

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter, ValidationError

from qa.chunking import Chunk
from qa.errors import IndexMismatchError, IndexNotFoundError
from qa.lexical import LexicalIndex
from qa.readers.document import LOCAL, ORIGINS

FORMAT_VERSION = 2
REBUILD_HINT = "run `atmp-qa ingest --rebuild`"

DenseKind = Literal["flat", "hnsw", "auto"]
HNSW_THRESHOLD = 1_000_000  # passages from which "auto" searches an HNSW graph
HNSW_EF_CONSTRUCTION = 64  # search breadth while the graph is built (FAISS default: 40)


@dataclass(frozen=True)
class DenseOptions:
    """How the dense vectors are searched: exhaustively (flat) or through an HNSW graph.

    `candidates` is how many nearest neighbours the graph returns to `Index.dense_scores`;
    `threshold` is the passage count from which "auto" picks HNSW (a field, so tests can
    lower it instead of building a million vectors).
    """

    kind: DenseKind = "auto"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    candidates: int = 1000
    threshold: int = HNSW_THRESHOLD

    def resolve(self, passages: int) -> Literal["flat", "hnsw"]:
        """The structure used for an index of `passages` passages."""
        if self.kind == "auto":
            return "hnsw" if passages >= self.threshold else "flat"
        return self.kind


@dataclass(frozen=True)
class DocumentRecord:
    """What the manifest remembers about one indexed document."""

    doc_id: str
    title: str
    short_title: str
    source_path: str
    sha256: str
    chunks: int
    url: str | None = None
    jurisdiction: str | None = None
    kind: str | None = None
    version_date: str | None = None
    pages: int | None = None
    aliases: tuple[str, ...] = ()
    superseded_by: str | None = None
    status: str = "current"  # version status from sources.toml (qa.sources.STATUSES)
    caveat: str = ""  # one line to show under answers drawn from it; "" = none
    amends: tuple[str, ...] = ()  # ids of the texts an amending instrument amends
    origin: str = LOCAL  # "official mirror", "uploaded" or "local file"


@dataclass(frozen=True)
class Manifest:
    """Everything the vectors depend on, plus counts and build time."""

    model: str
    dim: int
    chunker_version: str
    chunk_max_chars: int
    chunk_min_chars: int
    built_at: str
    build_seconds: float
    documents: dict[str, DocumentRecord] = field(default_factory=dict)
    chunk_count: int = 0
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """Plain JSON form of the manifest."""
        data = asdict(self)
        data["document_count"] = len(self.documents)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Manifest":
        """Parse and validate the JSON form; raises `ValidationError` on a malformed one."""
        return _MANIFEST.validate_json(json.dumps(data), strict=True)


# Every row of an index is validated on loading, field by field (strings are strings, pages
# are numbers…), so a damaged file is refused in one line instead of failing a request later.
# pydantic's JSON parser also has a nesting limit (json.loads recursed on 200,000 brackets).
_MANIFEST: TypeAdapter[Manifest] = TypeAdapter(Manifest)
_CHUNK: TypeAdapter[Chunk] = TypeAdapter(Chunk)


def _problem(ex: ValidationError) -> str:
    """The first validation error as "documents.X.title: Input should be a valid string"."""
    first = ex.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    text = f"{where}: {first['msg']}" if where else str(first["msg"])
    return text if len(text) <= 160 else text[:157] + "…"


def _chunk_from_json(line: str | bytes) -> Chunk:
    """One row of chunks.jsonl, validated; raises `ValidationError`."""
    return _CHUNK.validate_json(line, strict=True)


def _check_rows(manifest: "Manifest", chunks: Sequence[Chunk]) -> str | None:
    """What is inconsistent between validated rows, or None."""
    for doc_id, record in manifest.documents.items():
        if record.doc_id != doc_id:
            return f"document {doc_id!r} is recorded as {record.doc_id!r}"
        if record.origin not in ORIGINS:
            return f"document {doc_id!r} has origin {record.origin!r}"
    ids: set[str] = set()
    for number, chunk in enumerate(chunks, start=1):
        if chunk.chunk_id in ids:
            return f"row {number}: chunk id {chunk.chunk_id!r} appears twice"
        ids.add(chunk.chunk_id)
        if chunk.origin not in ORIGINS:
            return f"row {number}: origin {chunk.origin!r}"
    return None


class Index:
    """Chunks with their vectors, searchable by inner product (cosine on unit vectors).

    `dense` chooses the search structure. Flat (below `HNSW_THRESHOLD` passages with "auto")
    is exact. HNSW (`faiss.IndexHNSWFlat`, inner product) is approximate and is built from the
    vectors here, at load time: the file on disk stays a flat index, so every index, old or
    new, loads with either setting. Loading 1M MiniLM passages with HNSW costs memory and time:
    the graph holds its own copy of the vectors (1.5 GB, in place of the flat index's copy)
    plus ~0.3 GB of links (M=32), and building it takes minutes (measured: 0.34 ms per passage
    on one core at 40,000 passages, 25 s for 100,000 on two cores, growing slowly with size;
    roughly 10 minutes on one core for 1M, about one on sixteen), paid at every start and every
    index reload (the old index serves until the new one is built).
    """

    def __init__(
        self,
        manifest: Manifest,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        *,
        lexical: LexicalIndex | None = None,
        dense: DenseOptions | None = None,
    ) -> None:
        import faiss

        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self.manifest = manifest
        self.chunks = list(chunks)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, manifest.dim)
        self.dense = dense or DenseOptions()
        self.dense_kind = self.dense.resolve(len(self.chunks))
        if self.dense_kind == "hnsw":
            graph = faiss.IndexHNSWFlat(manifest.dim, self.dense.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            self.faiss: faiss.Index = graph
        else:
            self.faiss = faiss.IndexFlatIP(manifest.dim)
        if len(self.vectors):
            self.faiss.add(self.vectors)
        self.by_id = {c.chunk_id: i for i, c in enumerate(self.chunks)}
        self.lexical = lexical or LexicalIndex.build([c.lexical_text for c in self.chunks])
        self.path: Path | None = None

    def search(self, vector: np.ndarray, k: int) -> list[tuple[Chunk, float]]:
        """The k chunks nearest to a unit query vector, best first."""
        if not self.chunks or k <= 0:
            return []
        scores, ids = self._nearest(vector, min(k, len(self.chunks)))
        return [(self.chunks[i], float(s)) for s, i in zip(scores, ids, strict=True)]

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of every chunk to a unit query vector, in chunk order.

        Flat: every cosine, exact. HNSW: the exact cosines of the `dense.candidates` nearest
        chunks the graph finds; every other chunk gets the smallest of those (0 if none was
        found) rather than 0, so a chunk only BM25 or a named provision finds is not sunk by a
        cosine nobody computed. For a chunk outside the true nearest candidates that value is
        a ceiling (slightly generous); a near chunk the graph missed is underrated by it; and
        under a filter to documents none of whose chunks is a candidate, the dense signal is
        the same for all of them, so lexical and the other signals rank them.
        """
        out = np.zeros(len(self.chunks), dtype=np.float32)
        if not self.chunks:
            return out
        if self.dense_kind == "flat":  # one matrix-vector product; no ranking needed
            query = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
            flat: np.ndarray = self.vectors @ query
            return flat
        else:
            scores, ids = self._nearest(vector, min(self.dense.candidates, len(self.chunks)))
            out[:] = scores.min() if len(scores) else 0.0
        out[ids] = scores
        return out

    def _nearest(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and chunk numbers of the k nearest chunks found, best first."""
        import faiss

        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        if self.dense_kind == "hnsw":
            # The graph explores at least k nodes; per-call parameters are thread-safe.
            ef_search = max(self.dense.hnsw_ef_search, k)
            params = faiss.SearchParametersHNSW(efSearch=ef_search)  # type: ignore[attr-defined]
            scores, ids = self.faiss.search(query, k, params=params)
        else:
            scores, ids = self.faiss.search(query, k)
        found = ids[0] >= 0
        return scores[0][found], ids[0][found]

    def _flat(self) -> Any:
        """The vectors as a flat FAISS index, the form vectors.faiss always holds."""
        import faiss

        if self.dense_kind == "flat":
            return self.faiss
        flat = faiss.IndexFlatIP(self.manifest.dim)
        if len(self.vectors):
            flat.add(self.vectors)
        return flat

    # -- persistence ------------------------------------------------------------------------
    def save(self, index_dir: Path) -> Path:
        """Write a new build under `index_dir/builds/` and publish it atomically; returns it.

        Every file is written with Python's I/O and fsynced, so a full disk or a write error
        raises `OSError` (FAISS's own writer can drop the error a full disk reports when it
        closes the file); a failed build is removed and the published one stays in place.
        """
        import faiss

        builds = index_dir / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        tmp = builds / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        stamp = self.manifest.built_at.replace(":", "").replace("-", "")
        final = builds / f"{stamp}-{uuid.uuid4().hex[:6]}"
        try:
            _write_file(tmp / "vectors.faiss", [faiss.serialize_index(self._flat()).tobytes()])
            _write_file(
                tmp / "chunks.jsonl",
                (
                    (json.dumps(asdict(chunk), ensure_ascii=False) + "\n").encode()
                    for chunk in self.chunks
                ),
            )
            manifest = json.dumps(self.manifest.to_json(), indent=2, ensure_ascii=False)
            _write_file(tmp / "manifest.json", [manifest.encode()])
            self.lexical.save(tmp / "bm25")
            for path in (tmp / "bm25").iterdir():
                _fsync(path)
            _fsync(tmp / "bm25")
            _fsync(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk gets its space back
            raise
        link = index_dir / f".current-{uuid.uuid4().hex}"
        try:
            _fsync(builds)
            os.symlink(Path("builds") / final.name, link)
            os.replace(link, index_dir / "current")  # the atomic switch
        except BaseException:
            link.unlink(missing_ok=True)
            shutil.rmtree(final, ignore_errors=True)
            raise
        _fsync(index_dir)
        remove_stale_builds(index_dir)
        self.path = final
        return final

    @classmethod
    def load(
        cls,
        index_dir: Path,
        *,
        model: str | None = None,
        dim: int | None = None,
        dense: DenseOptions | None = None,
    ) -> "Index":
        """Load the published index; refuse one that is missing, damaged or built differently.

        The build `current` points to is resolved once, so every file comes from the same
        build; if an ingest publishes another (and removes this one) mid-read, the new one is
        read instead. `dense` chooses the search structure (an HNSW graph is built here).
        """
        for _ in range(LOAD_ATTEMPTS - 1):
            build = _published_build(index_dir)
            try:
                return cls._load_build(index_dir, build, model=model, dim=dim, dense=dense)
            except (IndexMismatchError, IndexNotFoundError):
                if _published_build(index_dir) == build:
                    raise  # nothing moved underneath: the index itself is at fault
        build = _published_build(index_dir)
        return cls._load_build(index_dir, build, model=model, dim=dim, dense=dense)

    @classmethod
    def _load_build(
        cls,
        index_dir: Path,
        build: Path,
        *,
        model: str | None,
        dim: int | None,
        dense: DenseOptions | None,
    ) -> "Index":
        manifest = _read_manifest_file(index_dir, build / "manifest.json")
        if manifest.format_version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"Index at {index_dir}/ has format {manifest.format_version}, this version reads "
                f"{FORMAT_VERSION}; {REBUILD_HINT}."
            )
        if model is not None and manifest.model != model:
            raise IndexMismatchError(
                f"Index at {index_dir}/ was built with model {manifest.model!r} but settings ask "
                f"for {model!r}; {REBUILD_HINT}."
            )
        if dim is not None and manifest.dim != dim:
            raise IndexMismatchError(
                f"Index at {index_dir}/ has {manifest.dim}-dimensional vectors but the model "
                f"gives {dim}; {REBUILD_HINT}."
            )
        current = index_dir / "current"
        chunks_path, vectors_path = current / "chunks.jsonl", current / "vectors.faiss"
        chunks: list[Chunk] = []
        number = 0
        try:
            with open(build / "chunks.jsonl", "rb") as lines:
                for number, line in enumerate(lines, start=1):  # noqa: B007 (used below)
                    if line.strip():
                        chunks.append(_chunk_from_json(line))
        except ValidationError as ex:
            raise IndexMismatchError(
                f"Index file {chunks_path} is corrupt (row {number}: {_problem(ex)}); "
                f"{REBUILD_HINT}."
            ) from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as ex:
            raise IndexMismatchError(
                f"Index file {chunks_path} is unreadable or corrupt ({_reason(ex)}); "
                f"{REBUILD_HINT}."
            ) from None
        if (problem := _check_rows(manifest, chunks)) is not None:
            shown = chunks_path if problem.startswith("row") else current / "manifest.json"
            raise IndexMismatchError(f"Index file {shown} is corrupt ({problem}); {REBUILD_HINT}.")
        if len(chunks) != manifest.chunk_count:
            raise IndexMismatchError(
                f"Index file {chunks_path} holds {len(chunks)} passages but the manifest says "
                f"{manifest.chunk_count}; {REBUILD_HINT}."
            )
        vectors = _read_vectors(build / "vectors.faiss", vectors_path, manifest.dim)
        if len(vectors) != len(chunks):
            raise IndexMismatchError(
                f"Index file {vectors_path} holds {len(vectors)} vectors for {len(chunks)} "
                f"passages; {REBUILD_HINT}."
            )
        try:
            lexical = LexicalIndex.load(build / "bm25")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as ex:
            raise IndexMismatchError(
                f"Index files in {current / 'bm25'} are unreadable or corrupt ({_reason(ex)}); "
                f"{REBUILD_HINT}."
            ) from None
        if lexical.size != len(chunks):
            raise IndexMismatchError(
                f"Index files in {current / 'bm25'} have {lexical.size} rows for {len(chunks)} "
                f"passages; {REBUILD_HINT}."
            )
        index = cls(manifest, chunks, vectors, lexical=lexical, dense=dense)
        index.path = build
        return index


LOAD_ATTEMPTS = 3


def _published_build(index_dir: Path) -> Path:
    """The build folder `index_dir/current` points to; `IndexNotFoundError` when there is none."""
    current = index_dir / "current"
    build = current.resolve()
    if not (build / "manifest.json").exists():
        raise IndexNotFoundError(
            f"No index at {index_dir}/; build it with `atmp-qa ingest` "
            "(after `atmp-qa corpus fetch`)."
        )
    return build


def read_manifest(index_dir: Path) -> Manifest:
    """Read the published manifest; raises IndexNotFoundError / IndexMismatchError."""
    path = index_dir / "current" / "manifest.json"
    if not path.exists():
        raise IndexNotFoundError(f"No index at {index_dir}/; build it with `atmp-qa ingest`.")
    return _read_manifest_file(index_dir, path)


MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "dim": int,
    "chunker_version": str,
    "chunk_max_chars": int,
    "chunk_min_chars": int,
    "built_at": str,
    "build_seconds": (int, float),
    "chunk_count": int,
    "format_version": int,
}


def _read_manifest_file(index_dir: Path, path: Path) -> Manifest:
    shown = index_dir / "current" / "manifest.json"
    try:
        manifest = _MANIFEST.validate_json(path.read_bytes(), strict=True)
    except ValidationError as ex:
        raise IndexMismatchError(
            f"Index file {shown} is corrupt ({_problem(ex)}); {REBUILD_HINT}."
        ) from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as ex:
        raise IndexMismatchError(
            f"Index file {shown} is unreadable or corrupt ({_reason(ex)}); {REBUILD_HINT}."
        ) from None
    for name, kind in MANIFEST_TYPES.items():
        value = getattr(manifest, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise IndexMismatchError(
                f"Index file {shown} is corrupt ({name} is {value!r}); {REBUILD_HINT}."
            )
    if manifest.dim <= 0 or manifest.chunk_count < 0:
        raise IndexMismatchError(
            f"Index file {shown} is corrupt (dim {manifest.dim}, {manifest.chunk_count} "
            f"passages); {REBUILD_HINT}."
        )
    return manifest


def _reason(ex: BaseException) -> str:
    """An exception's message on one short line, without a C++ library's source location."""
    text = " ".join(str(ex).split()) or type(ex).__name__
    text = re.sub(r"^Error in .*? at \S+:\d+: (?:Error: '.*?' failed: )?", "", text)
    text = text.split(". If ")[0]  # numpy's "… If you trust the file …" advice
    return text if len(text) <= 160 else text[:157] + "…"


def _read_vectors(path: Path, shown: Path, dim: int) -> np.ndarray:
    import faiss

    try:
        stored = faiss.read_index(str(path))
        if stored.d != dim:
            raise ValueError(f"vectors have {stored.d} dimensions, manifest says {dim}")
        return np.asarray(stored.reconstruct_n(0, stored.ntotal), dtype=np.float32).reshape(-1, dim)
    except (RuntimeError, ValueError, OSError, MemoryError) as ex:
        raise IndexMismatchError(
            f"Index file {shown} is unreadable or corrupt ({_reason(ex)}); {REBUILD_HINT}."
        ) from None


def remove_stale_builds(index_dir: Path) -> None:
    """Delete builds other than the published one, and leftovers of interrupted builds."""
    current = index_dir / "current"
    keep = current.resolve().name if current.exists() else None
    for entry in (index_dir / "builds").glob("*"):
        if entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)
    for leftover in index_dir.glob(".current-*"):
        leftover.unlink(missing_ok=True)


def _write_file(path: Path, parts: Iterable[bytes]) -> None:
    """Write `parts` to a new file and fsync it; a short write or full disk raises OSError."""
    with open(path, "wb") as out:
        for part in parts:
            out.write(part)
        out.flush()
        os.fsync(out.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
