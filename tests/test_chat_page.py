"""The chat page at `/`: served files, and a real browser (Debian's Chromium via Playwright)
asking a question over a live uvicorn, watching the answer stream in and opening a citation."""

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.embed import Embedder

from .test_api import TRACEABILITY, live_server, mini_app, mini_settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOT = Path("/tmp/atmp-chat.png")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    settings = mini_settings(tmp_path_factory.mktemp("page"), embedder)
    with live_server(mini_app(settings, embedder)) as url:
        yield url


def test_page_and_its_assets_are_served(base_url: str) -> None:
    page = httpx.get(f"{base_url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text and 'name="viewport"' in page.text
    script = httpx.get(f"{base_url}/static/app.js")
    assert script.status_code == 200 and "/v1/chat/completions" in script.text
    assert httpx.get(f"{base_url}/static/style.css").status_code == 200
    assert httpx.get(f"{base_url}/static/../api/app.py").status_code == 404


def test_page_is_left_out_of_the_api_docs(tmp_path: Path, embedder: Embedder) -> None:
    client = TestClient(mini_app(mini_settings(tmp_path, embedder), embedder))
    assert "/" not in client.get("/openapi.json").json()["paths"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium`")
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: `pip install playwright`"
    )
    with playwright_api.sync_playwright() as playwright:
        # Debian's Chromium, never a browser Playwright would download.
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_ask_watch_the_answer_stream_and_open_a_citation(
    browser: Any, base_url: str, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 820})
    page.goto(base_url)
    page.wait_for_selector("#status:has-text('3 documents')")
    page.fill("#question", TRACEABILITY)
    page.press("#question", "Enter")

    answer = page.locator("article.answer").last
    answer.and_(page.locator("[data-state=done]")).wait_for(timeout=30_000)
    assert int(answer.get_attribute("data-pieces")) > 10  # rendered piece by piece
    assert "30 years" in answer.locator(".text").inner_text()
    assert not answer.evaluate("el => el.classList.contains('abstained')")
    assert page.locator(".question").inner_text() == TRACEABILITY
    sources = answer.locator(".sources li")
    assert sources.count() >= 1 and "Article 2" in sources.first.inner_text()
    assert sources.first.locator(".num").text_content() == "1"  # numbered in order of use
    headings = [h.text_content() for h in answer.locator(".sources h3").all()]
    assert headings[0] == "Sources" and set(headings) <= {"Sources", "See also"}

    page.screenshot(path=str(tmp_path / "answer.png"))
    answer.locator(".chip").first.click()
    dialog = page.locator("dialog#passage")
    dialog.wait_for(state="visible")
    page.wait_for_selector("dialog#passage .neighbour")  # the fetched passage with neighbours
    assert dialog.locator("#passage-title").inner_text() == "Article 2(1) — Record keeping"
    assert dialog.locator("#passage-document").inner_text().startswith("Demo Regulation (EU)")
    assert "30 years" in dialog.locator("mark").first.inner_text()
    assert dialog.locator("#passage-link").get_attribute("href") == (
        "http://example.org/eli/reg/2099/1/oj"
    )
    assert dialog.locator(".neighbour.before h4").inner_text() == "Article 1"

    page.screenshot(path=str(tmp_path / "chat.png"))
    shutil.copyfile(tmp_path / "chat.png", SCREENSHOT)
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    page.close()


def test_abstention_is_distinct_at_phone_width(browser: Any, base_url: str, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 375, "height": 740}, is_mobile=True)
    page.goto(base_url)
    page.fill("#question", "What is the capital of France?")
    page.click("#send")
    answer = page.locator("article.answer[data-state=done]")
    answer.wait_for(timeout=30_000)
    assert answer.evaluate("el => el.classList.contains('abstained')")
    assert answer.locator(".badge").is_visible()
    assert answer.locator(".chip").count() == 0
    assert answer.locator(".sources h3").inner_text().lower() == "related passages"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways at phone width ({width}px)"

    answer.locator(".source").first.click()
    page.locator("dialog#passage").wait_for(state="visible")
    box = page.locator("dialog#passage").bounding_box()
    assert box is not None and box["width"] <= 375
    page.screenshot(path=str(tmp_path / "phone.png"))
    shutil.copyfile(tmp_path / "phone.png", SCREENSHOT.with_name("atmp-chat-phone.png"))
    page.close()


def test_an_error_is_shown_in_the_conversation(browser: Any, base_url: str) -> None:
    page = browser.new_page()
    page.goto(base_url)
    page.evaluate("document.querySelector('#question').removeAttribute('maxlength')")
    page.fill("#question", "x" * 2001)
    page.click("#send")
    answer = page.locator("article.answer[data-state=error]")
    answer.wait_for(timeout=30_000)
    assert "over 2000 characters" in answer.inner_text()
    page.close()
