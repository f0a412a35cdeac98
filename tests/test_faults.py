"""Faults: a killed ingest process, a damaged index on disk, a full disk or a refused write
during ingest, and queries while an ingest swaps the index in.

Each time the previous index stays in place and loadable, the server keeps answering, and
the command line says what happened in one line. (tests/test_ingest.py kills an in-process
ingest's subprocess without a server; here a live server answers throughout.)
"""

import errno
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.config import Settings
from qa.embed import Embedder
from qa.errors import IngestError
from qa.index import Index
from qa.lexical import LexicalIndex
from qa.pipeline import ingest

from .conftest import SOURCES, make_settings, served_index
from .test_api import live_server, mini_app, mini_settings

TOKEN = "faults-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTIONS = [
    "How long must traceability records be kept?",
    "Who needs a licence for exempt products?",
    "What must a batch record contain?",
    "When does the regulation enter into force?",
]
NOTE = """Demo note on cell banks

1. Storage

The master cell bank must be kept in two cryogenic vaults in separate buildings.
"""


def env_for(settings: Settings) -> dict[str, str]:
    """The environment for an `atmp-qa` subprocess using `settings`' folders."""
    return {
        **os.environ,
        "QA_CORPUS_DIR": str(settings.corpus_dir),
        "QA_INDEX_DIR": str(settings.index_dir),
        "QA_SOURCES_FILE": str(SOURCES),
    }


def builds(settings: Settings) -> list[str]:
    """Folders under index/builds, leftovers of interrupted builds included."""
    return sorted(p.name for p in (settings.index_dir / "builds").iterdir())


class Askers:
    """Clients asking and searching in a loop until stopped, recording every outcome."""

    def __init__(self, base_url: str, clients: int = 4) -> None:
        self.base_url = base_url
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(clients)]

    def run(self, n: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            i = n
            while not self.stop.is_set():
                question = QUESTIONS[i % len(QUESTIONS)]
                try:
                    if i % 3:
                        response = client.post("/ask", json={"question": question})
                    else:
                        response = client.get("/search", params={"q": question, "k": 3})
                    self.statuses.append(response.status_code)
                    if response.status_code != 200:
                        self.errors.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as ex:
                    self.errors.append(repr(ex))
                i += 1

    def __enter__(self) -> "Askers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/ingest/{job_id}", headers=AUTH).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"ingest job {job_id} did not finish in {timeout_s} s")


def run_ingest_job(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/ingest", headers=AUTH)
    assert response.status_code == 202, response.text
    return wait_for_job(client, response.json()["job_id"])


@pytest.fixture
def served(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[Settings, str]]:
    """A live server on loopback over the mini corpus, admin enabled."""
    settings = mini_settings(tmp_path, embedder, admin_token=TOKEN)
    with live_server(mini_app(settings, embedder)) as url:
        yield settings, url


# -- kill -9 --------------------------------------------------------------------------------


def test_kill_9_of_the_ingest_process_while_the_server_keeps_answering(
    served: tuple[Settings, str], shared_corpus: Path
) -> None:
    settings, url = served
    before = Index.load(settings.index_dir).manifest
    # ~110 passages to embed: the ingest is still embedding when it is killed.
    shutil.copy(shared_corpus / "eu" / "32006R1901.md", settings.corpus_dir)
    with Askers(url) as askers:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "ingest"],
            env=env_for(settings),
            cwd=settings.corpus_dir.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stderr is not None
        deadline, seen = time.monotonic() + 120, b""
        while b"Embedding" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.read1(4096)
        assert b"Embedding" in seen, seen.decode(errors="replace")
        time.sleep(0.5)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        answered_before_kill = len(askers.statuses)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        time.sleep(1.0)  # the server keeps answering after the kill too
    assert askers.errors == [] and answered_before_kill > 0
    assert len(askers.statuses) > answered_before_kill
    # The previous index is what is published, and nothing of the killed build was published.
    after = Index.load(settings.index_dir)
    assert after.manifest.built_at == before.built_at
    assert "32006R1901" not in after.manifest.documents
    # The next ingest (the server's own, through the API) completes and is served at once.
    with httpx.Client(base_url=url, timeout=60) as client:
        job = run_ingest_job(client)
        assert job["state"] == "succeeded" and job["added"] == ["32006R1901"], job
        assert client.get("/ready").json()["documents"] == 4
        results = client.get("/search", params={"q": "paediatric investigation plan", "k": 1})
        assert results.json()["results"][0]["doc_id"] == "32006R1901"
    assert len(builds(settings)) == 1


