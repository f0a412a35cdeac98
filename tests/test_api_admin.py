"""Admin endpoints over a small real index: auth, uploads, deletes and background ingests."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.embed import Embedder
from qa.ingest import ingest_lock

from .conftest import served_index
from .test_api import mini_app, mini_settings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 8_000
NEW_DOC = b"""---
title: "Demo Guidance on cryopreserved cell banks"
country: "uk"
---
# Demo Guidance on cryopreserved cell banks

#### Storage

###### 1

The master cell bank must be split between two cryogenic vaults in separate buildings.
"""
NEW_QUESTION = "Where must the master cell bank be stored?"
ADMIN_CALLS = [
    ("post", "/documents"),
    ("delete", "/documents/reg-demo"),
    ("post", "/ingest"),
    ("get", "/ingest/abc"),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("admin")


@pytest.fixture(scope="module")
def client(root: Path, embedder: Embedder) -> Iterator[TestClient]:
    settings = mini_settings(root, embedder, admin_token=TOKEN, max_upload_bytes=LIMIT)
    with TestClient(mini_app(settings, embedder)) as test_client:
        yield test_client


def upload(client: TestClient, name: str, data: bytes, **kwargs: Any) -> Any:
    headers = kwargs.pop("headers", AUTH)
    return client.post("/documents", files={"file": (name, data)}, headers=headers, **kwargs)


def wait_for(client: TestClient, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    """Poll an ingest job until it finishes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(f"/ingest/{job_id}", headers=AUTH)
        assert response.status_code == 200
        job: dict[str, Any] = response.json()
        assert 0 <= job["progress"] <= 1
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"ingest job {job_id} did not finish in {timeout_s} s")


def run_ingest(client: TestClient) -> dict[str, Any]:
    response = client.post("/ingest", headers=AUTH)
    assert response.status_code == 202
    job = response.json()
    assert job["state"] in ("queued", "running") and job["job_id"]
    return wait_for(client, job["job_id"])


def top_doc(client: TestClient, query: str) -> str:
    return str(client.get("/search", params={"q": query, "k": 1}).json()["results"][0]["doc_id"])


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


# -- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
def test_admin_endpoints_refuse_a_missing_or_wrong_token(
    client: TestClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {
        "detail": "Missing or wrong admin token; send `Authorization: Bearer <QA_ADMIN_TOKEN>`."
    }


@pytest.fixture(scope="module")
def disabled(root: Path, embedder: Embedder) -> Iterator[TestClient]:
    """The same service with QA_ADMIN_TOKEN unset."""
    settings = mini_settings(root / "no-admin", embedder)
    assert settings.admin_token is None
    with TestClient(mini_app(settings, embedder)) as test_client:
        yield test_client


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
def test_admin_endpoints_are_403_when_no_token_is_configured(
    disabled: TestClient, method: str, path: str
) -> None:
    response = disabled.request(method, path, headers=AUTH)
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Admin endpoints are disabled; set QA_ADMIN_TOKEN to a secret token and "
        "restart the server to enable them."
    }


