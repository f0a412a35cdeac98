"""Read endpoints over a small real index: ask, search, documents, passages, health, ready."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.answer import MARKER
from qa.embed import Embedder

from .test_api import TRACEABILITY, error_fields, mini_app, mini_settings

CITATION_FIELDS = {
    "n",
    "chunk_id",
    "doc_id",
    "title",
    "short_title",
    "section",
    "page",
    "url",
    "provision_url",
    "quote",
    "text",
    "score",
    "used",
    "jurisdiction",
    "origin",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[TestClient]:
    settings = mini_settings(tmp_path_factory.mktemp("queries"), embedder)
    with TestClient(mini_app(settings, embedder)) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "0.1.0"}


def test_ready_describes_the_index(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["documents"] == 3
    assert body["chunks"] == sum(d["chunks"] for d in client.get("/documents").json()["documents"])
    assert body["model"] and body["built_at"].startswith("20")


def test_ask_answers_with_checked_citations(client: TestClient) -> None:
    response = client.post("/ask", json={"question": f"  {TRACEABILITY}  "})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "answer",
        "abstained",
        "citations",
        "related",
        "caveats",
        "took_ms",
        "index_build",
    }
    assert body["index_build"] == client.get("/ready").json()["index_build"] != ""
    assert body["abstained"] is False and "30 years" in body["answer"]
    assert body["took_ms"] > 0
    first = body["citations"][0]
    assert set(first) == CITATION_FIELDS
    assert (first["doc_id"], first["section"]) == ("reg-demo", "Article 2(1)")
    assert (
        first["quote"] in first["text"] and first["url"] == "http://example.org/eli/reg/2099/1/oj"
    )
    numbers = {c["n"] for c in body["citations"]}
    assert {int(n) for n in MARKER.findall(body["answer"])} <= numbers


def test_ask_abstains_on_a_question_the_documents_do_not_answer(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "What is the capital of France?"}).json()
    assert body["abstained"] is True and body["citations"] == []
    assert body["related"] and not MARKER.search(body["answer"])


def test_ask_top_k_limits_the_citations(client: TestClient) -> None:
    body = client.post("/ask", json={"question": TRACEABILITY, "top_k": 2}).json()
    assert len(body["citations"]) == 2


@pytest.mark.parametrize(
    ("filters", "doc_ids"),
    [
        ({"jurisdiction": ["UK"]}, {"si-demo"}),
        ({"jurisdiction": ["EU"]}, {"reg-demo"}),
        ({"doc_ids": ["si-demo"]}, {"si-demo"}),
        ({"jurisdiction": [], "doc_ids": []}, {"reg-demo", "si-demo", "guideline-demo"}),
    ],
)
def test_ask_filters_restrict_the_passages(
    client: TestClient, filters: dict[str, Any], doc_ids: set[str]
) -> None:
    body = client.post(
        "/ask", json={"question": "Which records must be kept?", "filters": filters}
    ).json()
    passages = body["citations"] or body["related"]
    assert passages and {c["doc_id"] for c in passages} <= doc_ids


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "question"),
        ({"question": ""}, "question"),
        ({"question": " \n\t "}, "question"),
        ({"question": "x" * 2001}, "question"),
        ({"question": 42}, "question"),
        ({"question": "x", "top_k": 0}, "top_k"),
        ({"question": "x", "top_k": 21}, "top_k"),
        ({"question": "x", "top_k": "many"}, "top_k"),
        ({"question": "x", "filters": {"jurisdiction": ["FR"]}}, "jurisdiction"),
        ({"question": "x", "filters": {"doc_ids": 5}}, "doc_ids"),  # one id or a list of ids
        ({"question": "x", "filters": []}, "filters"),
    ],
)
def test_ask_bad_input_is_422_naming_the_field(
    client: TestClient, payload: dict[str, Any], field: str
) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    assert field in error_fields(response)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.startswith("Invalid request: ") and field in detail


def test_ask_with_a_body_that_is_not_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/ask", content=b"question=hi", headers={"Content-Type": "application/json"}
    )
    detail = response.json()["detail"]
    assert response.status_code == 422 and detail.startswith("The request body is not valid JSON")


def test_ask_a_question_of_2000_characters_is_accepted(client: TestClient) -> None:
    question = ("traceability records " * 100)[:2000]
    assert client.post("/ask", json={"question": question}).status_code == 200


def test_search_returns_ranked_passages(client: TestClient) -> None:
    response = client.get("/search", params={"q": TRACEABILITY, "k": 2})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["rank"] for r in results] == [1, 2]
    assert results[0]["doc_id"] == "reg-demo" and results[0]["section"] == "Article 2"


def test_search_filters_by_jurisdiction(client: TestClient) -> None:
    params = {"q": "records", "k": 10, "jurisdiction": "UK"}
    results = client.get("/search", params=params).json()["results"]
    assert results and {r["doc_id"] for r in results} == {"si-demo"}
    both = [("q", "records"), ("k", "20"), ("jurisdiction", "UK"), ("jurisdiction", "EU")]
    results = client.get("/search", params=both).json()["results"]
    assert {r["doc_id"] for r in results} == {"si-demo", "reg-demo"}


def test_documents_lists_every_indexed_document(client: TestClient) -> None:
    response = client.get("/documents")
    assert response.status_code == 200
    documents = {d["doc_id"]: d for d in response.json()["documents"]}
    assert set(documents) == {"guideline-demo", "reg-demo", "si-demo"}
    reg = documents["reg-demo"]
    assert reg["jurisdiction"] == "EU" and reg["file_name"] == "reg-demo.md"
    assert reg["url"] == "http://example.org/eli/reg/2099/1/oj" and reg["chunks"] > 0
    assert "/" not in reg["file_name"]  # the server's paths stay private


def test_document_has_its_sections_in_reading_order(client: TestClient) -> None:
    response = client.get("/documents/reg-demo")
    assert response.status_code == 200
    body = response.json()
    assert body["title"].startswith("Demo Regulation") and len(body["sections"]) == body["chunks"]
    sections = [s["section"] for s in body["sections"]]
    assert sections.index("Article 1") < sections.index("Article 2") < sections.index("Annex I")
    article_2 = body["sections"][sections.index("Article 2")]
    assert article_2["heading"] == "Record keeping"
    assert article_2["heading_path"] == ["CHAPTER 1 GENERAL PROVISIONS"]


def test_unknown_document_is_404_with_a_sentence(client: TestClient) -> None:
    response = client.get("/documents/no-such-doc")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "No indexed document has id 'no-such-doc'; GET /documents lists them."
    }


def _chunk_id(client: TestClient, doc_id: str, section: str) -> str:
    sections = client.get(f"/documents/{doc_id}").json()["sections"]
    return str(next(s["chunk_id"] for s in sections if s["section"] == section))


def test_passage_comes_with_its_neighbours(client: TestClient) -> None:
    chunk_id = _chunk_id(client, "reg-demo", "Article 2")
    response = client.get(f"/passages/{chunk_id}")
    assert response.status_code == 200
    body = response.json()
    passage = body["passage"]
    assert passage["chunk_id"] == chunk_id and "30 years" in passage["text"]
    assert passage["title"].startswith("Demo Regulation") and passage["url"]
    assert [c["section"] for c in body["before"]] == ["Article 1"]
    assert [c["section"] for c in body["after"]] == ["Article 3"]
    wide = client.get(f"/passages/{chunk_id}", params={"around": 5}).json()
    assert (
        wide["before"][-1]["section"] == "Article 1" and wide["after"][-1]["section"] == "Annex I"
    )
    assert all(c["doc_id"] == "reg-demo" for c in wide["before"] + wide["after"])
    alone = client.get(f"/passages/{chunk_id}", params={"around": 0}).json()
    assert alone["before"] == [] and alone["after"] == []


def test_first_passage_has_no_neighbours_before(client: TestClient) -> None:
    sections = client.get("/documents/si-demo").json()["sections"]
    body = client.get(f"/passages/{sections[0]['chunk_id']}").json()
    assert body["before"] == [] and len(body["after"]) == 1


def test_passage_around_out_of_range_is_422(client: TestClient) -> None:
    chunk_id = _chunk_id(client, "reg-demo", "Article 2")
    response = client.get(f"/passages/{chunk_id}", params={"around": 6})
    assert response.status_code == 422 and "around" in error_fields(response)


def test_unknown_passage_is_404_with_a_sentence(client: TestClient) -> None:
    response = client.get("/passages/reg-demo:article-99:0000000000")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No passage has id 'reg-demo:article-99:")


def test_openapi_docs_list_the_endpoints(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/ask", "/search", "/documents", "/documents/{doc_id}", "/passages/{chunk_id}"):
        assert path in paths
    for path in ("/ready", "/health", "/ingest", "/ingest/{job_id}", "/v1/chat/completions"):
        assert path in paths
    upload = paths["/documents"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
