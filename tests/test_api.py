from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from qa.api import create_app
from qa.config import Settings


@pytest.fixture(scope="module")
def client(real_index: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(real_index)) as test_client:
        yield test_client


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_search(client: TestClient) -> None:
    response = client.get(
        "/search", params={"q": "How long must traceability data for an ATMP be kept?", "k": 3}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert any(
        r["doc_id"] == "32007R1394" and r["section"].startswith("Article 15") for r in results
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": ""}, "q"), ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": "many"}, "k"), ({}, "q")],
)
def test_search_bad_input_is_422_naming_the_field(
    client: TestClient, params: dict, field: str
) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 422
    assert field in {str(loc) for error in response.json()["detail"] for loc in error["loc"]}


def test_blank_query_is_400_with_a_sentence(client: TestClient) -> None:
    response = client.get("/search", params={"q": "   "})
    assert response.status_code == 400 and "empty" in response.json()["detail"]


def test_app_refuses_to_start_without_an_index(tmp_path) -> None:
    from qa.errors import IndexNotFoundError

    settings = Settings(_env_file=None, index_dir=tmp_path / "none")  # type: ignore[call-arg]
    with pytest.raises(IndexNotFoundError), TestClient(create_app(settings)):
        pass