def test_the_right_token_is_let_through(client: TestClient) -> None:
    response = client.get("/ingest/no-such-job", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No ingest job has id 'no-such-job'")
    assert client.delete("/documents/no-such-doc", headers=AUTH).status_code == 404


# -- the document life cycle ----------------------------------------------------------------


def test_upload_ingest_search_delete_ingest_gone(client: TestClient, root: Path) -> None:
    assert top_doc(client, NEW_QUESTION) != "cell-banks"

    response = upload(client, "cell-banks.md", NEW_DOC)
    assert response.status_code == 201
    assert response.json() == {
        "doc_id": "cell-banks",
        "file_name": "cell-banks.md",
        "bytes": len(NEW_DOC),
        "replaced": False,
        "detail": "Saved uploads/cell-banks.md; run POST /ingest to index it.",
    }
    assert (root / "corpus" / "uploads" / "cell-banks.md").read_bytes() == NEW_DOC
    assert top_doc(client, NEW_QUESTION) != "cell-banks"  # saved, not yet indexed

    job = run_ingest(client)
    assert job["state"] == "succeeded" and job["progress"] == 1.0, job
    assert job["added"] == ["cell-banks"] and job["removed"] == [] and job["failed"] == []
    assert job["started_at"] and job["finished_at"] and "1 added" in job["message"]

    assert top_doc(client, NEW_QUESTION) == "cell-banks"
    answer = client.post("/ask", json={"question": NEW_QUESTION}).json()
    assert "two cryogenic vaults" in answer["answer"]
    assert answer["citations"][0]["doc_id"] == "cell-banks"
    assert client.get("/documents/cell-banks").json()["jurisdiction"] == "UK"
    assert client.get("/ready").json()["documents"] == 4

    again = upload(client, "cell-banks.md", NEW_DOC)
    assert again.status_code == 201 and again.json()["replaced"] is True

    response = client.delete("/documents/cell-banks", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["file_name"] == "cell-banks.md"
    assert not (root / "corpus" / "uploads" / "cell-banks.md").exists()
    assert client.delete("/documents/cell-banks", headers=AUTH).status_code == 404

    job = run_ingest(client)
    assert job["state"] == "succeeded" and job["removed"] == ["cell-banks"], job
    assert client.get("/documents/cell-banks").status_code == 404
    assert top_doc(client, NEW_QUESTION) != "cell-banks"
    assert client.get("/ready").json()["documents"] == 3


def test_queries_are_answered_while_an_ingest_runs(client: TestClient) -> None:
    assert upload(client, "cell-banks.md", NEW_DOC).status_code == 201
    job = client.post("/ingest", headers=AUTH).json()
    statuses = []
    while client.get(f"/ingest/{job['job_id']}", headers=AUTH).json()["state"] in (
        "queued",
        "running",
    ):
        statuses.append(client.post("/ask", json={"question": NEW_QUESTION}).status_code)
    assert statuses and set(statuses) == {200}
    assert wait_for(client, job["job_id"])["state"] == "succeeded"
    assert top_doc(client, NEW_QUESTION) == "cell-banks"
    assert client.delete("/documents/cell-banks", headers=AUTH).status_code == 200
    assert run_ingest(client)["removed"] == ["cell-banks"]


def test_a_failed_ingest_keeps_answering_from_the_current_index(
    client: TestClient, root: Path
) -> None:
    before = served_index(client)
    with ingest_lock(root / "index"):  # as if `atmp-qa ingest` were running
        job = run_ingest(client)
    assert job["state"] == "failed" and "Another ingest is running" in job["message"]
    assert served_index(client) == before
    assert (
        client.post("/ask", json={"question": "How long must records be kept?"}).status_code == 200
    )


# -- upload checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../x.pdf",
        "../x.md",
        "..\\..\\x.md",
        "/tmp/x.md",
        "sub/x.md",
        ".hidden.md",
        "..md",
        "x\x00.md",
        " x.md",
    ],
)
def test_unsafe_file_names_are_refused_and_nothing_is_written(
    client: TestClient, root: Path, name: str
) -> None:
    before = files_under(root)
    response = upload(client, name, b"# Title\n\nSome text that is long enough.")
    assert response.status_code == 400
    assert "is not allowed: send a plain name" in response.json()["detail"]
    assert files_under(root) == before
    assert not (root.parent / "x.pdf").exists() and not Path("/tmp/x.md").exists()


def test_unsupported_file_type_is_415(client: TestClient) -> None:
    response = upload(client, "tool.exe", b"MZ...")
    assert response.status_code == 415
    assert "unsupported file type '.exe'" in response.json()["detail"]


@pytest.mark.parametrize("size", [LIMIT + 1, 200_000])  # counted while copying / declared length
def test_oversized_upload_is_413_and_leaves_nothing_behind(
    client: TestClient, root: Path, size: int
) -> None:
    before = files_under(root)
    response = upload(client, "big.txt", b"a" * size)
    assert response.status_code == 413
    assert "QA_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert files_under(root) == before


def test_upload_at_the_limit_is_accepted(client: TestClient, root: Path) -> None:
    response = upload(client, "exactly-limit.txt", b"a" * LIMIT)
    assert response.status_code == 201 and response.json()["bytes"] == LIMIT
    (root / "corpus" / "uploads" / "exactly-limit.txt").unlink()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "is empty"),
        ("fake.pdf", b"just text", "is not a PDF file"),
    ],
)
def test_empty_or_malformed_upload_is_400(
    client: TestClient, name: str, data: bytes, message: str
) -> None:
    response = upload(client, name, data)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_upload_clashing_with_an_existing_document_id_is_409(client: TestClient) -> None:
    response = upload(client, "reg-demo.txt", b"Another text under an existing id.")
    assert response.status_code == 409
    assert "already exists (reg-demo.md)" in response.json()["detail"]


def test_upload_without_a_file_field_is_400(client: TestClient) -> None:
    response = client.post("/documents", data={"other": "x"}, headers=AUTH)
    assert response.status_code == 400
    assert "field named `file`" in response.json()["detail"]