# -- a damaged index on disk ----------------------------------------------------------------


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated vectors": (lambda b: _truncate(b / "vectors.faiss", 1000), "vectors.faiss"),
    "empty vectors": (lambda b: _truncate(b / "vectors.faiss", 0), "vectors.faiss"),
    "truncated passages": (lambda b: _truncate(b / "chunks.jsonl", 3000), "chunks.jsonl"),
    "a passage missing": (
        lambda b: (b / "chunks.jsonl").write_text(
            "".join((b / "chunks.jsonl").read_text().splitlines(keepends=True)[1:])
        ),
        "chunks.jsonl",
    ),
    "garbage manifest": (lambda b: (b / "manifest.json").write_bytes(b"\x00\xff{"), "manifest"),
    "manifest of the wrong shape": (
        lambda b: (b / "manifest.json").write_text('{"documents": 5}'),
        "manifest.json",
    ),
    "truncated BM25 matrix": (lambda b: _truncate(b / "bm25" / "data.csc.index.npy", 60), "bm25"),
    # Rows of the wrong type: a 43-line traceback, or loaded and then a 500, on main.
    "a document title that is a number": (
        lambda b: (b / "manifest.json").write_text(
            (b / "manifest.json").read_text().replace('"title": "', '"title": 5, "x": "', 1)
        ),
        "manifest.json is corrupt (documents.",
    ),
    "a passage page that is not a number": (
        lambda b: (b / "chunks.jsonl").write_text(
            (b / "chunks.jsonl").read_text().replace('"page": null', '"page": "x"', 1)
        ),
        "chunks.jsonl is corrupt (row 1: page",
    ),
    "200,000 nested brackets in the manifest": (
        lambda b: (b / "manifest.json").write_text("[" * 200_000 + "]" * 200_000),
        "manifest.json",
    ),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    return mini_settings(tmp_path_factory.mktemp("pristine"), embedder)


@pytest.mark.parametrize("damage", DAMAGE)
def test_serve_refuses_a_damaged_index_in_one_line(
    pristine: Settings, tmp_path: Path, damage: str
) -> None:
    shutil.copytree(pristine.index_dir, tmp_path / "index", symlinks=True)
    settings = make_settings(tmp_path, corpus_dir=pristine.corpus_dir)
    harm, named = DAMAGE[damage]
    harm((settings.index_dir / "current").resolve())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--port", str(port)],
        env=env_for(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert lines[0].startswith("Error: Index file") and f"{settings.index_dir}/current/" in lines[0]
    assert named in lines[0] and lines[0].endswith("run `atmp-qa ingest --rebuild`.")


# -- a full disk or a refused write during ingest --------------------------------------------


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))


def test_a_write_error_in_the_ingest_process_keeps_the_previous_index(
    tmp_path: Path, embedder: Embedder
) -> None:
    """The kernel refuses every write past 8 kB, as a full disk would refuse it."""
    settings = mini_settings(tmp_path, embedder)
    before = Index.load(settings.index_dir).manifest
    (settings.corpus_dir / "note.txt").write_text(NOTE)
    done = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", "--quiet"],
        env=env_for(settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: Cannot write the index to {settings.index_dir}/ (File too large); "
        "the previous index is unchanged."
    )
    assert Index.load(settings.index_dir).manifest == before
    assert len(builds(settings)) == 1  # the half-written build was removed


def _failing_write(fail_on: str, error: OSError) -> Callable[..., None]:
    from qa import index as index_module

    real = index_module._write_file

    def write(path: Path, parts: Any) -> None:
        if path.name == fail_on:
            with open(path, "wb") as out:
                out.write(b"half a file")
            raise error
        real(path, parts)

    return write


