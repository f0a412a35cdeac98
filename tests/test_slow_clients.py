"""The server against slow and idle clients, a full disk, hostile documents and a CLI ingest
beside it (issue 10, items 2, 6, 7 and freshness), over real uvicorn servers on loopback.

- Partial headers and one-byte-a-second bodies are cut off after QA_HEADER_TIMEOUT_S and
  QA_BODY_TIMEOUT_S (a 408), and connections beyond QA_MAX_CONNECTIONS are closed at once, so
  idle clients cannot use up the server's file descriptors; /health keeps answering.
- `/health` answers within 2 s while an ingest reads a document that takes longer than its
  time limit (on main, parsing held the interpreter lock and /health waited 48 s).
- `atmp-qa serve` (a subprocess) uses those limits, answers an upload onto a full disk with
  507 and a sentence, and switches to an index a separate ingest publishes.
"""

import http.client
import os
import resource
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qa.api.server import server_config
from qa.config import Settings
from qa.embed import Embedder
from qa.pipeline import ingest

from .conftest import serve_process
from .test_api import free_port, mini_app, mini_settings, running
from .test_faults import env_for

TOKEN = "slow-clients-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTIAL = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@contextmanager
def guarded_server(app: FastAPI, settings: Settings) -> Iterator[tuple[str, int]]:
    """`app` under the same uvicorn configuration as `atmp-qa serve`; yields (url, port)."""
    port = free_port()
    config = server_config(app, settings, host="127.0.0.1", port=port)
    config.log_level = "warning"
    with running(config):
        yield f"http://127.0.0.1:{port}", port


def closed_within(sock: socket.socket, seconds: float, *, trickle: bytes = b"") -> bytes:
    """What the server sends before closing `sock` (sending a byte of `trickle` every 0.2 s);
    fails if it is still open after `seconds`."""
    deadline = time.monotonic() + seconds
    received = b""
    sock.settimeout(0.2)
    sent = 0
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            if trickle:
                try:
                    sock.send(trickle[sent % len(trickle) : sent % len(trickle) + 1])
                    sent += 1
                except OSError:
                    return received
            continue
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data
    raise AssertionError(f"the connection is still open after {seconds} s: {received[:200]!r}")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    settings = mini_settings(
        tmp_path_factory.mktemp("slow"),
        embedder,
        header_timeout_s=1.0,
        body_timeout_s=1.5,
        max_connections=12,
    )
    with guarded_server(mini_app(settings, embedder), settings) as (url, _):
        yield url


def test_partial_headers_are_cut_off_and_health_keeps_answering(guarded: str) -> None:
    port = int(guarded.rsplit(":", 1)[1])
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        for sock in slow:
            sock.sendall(PARTIAL)
        assert httpx.get(f"{guarded}/health", timeout=2).status_code == 200
        started = time.monotonic()
        replies = [closed_within(sock, 6, trickle=b"abcdef") for sock in slow]
        assert time.monotonic() - started < 6
        assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies), replies
        assert b"not received in time" in replies[0]
    finally:
        for sock in slow:
            sock.close()
    assert httpx.get(f"{guarded}/health", timeout=2).status_code == 200


