"""`/docs` (Swagger UI) and `/redoc` load every asset from the app itself, never a CDN, and
Swagger UI renders the operations in Chromium with every other host blocked."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from qa.embed import Embedder

from .test_api import live_server, mini_app, mini_settings
from .test_chat_page import browser  # noqa: F401  (the Chromium fixture)

REDOC_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> TestClient:
    return TestClient(mini_app(mini_settings(tmp_path_factory.mktemp("docs"), embedder), embedder))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_app(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = [a or b for a, b in ASSET.findall(response.text)]
    assert any(u.endswith(".js") for u in urls), urls  # the page does load a script
    assert "/openapi.json" in urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        assert client.get(url).status_code == 200, url
    assert "cdn" not in response.text.lower() and "fonts.googleapis" not in response.text


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    with live_server(
        mini_app(mini_settings(tmp_path_factory.mktemp("docs-live"), embedder), embedder)
    ) as url:
        yield url


def test_swagger_ui_renders_the_operations_offline(
    browser: Any,  # noqa: F811
    base_url: str,
    tmp_path: Path,
) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 820})
    own = urlsplit(base_url).netloc
    elsewhere: list[str] = []

    def only_the_app(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_app)
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/ask", "/search", "/documents"} <= {p.strip() for p in paths}
    assert page.locator(".opblock").first.is_visible()
    page.screenshot(path=str(tmp_path / "docs.png"))
    assert elsewhere == []  # nothing was even attempted from another host

    page.goto(f"{base_url}/redoc")
    page.locator("text=Answer a question from the indexed documents").first.wait_for(timeout=30_000)
    assert page.locator("h2:has-text('Ask')").first.is_visible()
    # ReDoc's bundle asks for its sidebar badge; the <img> removes itself when that fails.
    assert set(elsewhere) <= {REDOC_BADGE}
    page.wait_for_function(
        "() => !document.querySelector(\"img[alt='redocly logo']\")", timeout=10_000
    )
    page.close()
