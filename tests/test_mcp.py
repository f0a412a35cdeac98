"""The MCP server through the SDK's own client: over stdio (`python -m qa mcp`, a real
subprocess) and over streamable HTTP (`/mcp` on a live uvicorn), on the mini corpus."""

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from qa.config import Settings
from qa.embed import Embedder

from .test_api import TRACEABILITY, live_server, mini_app, mini_settings

TOOLS = {"ask", "search", "get_passage", "list_documents"}


async def exercise(client: Client) -> dict[str, Any]:
    """List the tools and call each, good arguments and bad; the results by name."""
    tools = await client.list_tools()
    results: dict[str, Any] = {"tools": {t.name: t for t in tools.tools}}
    results["ask"] = await client.call_tool("ask", {"question": TRACEABILITY, "k": 3})
    chunk_id = results["ask"].structured_content["citations"][0]["chunk_id"]
    results["passage"] = await client.call_tool("get_passage", {"chunk_id": chunk_id})
    results["search"] = await client.call_tool(
        "search", {"question": "hospital exemption", "k": 2, "jurisdiction": "UK"}
    )
    results["documents"] = await client.call_tool("list_documents", {})
    results["empty"] = await client.call_tool("ask", {"question": "   "})
    results["unknown_doc"] = await client.call_tool(
        "ask", {"question": TRACEABILITY, "doc_ids": ["no-such-act"]}
    )
    results["unknown_passage"] = await client.call_tool("get_passage", {"chunk_id": "nope"})
    results["big_k"] = await client.call_tool("search", {"question": "x", "k": 51})
    return results


def check(results: dict[str, Any]) -> None:
    tools = results["tools"]
    assert set(tools) == TOOLS
    assert set(tools["ask"].input_schema["properties"]) == {
        "question",
        "k",
        "jurisdiction",
        "doc_ids",
    }
    assert tools["ask"].input_schema["required"] == ["question"]
    assert "citations" in tools["ask"].output_schema["properties"]

    ask = results["ask"]
    assert not ask.is_error
    answer = ask.structured_content
    assert not answer["abstained"] and "30 years" in answer["answer"] and "[1]" in answer["answer"]
    first = answer["citations"][0]
    assert first["n"] == 1 and first["doc_id"] == "reg-demo" and first["quote"] in first["text"]
    assert set(first) >= {"chunk_id", "section", "url", "origin", "used", "jurisdiction"}
    assert json.loads(ask.content[0].text) == answer  # the text block is the same JSON

    passage = results["passage"].structured_content
    assert passage["passage"]["chunk_id"] == first["chunk_id"]
    assert set(passage) == {"passage", "before", "after"}

    hits = results["search"].structured_content["results"]
    assert 1 <= len(hits) <= 2 and all(h["doc_id"] == "si-demo" for h in hits)

    docs = results["documents"].structured_content["documents"]
    assert {d["doc_id"] for d in docs} == {"reg-demo", "si-demo", "guideline-demo"}

    for name, words in {
        "empty": "Invalid arguments for ask: question: String should have at least 1 character.",
        "unknown_doc": "Unknown document id: no-such-act;",
        "unknown_passage": "No passage has id 'nope'",
        "big_k": "Invalid arguments for search: k: Input should be less than or equal to 50.",
    }.items():
        result = results[name]
        assert result.is_error, name
        assert words in result.content[0].text, (name, result.content[0].text)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Settings:
    return mini_settings(tmp_path_factory.mktemp("mcp"), embedder)


@pytest.fixture(scope="module")
def base_url(settings: Settings, embedder: Embedder) -> Iterator[str]:
    with live_server(mini_app(settings, embedder)) as url:
        yield url


def test_tools_over_streamable_http(base_url: str) -> None:
    async def run() -> dict[str, Any]:
        async with Client(f"{base_url}/mcp") as client:
            return await exercise(client)

    check(asyncio.run(run()))


def test_tools_over_stdio(settings: Settings) -> None:
    env = {
        **os.environ,
        "QA_INDEX_DIR": str(settings.index_dir),
        "QA_CORPUS_DIR": str(settings.corpus_dir),
        "QA_SOURCES_FILE": str(settings.sources_file),
    }
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "qa", "mcp"], env=env, cwd=str(settings.index_dir)
    )

    async def run() -> dict[str, Any]:
        async with Client(server, read_timeout_seconds=120) as client:
            return await exercise(client)

    check(asyncio.run(run()))


def test_stdio_without_an_index_exits_with_one_line(tmp_path: Path) -> None:
    import subprocess

    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, "-m", "qa", "mcp"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1