def test_a_body_sent_one_byte_at_a_time_is_cut_off(guarded: str) -> None:
    port = int(guarded.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n{"
        )
        reply = closed_within(sock, 8, trickle=b'"question": "x"')
    assert reply.startswith(b"HTTP/1.1 408"), reply
    with httpx.Client(base_url=guarded, timeout=30) as client:  # a normal body still works
        assert client.post("/ask", json={"question": "How long?"}).status_code == 200


def test_idle_connections_beyond_the_cap_are_closed_at_once(guarded: str) -> None:
    port = int(guarded.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        time.sleep(0.3)
        refused = 0
        for sock in idle:
            sock.settimeout(0.05)
            try:
                refused += sock.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                refused += 1
        assert refused >= 8  # 12 allowed (the probe above holds none), the rest closed
        for sock in idle:  # and the others go at the header deadline
            closed_within(sock, 6)
    finally:
        for sock in idle:
            sock.close()
    assert httpx.get(f"{guarded}/health", timeout=2).status_code == 200


def response_on(sock: socket.socket) -> bytes:
    """Send `GET /health` on `sock` and read the whole response (headers and body)."""
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(5)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(4096)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_a_keep_alive_connection_idle_past_the_header_deadline_answers_its_next_request(
    guarded: str,
) -> None:
    """Between requests only the keep-alive timeout closes a connection: the header deadline
    starts with the next request's first byte. (It used to start when a response ended, so an
    idle connection was cut after QA_HEADER_TIMEOUT_S and a client's next request on it read
    a 408 or a reset.)"""
    host, port = guarded.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", "/health")
        assert connection.getresponse().read() and connection.sock is not None
        first = connection.sock
        time.sleep(1.6)  # past the fixture's 1-second header deadline
        connection.request("GET", "/health")
        reply = connection.getresponse()
        assert reply.status == 200, reply.read()
        assert connection.sock is first  # the same connection, not a reconnect
    finally:
        connection.close()


def test_the_next_request_on_a_kept_connection_still_has_a_header_deadline(guarded: str) -> None:
    port = int(guarded.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert response_on(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.5)
        sock.sendall(PARTIAL)
        started = time.monotonic()
        reply = closed_within(sock, 6, trickle=b"abcdef")
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert time.monotonic() - started < 4


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = mini_settings(tmp_path, embedder, keep_alive_s=1, header_timeout_s=30.0)
    with guarded_server(mini_app(settings, embedder), settings) as (_, port):
        sock = socket.create_connection(("127.0.0.1", port))
        try:
            assert response_on(sock).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert closed_within(sock, 5) == b""  # closed quietly, long before 30 s
            assert 0.8 < time.monotonic() - started < 4
        finally:
            sock.close()


def test_health_answers_while_a_hostile_document_is_ingested(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = mini_settings(
        tmp_path, embedder, admin_token=TOKEN, ingest_doc_timeout_s=4, max_upload_bytes=10**7
    )
    hostile = b"# T\n\n" + b"[a](**b " * 1_000_000  # ~8 MB of unclosed markup
    with (
        guarded_server(mini_app(settings, embedder), settings) as (url, _),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        files = {"file": ("hostile.md", hostile)}
        assert client.post("/documents", files=files, headers=AUTH).status_code == 201
        job = client.post("/ingest", headers=AUTH).json()
        slowest, polled = 0.0, 0
        while job["state"] not in ("succeeded", "failed"):
            started = time.perf_counter()
            assert client.get("/health", timeout=2).status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            polled += 1
            time.sleep(0.1)
            job = client.get(f"/ingest/{job['job_id']}", headers=AUTH).json()
        assert polled >= 10 and slowest < 2, (polled, slowest)
        assert job["state"] == "succeeded", job
        assert job["failed"] == [
            "hostile.md: reading and chunking it took longer than 4 s "
            "(QA_INGEST_DOC_TIMEOUT_S); it was skipped"
        ]
        assert "Skipped: hostile.md (reading and chunking it took longer" in job["message"]
        assert client.get("/ready").json()["documents"] == 3


# -- `atmp-qa serve` in a process of its own -------------------------------------------------


def _small_file_limit() -> None:  # in the server process before exec: files over 100 kB fail
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> Iterator[tuple[Settings, str]]:
    """`python -m qa serve` over the mini corpus, unable to write a file over 100 kB."""
    root = tmp_path_factory.mktemp("serve")
    settings = mini_settings(root, embedder)
    port = free_port()
    env = {
        **env_for(settings),
        "QA_ADMIN_TOKEN": TOKEN,
        "QA_HEADER_TIMEOUT_S": "1",
        "QA_INDEX_POLL_S": "0.3",
    }
    # One worker: by default there is one per CPU, and a request after /ready could reach a
    # worker that has not switched yet (several workers switching: tests/test_workers.py).
    with serve_process(
        ["--port", str(port), "--workers", "1"],
        env=env,
        cwd=root,
        ready=lambda url: httpx.get(f"{url}/ready", timeout=2).status_code == 200,
        preexec_fn=_small_file_limit,
    ) as (url, _):
        yield settings, url


def test_serve_cuts_off_partial_headers(served: tuple[Settings, str]) -> None:
    _, url = served
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(PARTIAL)
        assert closed_within(sock, 6).startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize(
    ("size", "phrase"),
    [
        (230_000, "no room on the server's disk to save guideline.txt"),
        (1_500_000, "no room on the server's disk to receive the upload"),  # spooled to /tmp
    ],
)
def test_an_upload_onto_a_full_disk_is_507_and_leaves_nothing(
    served: tuple[Settings, str], size: int, phrase: str
) -> None:
    settings, url = served
    data = b"Article 1\n\n" + b"A long guideline text. " * (size // 23)
    response = httpx.post(
        f"{url}/documents", files={"file": ("guideline.txt", data)}, headers=AUTH, timeout=30
    )
    assert response.status_code == 507, response.text
    detail = response.json()["detail"]
    assert phrase in detail and "\n" not in detail and detail.endswith(".")
    uploads = settings.corpus_dir / "uploads"
    assert not uploads.exists() or not list(uploads.iterdir())
    small = httpx.post(
        f"{url}/documents", files={"file": ("note.txt", b"Article 1\n\nShort.\n")}, headers=AUTH
    )
    assert small.status_code == 201  # fine once it fits
    (uploads / "note.txt").unlink()


def test_serve_switches_to_an_index_a_separate_ingest_published(
    served: tuple[Settings, str], embedder: Embedder
) -> None:
    settings, url = served
    assert httpx.get(f"{url}/ready").json()["documents"] == 3
    (settings.corpus_dir / "cell-banks.txt").write_text(
        "Demo note on cell banks\n\n1. Storage\n\n"
        "The master cell bank must be kept in two cryogenic vaults in separate buildings.\n"
    )
    assert ingest(settings, embedder=embedder).added == ["cell-banks"]  # as `atmp-qa ingest`
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/ready").json()["documents"] != 4:
        assert time.monotonic() < deadline, "the server kept serving the old index"
        time.sleep(0.2)
    results: Any = httpx.get(
        f"{url}/search", params={"q": "Where must the master cell bank be kept?", "k": 1}
    ).json()["results"]
    assert results[0]["doc_id"] == "cell-banks" and results[0]["origin"] == "local file"
    os.unlink(settings.corpus_dir / "cell-banks.txt")
