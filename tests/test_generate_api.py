"""`/ask` and `/v1/chat/completions` with a model configured, against a scripted server."""

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.answer import MARKER
from qa.embed import Embedder
from qa.generate import NO_CITATION

from .scripted_llm import Script, ScriptedLLM
from .test_api import TRACEABILITY, live_server, mini_app, mini_settings
from .test_api_chat import chat, sse_data

FRANCE = "What is the capital of France?"


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, llm: ScriptedLLM) -> FastAPI:
    root = tmp_path_factory.mktemp("generate-api")
    settings = mini_settings(
        root, embedder, llm_base_url=llm.base_url, llm_model="scripted", llm_timeout_s=2
    )
    return mini_app(settings, embedder)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def fresh(llm: ScriptedLLM) -> None:
    llm.requests.clear()
    llm.script = Script("Batch records: ten years [2]. Traceability records: 30 years [1].")


def stream_chunks(response: Any) -> list[dict[str, Any]]:
    data = sse_data(response.text)
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    return [json.loads(d) for d in data[:-1]]


def test_startup_does_not_call_the_model(client: TestClient, llm: ScriptedLLM) -> None:
    assert client.get("/ready").status_code == 200 and llm.requests == []


def test_ask_returns_the_generated_answer_and_its_citations(client: TestClient) -> None:
    body = client.post("/ask", json={"question": TRACEABILITY}).json()
    assert body["answer"] == "Batch records: ten years [1]. Traceability records: 30 years [2]."
    assert body["generator"] == "llm:scripted" and "generator_error" not in body
    assert [c["n"] for c in body["citations"]] == [1, 2]
    assert [c["section"] for c in body["citations"]] == ["Schedule 1, paragraph 1", "Article 2(1)"]
    for citation in body["citations"]:
        assert citation["quote"] in citation["text"]


@pytest.mark.parametrize(
    "script", [Script(status=500), Script(body="<html>"), Script("Ten years."), Script(delay_s=3)]
)
def test_ask_falls_back_to_the_extractive_answer_never_a_500(
    client: TestClient, llm: ScriptedLLM, script: Script
) -> None:
    llm.script = script
    response = client.post("/ask", json={"question": TRACEABILITY})
    assert response.status_code == 200
    body = response.json()
    assert body["generator"] == "extractive" and body["generator_error"].endswith(".")
    assert "30 years" in body["answer"] and MARKER.search(body["answer"])
    assert len(llm.requests) == 1


def test_ask_abstains_without_calling_the_model(client: TestClient, llm: ScriptedLLM) -> None:
    body = client.post("/ask", json={"question": FRANCE}).json()
    assert body["abstained"] is True and body["generator"] == "extractive"
    assert llm.requests == []


def test_chat_completion_carries_the_generated_answer(client: TestClient) -> None:
    body = client.post("/v1/chat/completions", json=chat(TRACEABILITY)).json()
    content = body["choices"][0]["message"]["content"]
    answer, sources = content.split("\n\n**Sources**\n\n")
    assert answer == "Batch records: ten years [1]. Traceability records: 30 years [2]."
    assert sources.startswith("1. [The Demo Medicines Regulations 2099, Schedule 1, paragraph 1]")
    assert body["generator"] == "llm:scripted" and "generator_error" not in body


def test_stream_relays_the_model_then_sources_citations_and_done(
    client: TestClient, llm: ScriptedLLM
) -> None:
    llm.script = Script(pieces=["Batch records:", " ten years [", "2]", " and [9] more", "."])
    response = client.post("/v1/chat/completions", json=chat(TRACEABILITY, stream=True))
    chunks = stream_chunks(response)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert deltas[:5] == ["Batch records:", " ten years", " [1]", " and more", "."]
    assert "".join(deltas).startswith("Batch records: ten years [1] and more.\n\n**Sources**")
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop" and "replacement" not in final
    assert final["generator"] == "llm:scripted" and "generator_error" not in final
    assert [c["n"] for c in final["citations"]] == [1]
    assert llm.requests[0]["stream"] is True


def test_stream_of_an_answer_that_fails_its_check_sends_a_replacement(
    client: TestClient, llm: ScriptedLLM
) -> None:
    llm.script = Script("Ten years, I think.")
    plain = client.post("/v1/chat/completions", json=chat(TRACEABILITY)).json()
    response = client.post("/v1/chat/completions", json=chat(TRACEABILITY, stream=True))
    chunks = stream_chunks(response)
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    expected = plain["choices"][0]["message"]["content"]
    assert content.startswith("Ten years, I think.\n\n*The generated answer is not shown")
    assert content.endswith(expected)
    final = chunks[-1]
    assert final["replacement"] == expected
    assert (final["generator"], final["generator_error"]) == ("extractive", NO_CITATION)
    assert final["citations"] == plain["citations"]


def test_stream_when_the_model_is_down_is_the_extractive_stream(
    client: TestClient, llm: ScriptedLLM
) -> None:
    llm.script = Script(status=503)
    chunks = stream_chunks(
        client.post("/v1/chat/completions", json=chat(TRACEABILITY, stream=True))
    )
    final = chunks[-1]
    assert "replacement" not in final and final["generator"] == "extractive"
    assert "HTTP 503" in final["generator_error"]


def test_stream_abstention_makes_no_model_call(client: TestClient, llm: ScriptedLLM) -> None:
    chunks = stream_chunks(client.post("/v1/chat/completions", json=chat(FRANCE, stream=True)))
    assert chunks[0]["abstained"] is True and chunks[-1]["related"] and llm.requests == []


def test_stream_pieces_arrive_while_the_model_writes(app: FastAPI, llm: ScriptedLLM) -> None:
    llm.script = Script(pieces=["Ten", " years", " [2]", "."], piece_delay_s=0.4)
    arrivals: list[tuple[float, str]] = []
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        request = chat(TRACEABILITY, stream=True, include_sources=False)
        with http.stream("POST", "/v1/chat/completions", json=request) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrivals.append((time.monotonic(), line.removeprefix("data: ")))
    first_piece = next(t for t, d in arrivals if d != "[DONE]" and '"Ten"' in d)
    assert arrivals[-1][0] - first_piece > 0.8  # relayed before the model finished
