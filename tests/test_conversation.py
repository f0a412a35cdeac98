"""Follow-ups made standalone: rules over the question analysis, and the done-when case on
the real corpus (the UK equivalent of the hospital exemption is regulation 171 of the HMR)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.api.app import create_app
from qa.api.service import load_service
from qa.config import Settings
from qa.conversation import standalone_question
from qa.embed import Embedder
from qa.retrieval.query import Query, Vocabulary, analyse

from .scripted_llm import Script, ScriptedLLM
from .test_api import mini_app, mini_settings
from .test_api_chat import sse_data

EXEMPTION = "What is the hospital exemption under the EU ATMP Regulation?"
VOCABULARY = Vocabulary(documents=[], known=frozenset(), word_pieces=lambda word: 1)


def rules(question: str) -> Query:
    return analyse(question, VOCABULARY)


@pytest.mark.parametrize(
    ("follow_up", "standalone"),
    [
        ("And what is the UK equivalent?", "What is the hospital exemption in the UK?"),
        ("and in the UK?", "What is the hospital exemption in the UK?"),
        (
            "what about SMEs?",
            "What is the hospital exemption under the EU ATMP Regulation, as regards SMEs?",
        ),
        ("how long does it last?", "How long does the hospital exemption last?"),
        (
            "does that apply to point-of-care products?",
            "Does the hospital exemption apply to point-of-care products?",
        ),
    ],
)
def test_follow_ups_take_the_topic_of_the_earlier_question(follow_up: str, standalone: str) -> None:
    assert standalone_question([EXEMPTION, follow_up], rules) == standalone


@pytest.mark.parametrize(
    "question",
    [
        "What is a tissue establishment?",
        "How long must traceability records be kept under Regulation 1394/2007 and who keeps them?",
    ],
)
def test_standalone_questions_are_left_alone(question: str) -> None:
    assert standalone_question([EXEMPTION, question], rules) == question


def test_a_chain_of_follow_ups_keeps_the_first_topic() -> None:
    turns = [EXEMPTION, "and in the UK?", "how long does it last?"]
    assert standalone_question(turns, rules) == "How long does the hospital exemption last?"


def test_the_first_question_is_never_rewritten() -> None:
    assert standalone_question(["And what is it?"], rules) == "And what is it?"


@pytest.fixture(scope="module")
def real_client(real_index: Settings, embedder: Embedder) -> Iterator[TestClient]:
    app = create_app(real_index, qa=load_service(real_index, embedder=embedder))
    with TestClient(app) as client:
        yield client


CONVERSATION = [
    {"role": "user", "content": EXEMPTION},
    {"role": "assistant", "content": "Article 28 of Regulation (EC) No 1394/2007 … [1]"},
    {"role": "user", "content": "And what is the UK equivalent?"},
]


def test_uk_equivalent_is_answered_from_regulation_171_of_the_hmr(real_client: TestClient) -> None:
    body = real_client.post("/v1/chat/completions", json={"messages": CONVERSATION}).json()
    assert body["question_used"] == "What is the hospital exemption in the UK?"
    assert body["abstained"] is False
    first = body["citations"][0]
    assert (first["doc_id"], first["section"].split("(")[0]) == ("uksi-2012-1916", "regulation 171")
    streamed = real_client.post(
        "/v1/chat/completions", json={"messages": CONVERSATION, "stream": True}
    )
    final = json.loads(sse_data(streamed.text)[-2])
    assert final["question_used"] == body["question_used"]
    assert final["citations"][0]["doc_id"] == "uksi-2012-1916"


def test_a_long_history_is_not_a_422(real_client: TestClient) -> None:
    long_answer = {"role": "assistant", "content": "An answer with sources. " * 200}
    messages = [CONVERSATION[0], long_answer, CONVERSATION[2]]
    response = real_client.post("/v1/chat/completions", json={"messages": messages})
    assert response.status_code == 200
    assert response.json()["question_used"] == "What is the hospital exemption in the UK?"


def test_with_a_model_configured_it_may_rewrite_and_rules_are_the_fallback(
    tmp_path: Path, embedder: Embedder
) -> None:
    with ScriptedLLM(Script("How long must traceability records be kept in the UK?")) as llm:
        settings = mini_settings(
            tmp_path,
            embedder,
            llm_base_url=llm.base_url,
            llm_model="scripted",
            llm_timeout_s=5,
            follow_up_rewriter="llm",
        )
        with TestClient(mini_app(settings, embedder)) as client:
            messages = [
                {"role": "user", "content": "How long must traceability records be kept?"},
                {"role": "assistant", "content": "30 years [1]."},
                {"role": "user", "content": "And over there?"},
            ]
            body = client.post("/v1/chat/completions", json={"messages": messages}).json()
            assert body["question_used"] == "How long must traceability records be kept in the UK?"
            assert "And over there?" in llm.requests[0]["messages"][1]["content"]
            llm.script = Script(status=500)
            body = client.post("/v1/chat/completions", json={"messages": messages}).json()
            # the model fails: the rules' question, no error
            ruled = "How long must traceability records be kept: over there?"
            assert body["question_used"] == ruled
