"""Background ingest jobs: one at a time, progress, joining a queued job, failures."""

import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.api.errors import NotFoundError
from qa.api.jobs import EMBED_START, IngestJobs, Job
from qa.api.service import load_service
from qa.embed import Embedder, ProgressFn
from qa.pipeline import QA

from .test_api import mini_settings

NEW_DOC = "Demo note on cell banks\n\n1. Storage\n\nCell banks are kept in two vaults.\n"


class GatedEmbedder:
    """The real embedder, waiting at a gate before each batch (or failing, if told to)."""

    def __init__(self, inner: Embedder, *, fail: bool = False) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail = fail

    @property
    def dim(self) -> int:
        return self.inner.dim

    def word_pieces(self, word: str) -> int:
        return self.inner.word_pieces(word)

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(60)
        if self.fail:
            raise RuntimeError("boom")
        return self.inner.embed(texts, progress=progress)


def finished(jobs: IngestJobs, job_id: str, timeout_s: float = 120) -> Job:
    deadline = time.monotonic() + timeout_s
    while (job := jobs.get(job_id)).state in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.05)
    return job


@pytest.fixture
def service(tmp_path: Path, embedder: Embedder) -> QA:
    settings = mini_settings(tmp_path, embedder)
    (settings.corpus_dir / "note.txt").write_text(NEW_DOC, encoding="utf-8")
    return load_service(settings, embedder=embedder)


def test_jobs_run_one_at_a_time_and_a_new_request_joins_the_queued_one(
    service: QA, embedder: Embedder
) -> None:
    gated = GatedEmbedder(embedder)
    jobs = IngestJobs(service, embedder=gated)
    try:
        check_queueing(jobs, gated, service)
    finally:
        gated.gate.set()  # never leave the worker waiting
        jobs.shutdown()


def check_queueing(jobs: IngestJobs, gated: GatedEmbedder, service: QA) -> None:
    first = jobs.submit()
    assert first.state == "queued" and first.progress == 0
    assert gated.entered.wait(60)
    running = jobs.get(first.job_id)
    assert running.state == "running" and running.progress == EMBED_START
    assert re.fullmatch(r"Embedding \d+ passages\.", running.message) and running.started_at
    second, third = jobs.submit(), jobs.submit()
    assert second.state == "queued" and second.job_id != first.job_id
    assert third.job_id == second.job_id  # a queued ingest will see the same corpus
    assert "note" not in service.index.manifest.documents  # still the old index

    gated.gate.set()
    done = finished(jobs, first.job_id)
    assert done.state == "succeeded" and done.progress == 1.0 and done.report.added == ["note"]
    assert "note" in service.index.manifest.documents  # switched to the new index
    assert service.search("Where are cell banks kept?", k=1)[0].chunk.doc_id == "note"
    again = finished(jobs, second.job_id)
    assert again.state == "succeeded" and again.report.unchanged and not again.report.added


def test_a_crashing_ingest_fails_its_job_and_keeps_the_index(
    service: QA, embedder: Embedder
) -> None:
    gated = GatedEmbedder(embedder, fail=True)
    gated.gate.set()
    jobs = IngestJobs(service, embedder=gated)
    before = service.index
    job = finished(jobs, jobs.submit().job_id)
    assert job.state == "failed" and job.finished_at
    assert job.message == "Ingest failed unexpectedly (boom); see the log."
    assert service.index is before
    assert jobs.submit().job_id != job.job_id  # the worker is still alive
    jobs.shutdown()


def test_an_unknown_job_is_not_found(service: QA, embedder: Embedder) -> None:
    jobs = IngestJobs(service, embedder=embedder)
    with pytest.raises(NotFoundError, match="No ingest job has id 'nope'"):
        jobs.get("nope")
    jobs.shutdown()
