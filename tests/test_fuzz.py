"""Schemathesis against the app's own /openapi.json: no request, valid or not, gets a 5xx.

A live uvicorn on loopback serves a small real index (the mini corpus, the real model) with
the admin endpoints enabled and the right token sent, so uploads, deletes and ingest jobs are
fuzzed too. Every operation gets schema-conforming and schema-violating requests (a bounded,
derandomised number each); every response must be below 500, and every 4xx must carry a
`detail` sentence. Afterwards nothing may have been written outside the corpus and index.

(Schemathesis' pytest plugin, `schema.parametrize()`, does not run under pytest 9, so the
operations are driven through `APIOperation.as_strategy` with Hypothesis directly.)
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from qa.embed import Embedder

from .test_api import live_server, mini_app, mini_settings

TOKEN = "fuzz-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = {GenerationMode.POSITIVE: 100, GenerationMode.NEGATIVE: 100}


def files_outside(root: Path, *allowed: str) -> set[Path]:
    """Files under `root`, except those in the `allowed` top-level folders."""
    return {
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in allowed
    }


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def base_url(fuzz_root: Path, embedder: Embedder) -> Iterator[str]:
    settings = mini_settings(fuzz_root, embedder, admin_token=TOKEN, max_upload_bytes=200_000)
    with live_server(mini_app(settings, embedder)) as url:
        yield url


def problem(response: Any) -> str | None:
    """What is wrong with a response, if anything: a 5xx, or a 4xx without a sentence."""
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if not isinstance(detail, str) or not detail.strip():
            return f"{response.status_code} without a detail sentence: {response.text[:300]}"
    return None


def fuzz(operation: Any, mode: GenerationMode, base_url: str) -> tuple[int, list[str]]:
    """Send `EXAMPLES[mode]` generated requests to one operation; returns (sent, problems)."""
    sent = 0
    found: list[str] = []

    @hypothesis.settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal sent
        response = case.call(base_url=base_url, headers=AUTH, timeout=60)
        sent += 1
        if (issue := problem(response)) is not None:
            found.append(f"{operation.label} ({mode.value}) {case.as_curl_command()}: {issue}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # GET /health and friends take no input, so there is nothing to make invalid.
        assert mode is GenerationMode.NEGATIVE, operation.label
    return sent, found


def test_no_generated_request_gets_a_server_error(base_url: str, fuzz_root: Path) -> None:
    before = files_outside(fuzz_root, "corpus", "index")
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /ask",
        "GET /search",
        "POST /documents",
        "DELETE /documents/{doc_id}",
        "POST /ingest",
        "GET /ingest/{job_id}",
        "POST /v1/chat/completions",
    }
    total, problems = 0, []
    for operation in operations:
        for mode in EXAMPLES:
            sent, found = fuzz(operation, mode, base_url)
            total += sent
            problems.extend(found)
    assert not problems, "\n".join(problems[:20])
    assert total >= 200
    assert files_outside(fuzz_root, "corpus", "index") == before