@pytest.mark.parametrize(
    ("seam", "error", "shown"),
    [
        (
            "chunks.jsonl",
            OSError(errno.ENOSPC, "No space left on device"),
            "No space left on device",
        ),
        ("symlink", PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        ("bm25", OSError(errno.EDQUOT, "Disk quota exceeded"), "Disk quota exceeded"),
    ],
)
def test_disk_full_or_permission_errors_are_reported_and_the_index_kept(
    tmp_path: Path,
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
    seam: str,
    error: OSError,
    shown: str,
) -> None:
    settings = mini_settings(tmp_path, embedder)
    before = Index.load(settings.index_dir)
    (settings.corpus_dir / "note.txt").write_text(NOTE)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise error

    if seam == "symlink":
        monkeypatch.setattr("qa.index.os.symlink", refuse)
    elif seam == "bm25":
        monkeypatch.setattr(LexicalIndex, "save", refuse)
    else:
        monkeypatch.setattr("qa.index._write_file", _failing_write(seam, error))
    with pytest.raises(IngestError) as failed:
        ingest(settings, embedder=embedder)
    assert str(failed.value) == (
        f"Cannot write the index to {settings.index_dir}/ ({shown}); "
        "the previous index is unchanged."
    )
    monkeypatch.undo()
    after = Index.load(settings.index_dir)
    assert after.manifest == before.manifest and after.path == before.path
    assert len(builds(settings)) == 1 and not list(settings.index_dir.glob(".current-*"))
    assert ingest(settings, embedder=embedder).added == ["note"]  # fine once there is room


def test_an_index_folder_that_cannot_be_created_is_one_line(
    tmp_path: Path, embedder: Embedder
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the index folder should go")
    settings = make_settings(tmp_path, index_dir=blocker / "index")
    shutil.copytree(Path(__file__).parent / "data" / "mini", settings.corpus_dir)
    with pytest.raises(IngestError, match=r"Cannot create the ingest lock .*Not a directory"):
        ingest(settings, embedder=embedder)


def test_a_failed_ingest_job_leaves_the_server_answering(
    served: tuple[Settings, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, url = served
    (settings.corpus_dir / "note.txt").write_text(NOTE)
    error = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("qa.index._write_file", _failing_write("vectors.faiss", error))
    with httpx.Client(base_url=url, timeout=60) as client:
        before = served_index(client)
        job = run_ingest_job(client)
        assert job["state"] == "failed" and "No space left on device" in job["message"], job
        assert "the previous index is unchanged" in job["message"]
        assert served_index(client) == before
        assert client.post("/ask", json={"question": QUESTIONS[0]}).status_code == 200
        monkeypatch.undo()
        assert run_ingest_job(client)["added"] == ["note"]


# -- queries while the index is swapped ------------------------------------------------------


def test_queries_running_while_ingests_swap_the_index_all_succeed(
    served: tuple[Settings, str],
) -> None:
    settings, url = served
    note = settings.corpus_dir / "note.txt"
    question = "Where must the master cell bank be kept?"
    with Askers(url) as askers, httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(2):
            note.write_text(NOTE)
            assert run_ingest_job(client)["added"] == ["note"]
            top = client.get("/search", params={"q": question, "k": 1}).json()["results"][0]
            assert top["doc_id"] == "note"
            note.unlink()
            assert run_ingest_job(client)["removed"] == ["note"]
            top = client.get("/search", params={"q": question, "k": 1}).json()["results"][0]
            assert top["doc_id"] != "note"
    assert askers.errors == [] and len(askers.statuses) >= 20


def test_a_load_racing_a_publish_reads_the_new_build(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`current` switches (and the old build is deleted) while a load is half-way through."""
    settings = mini_settings(tmp_path, embedder)
    (settings.corpus_dir / "note.txt").write_text(NOTE)
    real_load = LexicalIndex.load
    raced: list[bool] = []

    def load_while_publishing(directory: Path) -> LexicalIndex:
        if not raced:
            raced.append(True)
            monkeypatch.setattr(LexicalIndex, "load", real_load)  # the ingest's own reads
            ingest(settings, embedder=embedder)  # publishes and removes the build being read
        return real_load(directory)

    monkeypatch.setattr(LexicalIndex, "load", load_while_publishing)
    index = Index.load(settings.index_dir)
    assert raced and "note" in index.manifest.documents
    assert index.path == (settings.index_dir / "current").resolve()
