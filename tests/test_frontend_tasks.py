"""Chat front ends' background prompts, replayed from a recorded Open WebUI/LibreChat sequence
against the app over the mini corpus: each gets a reply in the format it asks for."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.embed import Embedder
from qa.frontend_tasks import recognise_task, title_for

from .conftest import DATA
from .test_api import mini_app, mini_settings
from .test_api_chat import sse_data

SEQUENCE: list[dict[str, Any]] = json.loads((DATA / "open_webui_requests.json").read_text())[
    "requests"
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[TestClient]:
    settings = mini_settings(tmp_path_factory.mktemp("tasks"), embedder)
    with TestClient(mini_app(settings, embedder)) as test_client:
        yield test_client


def content_of(response: Any, *, stream: bool) -> str:
    if not stream:
        return str(response.json()["choices"][0]["message"]["content"])
    chunks = [json.loads(d) for d in sse_data(response.text)[:-1]]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


def test_prompts_are_recognised_as_the_task_they_are() -> None:
    kinds = [recognise_task(r["body"]["messages"][-1]["content"]) for r in SEQUENCE]
    assert [k.kind if k else "chat" for k in kinds] == [r["task"] for r in SEQUENCE]
    title = kinds[1]
    assert title is not None and title.user_turns == (
        "How long must traceability records be kept?",
    )


@pytest.mark.parametrize(
    "question",
    [
        "What is the title of Regulation 1394/2007?",
        "Which tags must a product label carry?",
        'What does "follow-up" mean in Article 14?',
    ],
)
def test_real_questions_are_not_tasks(question: str) -> None:
    assert recognise_task(question) is None


def test_the_recorded_sequence_gets_the_formats_it_asks_for(client: TestClient) -> None:
    replies = []
    for request in SEQUENCE:
        body = request["body"]
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, (request["task"], response.text)
        replies.append((request["task"], content_of(response, stream=body["stream"]), response))
    (_, answer, _), (_, title, _), (_, tags, _), (_, follow_ups, _), (_, queries, _) = replies[:5]
    assert "30 years" in answer
    assert json.loads(title) == {"title": "Traceability records be kept"}
    tag_list = json.loads(tags)["tags"]
    assert "EU" in tag_list
    assert any(t.startswith("Demo Regulation (EU) 2099/1") for t in tag_list)
    suggestions = json.loads(follow_ups)["follow_ups"]
    assert suggestions and all(s.startswith("What does ") and s.endswith("?") for s in suggestions)
    assert json.loads(queries) == {
        "queries": ["How long must traceability records be kept in the UK?"]
    }
    final = json.loads(sse_data(replies[5][2].text)[-2])
    assert final["question_used"] == "How long must traceability records be kept in the UK?"
    assert json.loads(replies[6][1]) == {"text": ""}
    long_title = json.loads(replies[7][1])["title"]
    assert long_title.startswith("Traceability records")  # a 2,678-character prompt: no 422
    assert replies[8][1] == title_for("How long must traceability records be kept?")
    for task, reply, _ in replies[1:]:
        assert "cannot" not in reply.lower() and "unknown" not in reply.lower(), (task, reply)


def test_a_follow_up_turn_is_answered_as_a_standalone_question(client: TestClient) -> None:
    body = SEQUENCE[5]["body"]
    response = client.post("/v1/chat/completions", json={**body, "stream": False})
    answer = response.json()
    assert answer["question_used"] == "How long must traceability records be kept in the UK?"
    passages = answer["citations"] or answer["related"]
    assert passages and passages[0]["doc_id"] == "si-demo"


def test_title_is_short_and_from_the_first_question() -> None:
    question = "What is the hospital exemption under the EU ATMP Regulation?"
    assert title_for(question) == "Hospital exemption under the EU ATMP Regulation"
