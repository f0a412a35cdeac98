"""Generated answers: prompt, marker checks, fallbacks, streaming, against a scripted server."""

import random
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa.answer import MARKER, Answer, check_citations
from qa.embed import Embedder
from qa.generate import (
    CANNOT_ANSWER_PHRASE,
    NO_CITATION,
    MarkerFilter,
    build_messages,
    passage_window,
)
from qa.pipeline import QA

from .conftest import make_settings
from .scripted_llm import Script, ScriptedLLM
from .test_api import TRACEABILITY, mini_settings

FRANCE = "What is the capital of France?"


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    root = tmp_path_factory.mktemp("generate")
    mini_settings(root, embedder)
    return root


@pytest.fixture(scope="module")
def extractive(mini_root: Path, embedder: Embedder) -> QA:
    return QA.from_settings(make_settings(mini_root), embedder=embedder)


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


def with_model(root: Path, embedder: Embedder, base_url: str, **overrides: Any) -> QA:
    settings = make_settings(
        root, llm_base_url=base_url, llm_model="scripted", llm_api_key="sk-test", **overrides
    )
    return QA.from_settings(settings, embedder=embedder)


def cites_exactly_its_markers(answer: Answer) -> None:
    check_citations(answer)
    used = [int(n) for n in MARKER.findall(answer.text)]
    assert (
        sorted(set(used))
        == [c.n for c in answer.citations]
        == list(range(1, len(answer.citations) + 1))
    )
    assert used[0] == 1  # renumbered in order of first use


def filtered(text: str, passages: int = 4) -> tuple[str, list[int]]:
    markers = MarkerFilter(passages)
    return markers.feed(text) + markers.close(), markers.cited


@pytest.mark.parametrize(
    ("text", "expected", "cited"),
    [
        ("Kept 30 years [3]. Also [1].", "Kept 30 years [1]. Also [2].", [3, 1]),
        ("Kept [9] for 30 years [2].", "Kept for 30 years [1].", [2]),
        ("Kept 30 years [9].", "Kept 30 years.", []),
        ("Both [1, 3] and [2-4].", "Both [1][2] and [3][2][4].", [1, 3, 2, 4]),
        ("  [2] leads.  ", "[1] leads.", [2]),
        ("See [Article 15] and [x].", "See [Article 15] and [x].", []),
        ("Fees drop [Passage 2] and [passages 3, 1].", "Fees drop [1] and [2][3].", [2, 3, 1]),
        ("No citation at all.", "No citation at all.", []),
        ("Cut off [1", "Cut off [1", []),
    ],
)
def test_marker_filter_renumbers_valid_markers_and_drops_the_rest(
    text: str, expected: str, cited: list[int]
) -> None:
    assert filtered(text) == (expected, cited)


def test_marker_filter_output_does_not_depend_on_how_text_arrives() -> None:
    text = " The holder keeps records [2] for 30 years [1, 9]. Hospitals [7] keep them [2]. "
    whole = filtered(text)
    rng = random.Random(6)
    for _ in range(200):
        markers, pieces, at = MarkerFilter(4), [], 0
        while at < len(text):
            step = rng.randint(1, 6)
            pieces.append(markers.feed(text[at : at + step]))
            at += step
        pieces.append(markers.close())
        assert ("".join(pieces), markers.cited) == whole


def test_prompt_numbers_the_passages_with_sections_and_short_titles(extractive: QA) -> None:
    draft = extractive.ask(TRACEABILITY)
    system, user = build_messages(draft.question, draft.citations, passage_chars=1000)
    assert system["role"] == "system" and "only" in system["content"]
    prompt = user["content"]
    first = draft.citations[0]
    assert f"[1] {first.section} — {first.short_title}\n" in prompt
    assert f"[{len(draft.citations)}] " in prompt and f"[{len(draft.citations) + 1}] " not in prompt
    assert f"Question: {TRACEABILITY}" in prompt and CANNOT_ANSWER_PHRASE in prompt
    assert "square brackets" in prompt


def test_long_passages_are_cut_around_their_quote(extractive: QA) -> None:
    citation = extractive.ask(TRACEABILITY).citations[0]
    long = replace(citation, text="Filler. " * 300 + citation.text)
    window = passage_window(long, 300)
    assert len(window) <= 302 and window.startswith("…")
    assert citation.quote[:40] in window


def test_unset_settings_keep_the_extractive_answer(extractive: QA) -> None:
    answer = extractive.ask(TRACEABILITY)
    assert extractive.chat_model is None and answer.notes == {}
    assert answer.text == extractive.prepare(TRACEABILITY).text


