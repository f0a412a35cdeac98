"""`atmp-qa serve --workers 2` over one index, with an ingest publishing mid-load (issue 12,
point 4): both worker processes answer, each reports its pid and memory, both switch to the
new build within 5 s of its publication, and under load no request fails and no answer mixes
passages of two builds.
"""

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from qa.config import Settings
from qa.embed import Embedder
from qa.index import Index
from qa.pipeline import ingest

from .conftest import serve_process
from .test_api import free_port, mini_settings
from .test_faults import env_for

NEW_DOCUMENT = """# Regulation on the storage of cryopreserved cell banks

## Article 1
### Retention of cell bank records

Records of every cryopreserved cell bank shall be kept for a minimum of 45 years after the
last use of the bank.
"""
QUESTION = "How long must records of cryopreserved cell banks be kept?"


@pytest.fixture(scope="module")
def workers(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[Settings, str, subprocess.Popen[bytes]]]:
    root = tmp_path_factory.mktemp("workers")
    settings = mini_settings(root, embedder)
    port = free_port()
    env = {**env_for(settings), "QA_INDEX_POLL_S": "0.5", "QA_ADMIN_TOKEN": "workers-token"}
    with serve_process(
        ["--port", str(port), "--workers", "2"],
        env=env,
        cwd=root,
        ready=lambda url: len(ready_workers(url, tries=20)) == 2,
    ) as (url, proc):
        yield settings, url, proc


def ready_workers(url: str, *, tries: int) -> dict[int, dict[str, object]]:
    """GET /ready on fresh connections until both workers answered (or `tries` ran out)."""
    seen: dict[int, dict[str, object]] = {}
    for _ in range(tries):
        response = httpx.get(f"{url}/ready", timeout=5)  # a new connection each time
        if response.status_code == 200:
            body = response.json()
            assert response.headers["x-atmp-worker"] == str(body["worker_pid"])
            seen[int(body["worker_pid"])] = body
        if len(seen) == 2:
            break
    return seen


def test_two_workers_answer_each_with_its_own_memory(
    workers: tuple[Settings, str, subprocess.Popen[bytes]],
) -> None:
    _, url, proc = workers
    seen = ready_workers(url, tries=60)
    assert len(seen) == 2 and proc.pid not in seen
    for body in seen.values():
        assert 50 < float(body["rss_mib"]) < 700, body  # the bound per worker
    assert len({body["index_build"] for body in seen.values()}) == 1


def test_both_workers_switch_to_a_published_build_under_load(
    workers: tuple[Settings, str, subprocess.Popen[bytes]], embedder: Embedder
) -> None:
    settings, url, _ = workers
    old = Index.load(settings.index_dir)
    old_build, old_ids = old.path.name if old.path else "", {c.chunk_id for c in old.chunks}
    results: list[tuple[str, list[str], str]] = []
    errors: Counter[str] = Counter()
    stop = threading.Event()

    def asker() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.post("/ask", json={"question": QUESTION})
                except httpx.HTTPError as ex:
                    errors[type(ex).__name__] += 1
                    continue
                if response.status_code != 200:
                    errors[f"HTTP {response.status_code}"] += 1
                    continue
                body = response.json()
                ids = [c["chunk_id"] for c in body["citations"] + body["related"]]
                results.append((body["index_build"], ids, response.headers["x-atmp-worker"]))

    threads = [threading.Thread(target=asker) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        (settings.corpus_dir / "cell-banks.md").write_text(NEW_DOCUMENT)
        ingest(settings, embedder=embedder)  # another process's ingest, as far as they know
        published = time.monotonic()
        new = Index.load(settings.index_dir)
        new_build = new.path.name if new.path else ""
        new_ids = {c.chunk_id for c in new.chunks}
        assert new_build != old_build
        switched: dict[str, float] = {}
        while len(switched) < 2 and time.monotonic() - published < 10:
            for build, _, worker in list(results):
                if build == new_build and worker not in switched:
                    switched[worker] = time.monotonic() - published
            time.sleep(0.05)
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert len(switched) == 2, f"workers serving the new build: {switched}"
    assert max(switched.values()) <= 5.0, switched
    for build, ids, _ in results:
        assert build in (old_build, new_build)
        assert set(ids) <= (new_ids if build == new_build else old_ids), (build, ids)
    new_answers = [ids for build, ids, _ in results if build == new_build]
    assert new_answers and all(any("cell-banks" in i for i in ids) for ids in new_answers)
    (settings.corpus_dir / "cell-banks.md").unlink()


def test_an_ingest_job_is_visible_from_every_worker(
    workers: tuple[Settings, str, subprocess.Popen[bytes]],
) -> None:
    _, url, _ = workers
    auth = {"Authorization": "Bearer workers-token"}
    started = httpx.post(f"{url}/ingest", headers=auth, timeout=30)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    answered_by: set[str] = set()
    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline and (len(answered_by) < 2 or state not in ("succeeded",)):
        response = httpx.get(f"{url}/ingest/{job_id}", headers=auth, timeout=10)
        assert response.status_code == 200, response.text
        answered_by.add(response.headers["x-atmp-worker"])
        state = response.json()["state"]
        assert state != "failed", response.json()
        time.sleep(0.1)
    assert len(answered_by) == 2 and state == "succeeded"
