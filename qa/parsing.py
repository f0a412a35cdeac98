"""Reading and chunking documents in a child process, with a time and a memory limit each.

A hostile or broken file must not stall the process that serves queries: parsing is pure
Python, so while it runs it holds the interpreter lock and a query thread in the same process
waits. Here every document is read and chunked in a separate worker process (spawned once and
reused for the next documents); a document that takes longer than its time limit gets the
worker killed (a fresh one takes the next document), one that needs more memory than the
limit fails inside the worker with `MemoryError`, and any exception in a reader becomes a
one-line reason. The caller (`qa.ingest`) skips such a document and indexes the rest.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from qa.chunking import Chunk, chunk_document, short_title_of
from qa.errors import QAError, ReadError
from qa.readers import Document, read_document
from qa.readers.document import UPLOADED, is_official_host
from qa.sources import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParseLimits:
    """What one document may cost to read and chunk."""

    seconds: float = 120.0
    memory_bytes: int = 2 * 1024**3  # the worker's address space, interpreter included
    isolated: bool = True  # False: in this process (no time or memory limit)


@dataclass(frozen=True)
class ParseJob:
    """One document to read and chunk, with what the caller decided about its provenance."""

    path: Path
    origin: str
    source: Source | None  # sources.toml metadata to apply (only to the official file)
    max_chars: int
    min_chars: int


@dataclass(frozen=True)
class Parsed:
    """A read and chunked document (its `text` dropped: the chunks hold it)."""

    doc: Document
    short_title: str
    chunks: list[Chunk]


def describe(doc: Document, source: Source | None, origin: str) -> tuple[Document, str]:
    """Apply the sources manifest's metadata (title, URL, jurisdiction…) to the official file;
    an upload keeps its own, but never a link to an official site (EUR-Lex, legislation.gov.uk):
    those make a citation look like the official text."""
    if source is None:
        if origin == UPLOADED and is_official_host(doc.url):
            doc = replace(doc, url=None)
        return doc, short_title_of(doc.title)
    doc = replace(
        doc,
        title=source.title or doc.title,
        url=source.url or doc.url,
        jurisdiction=source.jurisdiction or doc.jurisdiction,
        kind=source.kind or doc.kind,
        version_date=source.version_date or doc.version_date,
    )
    return doc, source.short_title or short_title_of(doc.title)


def parse_document(job: ParseJob) -> Parsed:
    """Read and chunk one document here, in this process."""
    doc, short_title = describe(read_document(job.path), job.source, job.origin)
    chunks = chunk_document(
        doc,
        max_chars=job.max_chars,
        min_chars=job.min_chars,
        short_title=short_title,
        origin=job.origin,
    )
    return Parsed(replace(doc, text=""), short_title, chunks)


def _reason(job: ParseJob, ex: BaseException) -> str:
    if isinstance(ex, QAError):
        return str(ex)
    if isinstance(ex, MemoryError):
        return f"{job.path.name}: reading it needed more memory than allowed; it was skipped"
    if isinstance(ex, RecursionError):
        return f"{job.path.name}: the file nests too deeply to be read safely; it was skipped"
    detail = " ".join(str(ex).split())[:200]
    return f"{job.path.name}: the file could not be read ({type(ex).__name__}: {detail})"


STARTUP_S = 120  # a fresh interpreter importing the readers (seconds on a busy machine)
CHILD = "import sys; from qa.parsing import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"


def serve(fd: int, memory_bytes: int) -> None:  # pragma: no cover (the worker process)
    """The worker: parse the jobs sent over socket `fd` until it gets None or the socket
    closes (its parent died)."""
    import resource

    conn = Connection(fd)
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit is already in place
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    conn.send(("ready", None))  # documents' time limits start now, not while importing
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("ok", parse_document(job))
        except Exception as ex:  # noqa: BLE001 (every failure is one document's reason)
            reply = ("error", _reason(job, ex))
        try:
            conn.send(reply)
        except MemoryError:
            conn.send(("error", _reason(job, MemoryError())))


class Worker:
    """One worker process and the pipe to it; restarted after a timeout or a crash."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._process is not None and self._process.poll() is None and self._conn is not None:
            return self._conn
        self.close()
        # A fresh interpreter (never a fork of a threaded server), started directly rather
        # than through multiprocessing, which re-runs the parent's main script in the child.
        parent, child = socket.socketpair()
        package_root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(child.fileno()), str(self.limits.memory_bytes)],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as ex:
            parent.close()
            raise ReadError(f"cannot start the document reader process ({ex})") from None
        finally:
            child.close()
        conn = Connection(parent.detach())
        self._process, self._conn = process, conn
        try:
            ready = conn.poll(STARTUP_S) and conn.recv() == ("ready", None)
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.close(kill=True)
            raise ReadError(f"the document reader process did not start within {STARTUP_S} s")
        return conn

    def parse(self, job: ParseJob) -> Parsed:
        """Parse `job` in the worker; `ReadError` with a reason when it fails or runs over."""
        conn = self._start()
        try:
            conn.send(job)
            if not conn.poll(self.limits.seconds):
                self.close(kill=True)
                raise ReadError(
                    f"{job.path.name}: reading and chunking it took longer than "
                    f"{self.limits.seconds:g} s (QA_INGEST_DOC_TIMEOUT_S); it was skipped"
                )
            state, value = conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.close(kill=True)
            raise ReadError(
                f"{job.path.name}: the reader stopped while reading it (out of memory or a "
                "crash); it was skipped"
            ) from None
        if state != "ok":
            raise ReadError(str(value))
        parsed: Parsed = value
        return parsed

    def close(self, *, kill: bool = False) -> None:
        """Stop the worker (at once with `kill`)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            try:
                if not kill:
                    conn.send(None)
            except (OSError, BrokenPipeError):
                pass
            conn.close()
        if process is not None:
            if kill:
                process.kill()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


_shared: Worker | None = None
_shared_lock = threading.Lock()


class Parser:
    """Parses the documents of one ingest: in the process-wide worker when it is free (it
    stays up between ingests, so a re-index does not pay for starting Python again), in a
    worker of its own when another ingest of this process is using that one."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        limits = limits or ParseLimits()
        self.limits = limits
        self._worker: Worker | None = None
        self._owns_lock = False

    def __enter__(self) -> Parser:
        global _shared
        if not self.limits.isolated:
            return self
        if _shared_lock.acquire(blocking=False):
            self._owns_lock = True
            if _shared is None or _shared.limits != self.limits:
                if _shared is not None:
                    _shared.close()
                _shared = Worker(self.limits)
            self._worker = _shared
        else:
            self._worker = Worker(self.limits)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_lock:
            _shared_lock.release()
        elif self._worker is not None:
            self._worker.close()
        self._worker = None

    def parse(self, job: ParseJob) -> Parsed:
        """Read and chunk one document (in the worker unless isolation is off)."""
        if self._worker is None:
            try:
                return parse_document(job)
            except Exception as ex:  # noqa: BLE001
                raise ReadError(_reason(job, ex)) from None
        return self._worker.parse(job)


@atexit.register
def _stop_shared_worker() -> None:
    if _shared is not None:
        _shared.close(kill=True)
