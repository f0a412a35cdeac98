"""Schemathesis against the app's own /openapi.json: no request, valid or not, gets a 5xx.

A live uvicorn on loopback serves a small real index (the mini corpus, the real model) with
the admin endpoints enabled and the right token sent, so uploads, deletes and ingest jobs are
fuzzed too. Every operation gets schema-conforming and schema-violating requests (a bounded,
derandomised number each); every response must be below 500, and every 4xx must carry a
`detail` sentence. Afterwards nothing may have been written outside the corpus and index.

(Schemathesis' pytest plugin, `schema.parametrize()`, does not run under pytest 9, so the
operations are driven through `APIOperation.as_strategy` with Hypothesis directly.)
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.strategies
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
            body = response.json()
            # /v1/* errors use OpenAI's envelope, {"error": {"message": …}}
            detail = body.get("detail") or (body.get("error") or {}).get("message")
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


# -- generated uploads --------------------------------------------------------------------------

PIECES = [
    "---\n",
    "title: ",
    "source: javascript:alert(1)\n",
    "country: eu\n",
    "a: &a [x, x]\nb: *a\n",
    "[" * 50,
    "# ",
    "#### Article 1\n",
    "###### 2\n",
    "- (a) ",
    "**a ",
    "[a](",
    "[^",
    "__",
    " " * 200,
    "\n",
    "\n\n",
    "<html><head><title>",
    "</title></head><body><p>",
    "<div>" * 30,
    "%PDF-1.4\n",
    "Whereas:\n\n(1) ",
    "The holder shall keep the records for 30 years. ",
]
DOCUMENTS = hypothesis.strategies.tuples(
    hypothesis.strategies.sampled_from([".md", ".txt", ".html", ".pdf"]),
    hypothesis.strategies.lists(
        hypothesis.strategies.one_of(
            hypothesis.strategies.sampled_from(PIECES),
            hypothesis.strategies.text(max_size=40),
        ),
        max_size=60,
    ),
    hypothesis.strategies.integers(min_value=1, max_value=300),
)


def test_generated_uploads_never_break_an_ingest(base_url: str) -> None:
    """Uploads built from the pieces of every hostile document seen so far: each is accepted
    or refused with a sentence, and the ingest that follows indexes what it can, names what it
    cannot in one line each, and labels every uploaded passage."""
    names: list[str] = []

    @hypothesis.settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(document=DOCUMENTS)
    def send(document: tuple[str, list[str], int]) -> None:
        suffix, pieces, repeat = document
        body = ("".join(pieces) * repeat)[:150_000].encode("utf-8", "surrogatepass")
        name = f"fuzz-{len(names)}{suffix}"
        response = httpx.post(
            f"{base_url}/documents", files={"file": (name, body)}, headers=AUTH, timeout=60
        )
        assert (issue := problem(response)) is None, issue
        if response.status_code == 201:
            names.append(name)

    send()
    assert len(names) >= 10
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as client:
        job = run_job(client)
        assert job["state"] == "succeeded", job
        failed = {line.split(": ", 1)[0]: line for line in job["failed"]}
        for name in names:
            doc_id = Path(name).stem
            assert (doc_id in job["added"]) != (name in failed), (name, job)
        assert all("\n" not in line and len(line) < 600 for line in failed.values())
        documents = {d["doc_id"]: d for d in client.get("/documents").json()["documents"]}
        for doc_id in job["added"]:
            assert documents[doc_id]["origin"] == "uploaded"
            url = documents[doc_id]["url"]
            assert url is None or url.startswith(("http://", "https://"))
        assert client.get("/search", params={"q": "records 30 years"}).status_code == 200
        for name in names:
            assert client.delete(f"/documents/{Path(name).stem}").status_code == 200
        assert run_job(client)["state"] == "succeeded"


def run_job(client: httpx.Client) -> dict[str, Any]:
    job: dict[str, Any] = client.post("/ingest").json()
    deadline = time.monotonic() + 300
    while job["state"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/ingest/{job['job_id']}").json()
    return job
