"""Shared fixtures: the real bundled model, the shared corpus, small fixture corpora."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest

from qa.config import Settings
from qa.embed import Embedder, ProgressFn
from qa.pipeline import ingest, load_embedder

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
SOURCES = REPO / "corpus" / "sources.toml"
# One ONNX export for every test (and every server a test starts), not one per index folder.
MODEL_CACHE = Path(tempfile.gettempdir()) / "atmp-qa-test-models"
os.environ.setdefault("QA_MODEL_CACHE_DIR", str(MODEL_CACHE))


class RecordingEmbedder:
    """The real embedder, remembering every text it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.embedded: list[str] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        self.embedded.extend(texts)
        return self.inner.embed(texts, progress=progress)


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings rooted in a temporary folder, ignoring any .env of the developer."""
    values: dict[str, object] = {
        "corpus_dir": root / "corpus",
        "index_dir": root / "index",
        "sources_file": SOURCES,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled all-MiniLM-L6-v2 on the default runtime (ONNX Runtime), loaded once
    per test session."""
    return load_embedder(Settings(_env_file=None))  # type: ignore[call-arg]


@pytest.fixture
def recording(embedder: Embedder) -> RecordingEmbedder:
    return RecordingEmbedder(embedder)


@pytest.fixture(scope="session")
def shared_corpus() -> Path:
    if not SHARED_CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing at {SHARED_CORPUS}")
    return SHARED_CORPUS


@pytest.fixture
def mini_corpus(tmp_path: Path) -> Path:
    """A copy of the small hand-written fixture corpus (two laws and a guideline)."""
    target = tmp_path / "corpus"
    shutil.copytree(DATA / "mini", target)
    return target


@pytest.fixture(scope="session")
def real_index(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    shared_corpus: Path,
) -> Settings:
    """The whole shared corpus, fetched and indexed with the real model (once per session)."""
    from qa.sources import fetch_corpus, load_sources

    root = tmp_path_factory.mktemp("real")
    settings = make_settings(root)
    statuses = fetch_corpus(
        load_sources(SOURCES), settings.corpus_dir, mirror=shared_corpus, timeout_s=1
    )
    assert sum(s.state == "copied" for s in statuses) == 19
    report = ingest(settings, embedder=embedder)
    assert not report.failed, report.failed
    return settings


def served_index(client: httpx.Client) -> dict[str, object]:
    """What /ready says of the index being served, without the worker's memory (which moves
    between two calls whatever the index does)."""
    return {k: v for k, v in client.get("/ready").json().items() if k != "rss_mib"}


@contextmanager
def serve_process(
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    ready: Callable[[str], bool],
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[tuple[str, "subprocess.Popen[bytes]"]]:
    """`python -m qa serve ARGS` (ARGS include `--port`) in a process of its own; yields
    (url, process) once `ready(url)` holds, and stops it with SIGINT afterwards."""
    port = args[args.index("--port") + 1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=preexec_fn,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, f"atmp-qa serve {' '.join(args)} did not start"
            try:
                if ready(url):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
