"""Real OpenAI clients against a live server over the mini corpus: the official `openai`
package (sync, streaming, errors) and simonw's `llm` CLI with its documented
extra-openai-models.yaml (a question, then a follow-up with `llm -c`)."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from qa.embed import Embedder

from .test_api import TRACEABILITY, live_server, mini_app, mini_settings


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    settings = mini_settings(tmp_path_factory.mktemp("openai"), embedder)
    with live_server(mini_app(settings, embedder)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["atmp-qa"]
    assert client.models.retrieve("atmp-qa").id == "atmp-qa"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert "'gpt-4o' does not exist here" in missing.value.message
    assert missing.value.code == "model_not_found"


def test_sync_completion_with_citations(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="atmp-qa", messages=[{"role": "user", "content": TRACEABILITY}]
    )
    content = completion.choices[0].message.content or ""
    assert "30 years" in content and "**Sources**" in content
    extra = completion.model_extra or {}
    assert extra["question_used"] == TRACEABILITY and extra["citations"]


def test_streaming_with_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="atmp-qa",
        messages=[
            {"role": "user", "content": TRACEABILITY},
            {"role": "assistant", "content": "30 years [1]."},
            {"role": "user", "content": "And in the UK?"},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    final = chunks[-2].model_extra or {}
    assert final["question_used"] == "How long must traceability records be kept in the UK?"
    assert {c["doc_id"] for c in final["citations"] or final["related"]} == {"si-demo"}


@pytest.mark.parametrize(
    ("extra", "param", "sentence"),
    [
        ({"n": 2}, "n", "one answer per request"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
            "tools",
            "tools are not supported",
        ),
        ({"response_format": {"type": "json_object"}}, "response_format", "'json_object'"),
        ({"model": "gpt-4o"}, "model", "'gpt-4o' does not exist here"),
    ],
)
def test_unsupported_requests_are_400s_the_client_shows(
    client: openai.OpenAI, extra: dict[str, object], param: str, sentence: str
) -> None:
    kwargs: dict[str, object] = {
        "model": "atmp-qa",
        "messages": [{"role": "user", "content": TRACEABILITY}],
        **extra,
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    assert sentence in refused.value.message and refused.value.param == param


def test_invalid_request_shows_the_sentence(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        client.chat.completions.create(
            model="atmp-qa", messages=[{"role": "system", "content": "Be brief."}]
        )
    assert "needs a user message" in invalid.value.message


def run_llm(args: list[str], user_path: Path) -> str:
    env = {**os.environ, "LLM_USER_PATH": str(user_path), "OPENAI_API_KEY": "x"}
    done = subprocess.run(
        [sys.executable, "-m", "llm", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_llm_cli_question_and_follow_up(base_url: str, tmp_path: Path) -> None:
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: atmp-qa\n  model_name: atmp-qa\n  api_base: {base_url}/v1\n"
    )
    first = run_llm(["-m", "atmp-qa", TRACEABILITY], tmp_path)
    assert "30 years" in first and "Demo Regulation (EU) 2099/1" in first
    follow_up = run_llm(["-c", "And in the UK?"], tmp_path)
    assert "Demo Medicines Regulations 2099" in follow_up
    plain = run_llm(["-m", "atmp-qa", "--no-stream", TRACEABILITY], tmp_path)
    assert "30 years" in plain
