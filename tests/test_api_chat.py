"""OpenAI-compatible chat over a small real index: models, completions, streaming, CORS."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.answer import MARKER
from qa.embed import Embedder

from .test_api import TRACEABILITY, error_fields, mini_app, mini_settings

ORIGIN = "https://chat.example.org"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("chat")
    settings = mini_settings(root, embedder, cors_origins=[ORIGIN])
    with TestClient(mini_app(settings, embedder)) as test_client:
        yield test_client


def chat(question: str, **extra: Any) -> dict[str, Any]:
    return {"model": "atmp-qa", "messages": [{"role": "user", "content": question}], **extra}


def sse_data(text: str) -> list[str]:
    """The data of each server-sent event, checking the framing on the way."""
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    for event in events:
        assert event.startswith("data: ") and "\n" not in event, event
    return [event.removeprefix("data: ") for event in events]


def test_models_lists_atmp_qa(client: TestClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"]) for m in body["data"]] == [("atmp-qa", "model")]


def test_completion_has_the_answer_sources_and_citations(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json=chat(TRACEABILITY))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "atmp-qa"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    answer, sources = content.split("\n\n**Sources**\n\n")
    assert "30 years" in answer and MARKER.search(answer)
    assert sources.startswith("1. [Demo Regulation (EU) 2099/1")
    assert "Article 2(1)](http://example.org/eli/reg/2099/1/oj)" in sources
    assert body["abstained"] is False
    assert body["citations"][0]["section"] == "Article 2(1)" and body["citations"][0]["chunk_id"]
    assert body["usage"]["total_tokens"] == 0


def test_completion_answers_the_last_user_message(client: TestClient) -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "I cannot say."},
        {"role": "user", "content": [{"type": "text", "text": TRACEABILITY}]},
    ]
    body = client.post("/v1/chat/completions", json={"messages": messages}).json()
    assert body["abstained"] is False and "30 years" in body["choices"][0]["message"]["content"]


def test_abstention_lists_the_closest_passages(client: TestClient) -> None:
    body = client.post("/v1/chat/completions", json=chat("What is the capital of France?")).json()
    assert body["abstained"] is True and body["citations"] == [] and body["related"]
    content = body["choices"][0]["message"]["content"]
    assert "\n\n**Related passages**\n\n1. " in content and "**Sources**" not in content


def test_extensions_filter_and_drop_the_sources_list(client: TestClient) -> None:
    request = chat(
        "Which records must be kept?", filters={"jurisdiction": ["UK"]}, include_sources=False
    )
    body = client.post("/v1/chat/completions", json=request).json()
    assert "**" not in body["choices"][0]["message"]["content"]
    passages = body["citations"] or body["related"]
    assert passages and {c["doc_id"] for c in passages} == {"si-demo"}


def test_stream_sends_chunks_then_citations_then_done(client: TestClient) -> None:
    plain = client.post("/v1/chat/completions", json=chat(TRACEABILITY)).json()
    response = client.post("/v1/chat/completions", json=chat(TRACEABILITY, stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = sse_data(response.text)
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and {c["model"] for c in chunks} == {"atmp-qa"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    middle = chunks[1:-1]
    assert len(middle) > 10  # word by word
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    content = "".join(c["choices"][0]["delta"]["content"] for c in middle)
    assert content == plain["choices"][0]["message"]["content"]
    final = chunks[-1]
    assert final["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert final["abstained"] is False
    assert [c["chunk_id"] for c in final["citations"]] == [
        c["chunk_id"] for c in plain["citations"]
    ]
    assert final["citations"][0]["page"] is None  # null fields are kept inside citations
    assert all("citations" not in c for c in chunks[:-1])


def test_stream_of_an_abstention(client: TestClient) -> None:
    response = client.post(
        "/v1/chat/completions", json=chat("What is the capital of France?", stream=True)
    )
    chunks = [json.loads(d) for d in sse_data(response.text)[:-1]]
    assert chunks[0]["abstained"] is True and chunks[-1]["abstained"] is True
    assert chunks[-1]["citations"] == [] and chunks[-1]["related"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"messages": []}, "at least 1 item"),
        ({"messages": [{"role": "system", "content": "Be brief."}]}, "needs a user message"),
        ({"messages": [{"role": "user", "content": "   "}]}, "needs a user message"),
        ({"messages": [{"role": "user", "content": "x" * 2001}]}, "over 2000 characters"),
        ({"messages": [{"role": "user"}], "stream": True}, "needs a user message"),
    ],
)
def test_chat_without_a_usable_question_is_422_naming_messages(
    client: TestClient, payload: dict[str, Any], message: str
) -> None:
    response = client.post("/v1/chat/completions", json=payload)
    assert response.status_code == 422
    assert "messages" in error_fields(response) and message in response.json()["error"]["message"]
    assert response.json()["error"]["param"] == "messages"


def test_unknown_openai_fields_are_ignored(client: TestClient) -> None:
    request = chat(TRACEABILITY, temperature=0.2, stream_options={"include_usage": True}, n=1)
    assert client.post("/v1/chat/completions", json=request).status_code == 200


def test_cors_allows_the_configured_origin_only(client: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = client.options("/v1/chat/completions", headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = client.options(
        "/v1/chat/completions", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers
    simple = client.get("/v1/models", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_no_cors_headers_without_configured_origins(tmp_path: Path, embedder: Embedder) -> None:
    settings = mini_settings(tmp_path, embedder)
    with TestClient(mini_app(settings, embedder)) as client:
        response = client.get("/v1/models", headers={"Origin": ORIGIN})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_v1_errors_use_the_openai_envelope_and_other_paths_keep_detail(
    client: TestClient,
) -> None:
    missing = client.get("/v1/models/gpt-4o")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "The model 'gpt-4o' does not exist here; use 'atmp-qa'.",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert client.get("/v1/models/atmp-qa").json()["id"] == "atmp-qa"
    unknown = client.get("/v1/nothing").json()
    assert unknown["error"]["message"].startswith("There is no GET /v1/nothing endpoint")
    assert "detail" in client.get("/nothing").json()


def test_stream_with_include_usage_ends_with_a_usage_chunk(client: TestClient) -> None:
    request = chat(TRACEABILITY, stream=True, stream_options={"include_usage": True})
    chunks = [
        json.loads(d) for d in sse_data(client.post("/v1/chat/completions", json=request).text)[:-1]
    ]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 0
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["question_used"] == TRACEABILITY
    plain = client.post("/v1/chat/completions", json=chat(TRACEABILITY, stream=True)).text
    assert all("usage" not in json.loads(d) for d in sse_data(plain)[:-1])