def test_generated_answer_cites_exactly_what_it_uses(
    mini_root: Path, embedder: Embedder, llm: ScriptedLLM
) -> None:
    qa = with_model(mini_root, embedder, llm.base_url)
    draft = qa.prepare(TRACEABILITY)
    llm.script = Script("Batch records: ten years [2]. Traceability records: 30 years [1][99].")
    answer = qa.ask(TRACEABILITY)
    assert answer.text == "Batch records: ten years [1]. Traceability records: 30 years [2]."
    assert answer.notes == {"generator": "llm:scripted"}
    assert [c.chunk_id for c in answer.citations] == [
        draft.citations[1].chunk_id,
        draft.citations[0].chunk_id,
    ]
    assert [c.quote for c in answer.citations] == [
        draft.citations[1].quote,
        draft.citations[0].quote,
    ]
    cites_exactly_its_markers(answer)
    (request,) = llm.requests
    assert request["path"] == "/v1/chat/completions" and request["model"] == "scripted"
    assert request["stream"] is False and request["authorization"] == "Bearer sk-test"
    assert TRACEABILITY in request["messages"][-1]["content"]


@pytest.mark.parametrize(
    "reply",
    ["Traceability records are kept for 30 years.", "Kept for 30 years [9].", CANNOT_ANSWER_PHRASE],
)
def test_an_answer_citing_no_passage_falls_back_to_the_extractive_one(
    mini_root: Path, embedder: Embedder, llm: ScriptedLLM, reply: str
) -> None:
    qa = with_model(mini_root, embedder, llm.base_url)
    llm.script = Script(reply)
    answer = qa.ask(TRACEABILITY)
    assert answer.text == qa.prepare(TRACEABILITY).text and "30 years" in answer.text
    assert answer.notes == {"generator": "extractive", "generator_error": NO_CITATION}
    check_citations(answer)


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (Script(status=500), "answered HTTP 500: boom."),
        (Script(status=404, body="no such route"), "answered HTTP 404: no such route."),
        (Script(body="{not json"), "sent a reply that is not JSON."),
        (Script(body='{"choices": []}'), "has no choices[0].message.content"),
        (Script("Kept 30 years [1].", delay_s=2), "did not answer within 0.3 s"),
    ],
)
def test_model_failures_give_the_extractive_answer_with_a_note(
    mini_root: Path, embedder: Embedder, llm: ScriptedLLM, script: Script, error: str
) -> None:
    qa = with_model(mini_root, embedder, llm.base_url, llm_timeout_s=0.3)
    llm.script = script
    answer = qa.ask(TRACEABILITY)
    assert answer.text == qa.prepare(TRACEABILITY).text and not answer.abstained
    assert answer.notes["generator"] == "extractive"
    assert error in answer.notes["generator_error"]
    assert answer.notes["generator_error"].endswith(".")


def test_unreachable_model_gives_the_extractive_answer(mini_root: Path, embedder: Embedder) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    qa = with_model(mini_root, embedder, f"http://127.0.0.1:{port}/v1")
    answer = qa.ask(TRACEABILITY)
    assert answer.notes["generator"] == "extractive"
    assert "could not be reached (ConnectError)" in answer.notes["generator_error"]


def test_abstention_never_calls_the_model(
    mini_root: Path, embedder: Embedder, llm: ScriptedLLM
) -> None:
    qa = with_model(mini_root, embedder, llm.base_url)
    llm.script = Script("Paris [1].")
    answer = qa.ask(FRANCE)
    stream = qa.ask_stream(FRANCE)
    assert list(stream) == [] and not stream.generating
    assert answer.abstained and stream.answer.abstained and llm.requests == []
    assert answer.notes == {"generator": "extractive"} and not answer.citations


def test_stream_relays_checked_pieces_then_the_answer(
    mini_root: Path, embedder: Embedder, llm: ScriptedLLM
) -> None:
    qa = with_model(mini_root, embedder, llm.base_url)
    llm.script = Script(pieces=["Records", " are kept", " 30 years [", "2", "][7]", ". Done [1]."])
    stream = qa.ask_stream(TRACEABILITY)
    assert stream.generating and stream.answer is stream.draft  # nothing generated yet
    pieces = list(stream)
    assert pieces == ["Records", " are kept", " 30 years", " [1]", ". Done [2]."]
    answer = stream.answer
    assert "".join(pieces) == answer.text and answer.notes == {"generator": "llm:scripted"}
    assert answer.took_ms > 0
    cites_exactly_its_markers(answer)
    assert llm.requests[0]["stream"] is True


def test_stream_broken_off_falls_back_with_the_servers_message(
    mini_root: Path, embedder: Embedder, llm: ScriptedLLM
) -> None:
    qa = with_model(mini_root, embedder, llm.base_url)
    llm.script = Script(
        "Records are kept [1]", stream_tail=['{"error": {"message": "out of  memory"}}']
    )
    stream = qa.ask_stream(TRACEABILITY)
    assert "".join(stream) == "Records are kept [1]"
    assert stream.answer.text == qa.prepare(TRACEABILITY).text
    assert stream.answer.notes == {
        "generator": "extractive",
        "generator_error": "The model server reported an error: out of memory.",
    }


def test_model_without_base_url_or_name_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="QA_LLM_MODEL is not"):
        make_settings(tmp_path, llm_base_url="http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="llm_base_url"):
        make_settings(tmp_path, llm_base_url="localhost:11434", llm_model="m")
