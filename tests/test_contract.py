"""One contract on HTTP and the CLI: the same names (`doc_ids`, `jurisdiction` as a string or
a list, `-k/--k`, `answer`), the same limits, unknown documents refused by name, malformed
JSON explained, and `--server` answering through a running server."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from qa.api.schemas import AskResponse, PassageOut
from qa.cli import cli
from qa.config import MAX_ASK_K, MAX_QUESTION_CHARS, MAX_SEARCH_K, Settings
from qa.embed import Embedder

from .test_api import live_server, mini_app

QUESTION = "How long must traceability data for an ATMP be kept?"


@pytest.fixture(scope="module")
def client(real_index: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with TestClient(mini_app(real_index, embedder)) as test_client:
        yield test_client


def cli_run(args: list[str], settings: Settings, **env: str) -> tuple[int, str]:
    environment = {
        "QA_INDEX_DIR": str(settings.index_dir),
        "QA_CORPUS_DIR": str(settings.corpus_dir),
    }
    result = CliRunner().invoke(cli, args, env={**environment, **env})
    return result.exit_code, result.output


def test_search_takes_doc_ids_repeated_or_comma_separated(client: TestClient) -> None:
    for params in (
        [("q", "hospital exemption"), ("doc_ids", "uksi-2012-1916")],
        [("q", "hospital exemption"), ("doc_ids", "uksi-2012-1916,32007R1394")],
        [("q", "hospital exemption"), ("doc_ids", "uksi-2012-1916"), ("doc_ids", "32007R1394")],
        [("q", "hospital exemption"), ("doc_id", "uksi-2012-1916")],  # the old name still works
    ):
        results = client.get("/search", params=params).json()["results"]
        wanted = {v for k, value in params[1:] for v in value.split(",")}
        assert results and {r["doc_id"] for r in results} <= wanted, params
    only_hmr = client.get(
        "/search", params={"q": "hospital exemption", "doc_ids": "uksi-2012-1916"}
    )
    assert {r["doc_id"] for r in only_hmr.json()["results"]} == {"uksi-2012-1916"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/search", {"params": {"q": "hospital exemption", "doc_ids": "32007R1394,nope"}}),
        ("POST", "/ask", {"json": {"question": QUESTION, "filters": {"doc_ids": ["nope"]}}}),
    ],
)
def test_unknown_doc_ids_are_a_422_naming_them(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "Unknown document id: nope" in detail and "/documents" in detail


def test_ask_takes_a_jurisdiction_string_or_list_and_k(client: TestClient) -> None:
    as_string = client.post(
        "/ask",
        json={"question": "What is the hospital exemption?", "filters": {"jurisdiction": "UK"}},
    ).json()
    as_list = client.post(
        "/ask",
        json={"question": "What is the hospital exemption?", "filters": {"jurisdiction": ["UK"]}},
    ).json()
    assert as_string["answer"] == as_list["answer"]
    assert {c["jurisdiction"] for c in as_string["citations"]} == {"UK"}
    three = client.post("/ask", json={"question": QUESTION, "k": 3}).json()
    assert len(three["citations"]) == 3
    legacy = client.post("/ask", json={"question": QUESTION, "top_k": 3}).json()
    assert len(legacy["citations"]) == 3


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b'{"question": ', "The request body is not valid JSON at character 13"),
        (b"question=hi", "The request body is not valid JSON"),
        (b'{"question": "x", "filter": {}}', "filter: Extra inputs are not permitted"),
        (b'{"question": "x", "filters": {"jurisdictions": "EU"}}', "filters.jurisdictions"),
        (b'{"question": "x", "k": 21}', "k: Input should be less than or equal to 20"),
    ],
)
def test_malformed_requests_get_a_sentence(client: TestClient, body: bytes, sentence: str) -> None:
    response = client.post("/ask", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and sentence in response.json()["detail"]
    assert "0: JSON decode error" not in response.json()["detail"]


def test_http_and_cli_share_the_limits(client: TestClient, real_index: Settings) -> None:
    long = "x" * (MAX_QUESTION_CHARS + 1)
    assert client.post("/ask", json={"question": long}).status_code == 422
    code, out = cli_run(["ask", long], real_index)
    assert code == 2 and f"the limit is {MAX_QUESTION_CHARS}" in out
    assert client.get("/search", params={"q": "x", "k": MAX_SEARCH_K + 1}).status_code == 422
    code, out = cli_run(["search", "x", "--k", str(MAX_SEARCH_K + 1)], real_index)
    assert code == 2 and str(MAX_SEARCH_K) in out
    code, out = cli_run(["ask", "x", "-k", str(MAX_ASK_K + 1)], real_index)
    assert code == 2 and str(MAX_ASK_K) in out


def test_cli_ask_json_is_the_http_answer(client: TestClient, real_index: Settings) -> None:
    code, out = cli_run(["ask", QUESTION, "--k", "3", "--json"], real_index)
    assert code == 0, out
    local = json.loads(out)
    http = client.post("/ask", json={"question": QUESTION, "k": 3}).json()
    assert set(local) == set(http) <= set(AskResponse.model_fields)
    assert local["answer"] == http["answer"] and "30 years" in local["answer"]
    assert [c["chunk_id"] for c in local["citations"]] == [c["chunk_id"] for c in http["citations"]]


def test_cli_asks_a_running_server(real_index: Settings, embedder: Embedder) -> None:
    """`--server` / QA_SERVER: the server's answer, printed as a local one, without loading
    the model (this process has it loaded already, so the time is the HTTP round trip)."""
    code, local = cli_run(["ask", QUESTION], real_index)
    assert code == 0
    with live_server(mini_app(real_index, embedder)) as url:
        started = time.perf_counter()
        code, remote = cli_run(["ask", QUESTION, "--server", url], real_index)
        took = time.perf_counter() - started
        assert code == 0 and remote == local and took < 5
        code, out = cli_run(["search", QUESTION, "--json", "-k", "2"], real_index, QA_SERVER=url)
        results = json.loads(out)["results"]
        assert code == 0 and len(results) == 2 and set(results[0]) == set(PassageOut.model_fields)
        code, out = cli_run(["ask", QUESTION, "--doc-id", "nope"], real_index, QA_SERVER=url)
        assert code == 1 and "HTTP 422" in out and "Unknown document id: nope" in out
        code, out = cli_run(["search", QUESTION, "--explain", "--server", url], real_index)
        assert code == 2 and "--explain needs the local index" in out
    code, out = cli_run(["ask", QUESTION, "--server", url], real_index)
    assert code == 1 and f"Cannot reach the server at {url}" in out and "atmp-qa serve" in out


def test_cli_unknown_doc_id_is_one_line(real_index: Settings) -> None:
    code, out = cli_run(["search", "hospital exemption", "--doc-id", "nope"], real_index)
    assert code == 1 and "Unknown document id: nope" in out and "Traceback" not in out
