"""Background ingests: one at a time, in a worker thread, while queries keep being answered.

A finished ingest publishes the new index and the service switches to it (`QA.reload`);
a failed one leaves the current index in place. Each job is also written to a small JSON file
(`index/jobs/<id>.json`), so with `serve --workers N` any worker answers `GET /ingest/<id>`
for a job another worker runs; the ingest lock keeps two from running at once.
"""

import contextlib
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from qa.api.errors import NotFoundError
from qa.embed import Embedder, ProgressFn
from qa.errors import QAError
from qa.ingest import IngestReport
from qa.pipeline import QA, ingest

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "succeeded", "failed"]
KEEP_JOBS = 100
# Share of the progress bar for each stage: reading and chunking, embedding, loading.
EMBED_START, EMBED_END = 0.1, 0.9


@dataclass(frozen=True)
class Job:
    """One ingest request and where it stands."""

    job_id: str
    created_at: str
    state: JobState = "queued"
    progress: float = 0.0
    message: str = "Waiting for the worker."
    started_at: str | None = None
    finished_at: str | None = None
    report: IngestReport = field(default_factory=IngestReport)


JOB_ID = re.compile(r"[0-9a-f]{12}")


def skipped_files(report: IngestReport, *, most: int = 5) -> str:
    """ " Skipped: a.pdf (why); b.md (why)." for the documents an ingest could not index."""
    if not report.failed:
        return ""
    shown = []
    for file, reason in report.failed[:most]:
        name = Path(file).name
        why = reason.removeprefix(f"{name}: ")
        shown.append(f"{name} ({why if len(why) <= 200 else why[:199] + '…'})")
    more = len(report.failed) - most
    return " Skipped: " + "; ".join(shown) + (f"; and {more} more." if more > 0 else ".")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_JOB = TypeAdapter(Job)


class IngestJobs:
    """Runs ingests of the corpus one after another and remembers the recent ones."""

    def __init__(self, qa: QA, *, embedder: Embedder, store: Path | None = None) -> None:
        self.qa = qa
        self.embedder = embedder  # not the one queries use: see qa.api.service
        self.store = store  # the folder the workers share the jobs' state in; None: memory only
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest")

    def submit(self) -> Job:
        """Queue an ingest; a request while one is still queued joins that one."""
        with self._lock:
            waiting = next((j for j in self._jobs.values() if j.state == "queued"), None)
            if waiting is not None:
                return waiting
            job = Job(job_id=uuid.uuid4().hex[:12], created_at=_now())
            self._jobs[job.job_id] = job
            for old in list(self._jobs)[:-KEEP_JOBS]:
                del self._jobs[old]
            self._save(job)
        self._prune_store()
        self._worker.submit(self._run, job.job_id)
        return job

    def get(self, job_id: str) -> Job:
        """A job by id."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            job = self._load(job_id)
        if job is None:
            raise NotFoundError(
                f"No ingest job has id {job_id!r} (jobs are kept until the server restarts); "
                "start one with POST /ingest."
            )
        return job

    def shutdown(self) -> None:
        """Stop taking work; a running ingest finishes in the background (it is crash-safe)."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            self._save(self._jobs[job_id])

    # -- the state shared with the other workers ------------------------------------------------
    def _save(self, job: Job) -> None:
        """Write the job's state for the other workers (atomically; a failure only logs)."""
        if self.store is None:
            return
        tmp = self.store / f".{job.job_id}.{uuid.uuid4().hex[:6]}.tmp"
        try:
            self.store.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(_JOB.dump_json(job))
            os.replace(tmp, self.store / f"{job.job_id}.json")
        except OSError as ex:
            tmp.unlink(missing_ok=True)
            log.warning("could not record ingest job %s in %s: %s", job.job_id, self.store, ex)

    def _load(self, job_id: str) -> Job | None:
        """A job another worker recorded, or None."""
        if self.store is None or not JOB_ID.fullmatch(job_id):
            return None
        try:
            return _JOB.validate_json((self.store / f"{job_id}.json").read_bytes())
        except (OSError, ValidationError):
            return None

    def _prune_store(self) -> None:
        if self.store is None:
            return
        with contextlib.suppress(OSError):
            recorded = sorted(self.store.glob("*.json"), key=lambda p: p.stat().st_mtime)
            for old in recorded[:-KEEP_JOBS]:
                old.unlink(missing_ok=True)

    def _run(self, job_id: str) -> None:
        self._update(job_id, state="running", started_at=_now(), message="Reading documents.")
        try:
            report = ingest(
                self.qa.settings,
                embedder=self.embedder,
                on_embed_start=self._progress_for(job_id),
            )
            self._update(job_id, progress=EMBED_END, message="Loading the new index.")
            self.qa.reload()
        except QAError as ex:
            self._finish(job_id, "failed", str(ex))
        except Exception as ex:  # a bug must not kill the worker; the index is untouched
            log.exception("ingest job %s failed", job_id)
            self._finish(job_id, "failed", f"Ingest failed unexpectedly ({ex}); see the log.")
        else:
            message = report.summary() + skipped_files(report)
            self._finish(job_id, "succeeded", message, progress=1.0, report=report)

    def _finish(self, job_id: str, state: JobState, message: str, **changes: Any) -> None:
        self._update(job_id, state=state, message=message, finished_at=_now(), **changes)

    def _progress_for(self, job_id: str) -> Callable[[int], ProgressFn]:
        def on_embed_start(total: int) -> ProgressFn:
            done = 0

            def progress(count: int) -> None:
                nonlocal done
                done += count
                share = EMBED_START + (EMBED_END - EMBED_START) * done / max(total, 1)
                self._update(
                    job_id,
                    progress=round(share, 3),
                    message=f"Embedded {done} of {total} passages.",
                )

            self._update(job_id, progress=EMBED_START, message=f"Embedding {total} passages.")
            return progress

        return on_embed_start
