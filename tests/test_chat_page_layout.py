"""The chat page in Debian's Chromium at desktop (1280x800) and phone (390x844) width, checked by
geometry: what must be seen is inside the viewport and on top (not under the input bar), not
merely in the DOM. Answers come from a live uvicorn over the mini corpus; where a test needs an
answer or passage longer than that corpus has, it is served at the HTTP seam (`page.route`)."""

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from .test_api import TRACEABILITY
from .test_chat_page import base_url, browser  # noqa: F401  (module-scoped fixtures)

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDTHS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
RENEWAL = "How often must the licence for an exempt product be renewed?"
DEMO_SI = "https://www.legislation.gov.uk/uksi/2099/1"
ANSWER_DONE = "article.answer[data-state=done]"


@pytest.fixture
def viewport() -> dict[str, int]:
    return DESKTOP


@pytest.fixture
def page(browser: Any, viewport: dict[str, int]) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(
        viewport=viewport,
        is_mobile=viewport is PHONE,
        has_touch=viewport is PHONE,
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    yield page
    context.close()


def on_top(page: Any, locator: Any, *, under_bar: bool = True) -> bool:
    """Whether `locator` is inside the viewport and is what a click at its centre would hit
    (so not covered by the input bar or anything else); with `under_bar`, also above the bar."""
    box = locator.bounding_box()
    size = page.viewport_size
    if box is None or box["width"] == 0 or box["height"] == 0:
        return False
    bottom = size["height"]
    if under_bar:
        bottom = min(bottom, page.locator("#ask").bounding_box()["y"])
    inside = (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"] + 0.5
        and box["y"] + box["height"] <= bottom + 0.5
    )
    hit: bool = locator.evaluate(
        """el => { const r = el.getBoundingClientRect();
                   const at = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                   return at !== null && (at === el || el.contains(at)); }"""
    )
    return inside and hit


def ask(page: Any, question: str) -> Any:
    """Types `question`, sends it and waits for its answer; returns the answer."""
    done = page.locator(ANSWER_DONE).count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    page.locator(ANSWER_DONE).nth(done).wait_for(timeout=30_000)
    return page.locator("article.answer").last


SCROLLER = """(() => {
  const log = document.getElementById('log');
  return log.scrollHeight > log.clientHeight ? log : document.scrollingElement;
})()"""


def scroll_overflow(page: Any) -> float:
    """How many viewports of conversation there are (the log or the page, whichever scrolls)."""
    ratio: float = page.evaluate(f"(el => el.scrollHeight / el.clientHeight)({SCROLLER})")
    return ratio


def scroll_to_top(page: Any) -> None:
    page.evaluate(f"(el => {{ el.scrollTop = 0; }})({SCROLLER})")


def source_numbers(answer: Any) -> list[int]:
    return [int(n) for n in answer.locator(".sources .num").all_text_contents()]


def request_messages(request: Any) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = json.loads(request.post_data)["messages"]
    return messages


# Canned responses, for answers and passages longer than the mini corpus holds.


def citation(n: int, section: str, *, url: str = DEMO_SI, provision_url: str | None = None) -> Any:
    text = f"({n}) The holder shall keep the records of {section} for thirty years. " * 3
    return {
        "n": n,
        "chunk_id": f"demo:{n}",
        "doc_id": "demo",
        "title": "The Demo Medicines Regulations 2099",
        "short_title": "Demo Regulations",
        "section": section,
        "page": None,
        "url": url,
        "quote": text.split(". ")[0] + ".",
        "text": text,
        "score": 0.5,
        "used": True,
        "jurisdiction": "UK",
        "origin": "official mirror",
        "provision_url": provision_url or url,
    }


def event_stream(text: str, citations: list[Any], **final: Any) -> str:
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0}
    base["model"] = "atmp-qa"

    def choice(delta: dict[str, str], finish: str | None = None) -> Any:
        return [{"index": 0, "delta": delta, "finish_reason": finish}]

    chunks = [{**base, "choices": choice({"role": "assistant", "content": ""}), "abstained": False}]
    chunks += [{**base, "choices": choice({"content": p})} for p in re.findall(r"\S+\s*", text)]
    last = {**base, "choices": choice({}, "stop"), "citations": citations, "related": []}
    chunks.append({**last, "abstained": False, "caveats": [], **final})
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def serve_answer(page: Any, text: str, citations: list[Any], **final: Any) -> None:
    body = event_stream(text, citations, **final)
    page.route(
        "**/v1/chat/completions",
        lambda route: route.fulfill(
            status=200, headers={"content-type": "text/event-stream"}, body=body
        ),
    )


LONG_ANSWER = " ".join(
    f"Point {i}: the holder shall keep the records for thirty years after expiry [{n}]."
    for i, n in zip(range(1, 31), [3, 1] * 15, strict=True)
)
# The server's numbers 1..5; the answer cites 3 and 1 only.
SERVER_CITATIONS = [
    citation(1, "regulation 2(2)", provision_url=f"{DEMO_SI}/regulation/2"),
    citation(2, "regulation 1"),
    citation(3, "Schedule 1, paragraph 1", provision_url=f"{DEMO_SI}/schedule/1/paragraph/1"),
    citation(4, "regulation 3"),
    citation(5, "regulation 4"),
]


def serve_long_passage(page: Any) -> None:
    def chunk(section: str, words: int) -> Any:
        text = " ".join(f"word{i}" for i in range(words))
        return {"chunk_id": f"demo:{section}", "doc_id": "demo", "section": section, "text": text}

    passage = {
        **chunk("regulation 2", 600),
        "heading": "Exempt products",
        "heading_path": ["PART 1 — General"],
        "page": None,
    }
    before = [chunk(f"regulation 1({i})", 200) for i in range(1, 4)]
    after = [chunk(f"regulation 3({i})", 200) for i in range(1, 4)]
    page.route(
        "**/passages/**",
        lambda route: route.fulfill(json={"passage": passage, "before": before, "after": after}),
    )


# The tests.


@WIDTHS
def test_passage_header_stays_in_view_while_its_body_scrolls(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    serve_answer(page, LONG_ANSWER, SERVER_CITATIONS)
    serve_long_passage(page)
    answer = ask(page, TRACEABILITY)
    chip = answer.locator(".chip").first
    chip.click()
    dialog = page.locator("dialog#passage")
    page.wait_for_selector("dialog#passage[data-loaded]")
    body = dialog.locator("#passage-body")
    title, link = dialog.locator("#passage-title"), dialog.locator("#passage-link")
    assert title.inner_text() == "Schedule 1, paragraph 1 — Exempt products"  # source 1 = [3]
    assert body.evaluate("el => el.scrollHeight > el.clientHeight + 100")  # the body does scroll
    for scroll in ("el.scrollHeight", "0", "el.scrollHeight"):
        body.evaluate(f"el => {{ el.scrollTop = {scroll}; }}")
        page.wait_for_timeout(50)
        assert on_top(page, title, under_bar=False), f"title out of view at scrollTop={scroll}"
        assert on_top(page, dialog.locator("#passage-document"), under_bar=False)
        assert on_top(page, dialog.locator(".close"), under_bar=False)
        assert on_top(page, link, under_bar=False)
    assert body.evaluate("el => el.scrollTop > 0")
    assert dialog.evaluate("el => el.scrollTop") == 0  # the dialog itself never scrolls
    assert link.get_attribute("href") == f"{DEMO_SI}/schedule/1/paragraph/1"  # not the act


@WIDTHS
def test_sources_are_numbered_from_one_and_the_last_is_reachable(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    serve_answer(page, LONG_ANSWER, SERVER_CITATIONS)
    answer = ask(page, TRACEABILITY)
    chips = sorted({int(n) for n in answer.locator(".chip").all_text_contents()})
    assert chips == [1, 2]  # server's [3] and [1], renumbered in order of use
    assert answer.locator(".chip").first.text_content() == "1"
    assert source_numbers(answer) == [1, 2, 3, 4, 5]  # Sources 1–2, then See also 3–5
    assert [h.lower() for h in answer.locator(".sources h3").all_text_contents()] == [
        "sources",
        "see also",
    ]
    first_source = answer.locator(".sources li").first
    assert "Schedule 1, paragraph 1" in first_source.inner_text()  # what [3] cited
    official = first_source.locator("a.official")
    assert official.get_attribute("href") == f"{DEMO_SI}/schedule/1/paragraph/1"

    assert scroll_overflow(page) > 1  # long enough to scroll
    last = answer.locator(".sources li").last
    assert on_top(page, last), "the last source is not in view when the answer ends"
    scroll_to_top(page)
    assert not on_top(page, last)
    assert on_top(page, page.locator(".question").first)
    last.scroll_into_view_if_needed()
    assert on_top(page, last), "the last source cannot be scrolled into view"
    last.locator(".source").click()  # and it can be used
    page.locator("dialog#passage").wait_for(state="visible")
    assert page.locator("#passage-title").inner_text().startswith("regulation 4")


@WIDTHS
def test_a_long_real_conversation_keeps_the_last_source_reachable(
    page: Any,
    base_url: str,  # noqa: F811
) -> None:
    page.goto(base_url)
    page.wait_for_selector("#status:has-text('3 documents')")
    for question in [TRACEABILITY, RENEWAL, TRACEABILITY, RENEWAL, TRACEABILITY]:
        answer = ask(page, question)
        numbers = source_numbers(answer)
        assert numbers == list(range(1, len(numbers) + 1)) and numbers
    assert page.locator("article.answer").count() == 5
    assert scroll_overflow(page) > 2
    last = page.locator("article.answer").last.locator(".sources li").last
    assert on_top(page, last)
    assert on_top(page, page.locator("#question"), under_bar=False)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways ({width}px)"


def test_the_dialog_traps_focus_and_escape_closes_it(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    answer = ask(page, TRACEABILITY)
    chip = answer.locator(".chip").first
    chip.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#passage")
    page.wait_for_selector("dialog#passage[data-loaded]")
    in_dialog = "() => document.getElementById('passage').contains(document.activeElement)"
    assert page.evaluate(in_dialog)
    seen = set()
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate(in_dialog), "Tab left the dialog"
        seen.add(page.evaluate("document.activeElement.id || document.activeElement.className"))
    assert {"close", "passage-body", "passage-link"} <= seen
    for _ in range(5):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(in_dialog), "Shift+Tab left the dialog"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('chip')")  # focus returns


def test_controls_have_names_and_the_answer_is_announced(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    for role, name in [
        ("textbox", "Your question"),
        ("combobox", "Search in"),
        ("button", "Ask"),
        ("button", "New chat"),
    ]:
        assert page.get_by_role(role, name=name, exact=True).count() == 1, name
    answer = ask(page, TRACEABILITY)
    assert answer.get_attribute("aria-busy") is None
    assert page.get_by_role("button", name="Source 1", exact=True).count() >= 1
    assert page.get_by_role("button", name="Copy answer").count() == 1
    announcer = page.locator("[aria-live=polite]")
    assert announcer.count() == 1
    page.wait_for_function("document.getElementById('announce').textContent.includes('30 years')")
    assert page.evaluate("document.getElementById('log').getAttribute('aria-live')") is None


def test_abstention_reads_as_plain_language(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    answer = ask(page, "What is the capital of France?")
    text = answer.locator(".text").inner_text()
    assert answer.evaluate("el => el.classList.contains('abstained')")
    assert "related" not in text.lower()  # no API field names
    assert "listed below" in text
    heading = answer.locator(".sources h3").first
    assert on_top(page, heading)  # "below" is where they are: in view under the text
    text_box = answer.locator(".text").bounding_box()
    assert heading.bounding_box()["y"] > text_box["y"] + text_box["height"] - 1


def test_a_follow_up_sends_the_conversation(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    first = ask(page, TRACEABILITY)
    first_text = first.locator(".text").inner_text()
    with page.expect_request("**/v1/chat/completions") as sent:
        ask(page, "And in the UK?")
    messages = request_messages(sent.value)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == TRACEABILITY
    assert "30 years" in messages[1]["content"]
    assert re.sub(r"\[(\d+)\]", r" \1 ", messages[1]["content"]).split() == first_text.split()
    assert messages[2]["content"] == "And in the UK?"


def test_new_chat_clears_the_conversation(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    ask(page, TRACEABILITY)
    page.get_by_role("button", name="New chat").click()
    assert page.locator("article.answer, .question").count() == 0
    assert on_top(page, page.locator("#intro"))
    assert page.evaluate("document.activeElement.id") == "question"
    with page.expect_request("**/v1/chat/completions") as sent:
        ask(page, RENEWAL)
    assert request_messages(sent.value) == [{"role": "user", "content": RENEWAL}]
    assert page.locator("article.answer").count() == 1


def test_new_chat_during_an_answer_drops_it(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    page.route("**/v1/chat/completions", lambda route: None)  # never answers
    page.fill("#question", TRACEABILITY)
    page.press("#question", "Enter")
    page.locator("article.answer[data-state=streaming]").wait_for()
    page.get_by_role("button", name="New chat").click()
    assert page.locator("article.answer").count() == 0
    page.unroute("**/v1/chat/completions")
    with page.expect_request("**/v1/chat/completions") as sent:
        ask(page, RENEWAL)
    assert len(request_messages(sent.value)) == 1


@WIDTHS
def test_copy_answer_puts_the_answer_and_its_sources_on_the_clipboard(
    page: Any,
    base_url: str,  # noqa: F811
) -> None:
    page.goto(base_url)
    answer = ask(page, RENEWAL)
    copy = answer.get_by_role("button", name="Copy answer")
    assert on_top(page, copy)
    copy.click()
    page.wait_for_function("document.querySelector('.copy').textContent === 'Copied'")
    copied: str = page.evaluate("navigator.clipboard.readText()")
    text = answer.locator(".text").inner_text()
    assert copied.startswith(text.strip()) and "five years" in copied
    assert "\n\nSources\n1. " in copied
    assert f"{DEMO_SI}/regulation/2" in copied  # the provision's own page


def test_official_text_links_go_to_the_provision(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    answer = ask(page, RENEWAL)
    source = answer.locator(".sources li").first
    assert "regulation 2(2)" in source.inner_text()
    assert source.locator("a.official").get_attribute("href") == f"{DEMO_SI}/regulation/2"
    source.locator(".source").click()
    page.wait_for_selector("dialog#passage[data-loaded]")
    assert page.locator("#passage-link").get_attribute("href") == f"{DEMO_SI}/regulation/2"


def test_a_rewritten_question_is_shown_only_when_it_differs(page: Any, base_url: str) -> None:  # noqa: F811
    page.goto(base_url)
    rewritten = "What is the UK equivalent of the hospital exemption?"
    serve_answer(page, "Kept for 30 years [1].", SERVER_CITATIONS[:1], question_used=rewritten)
    ask(page, "And in the UK?")
    note = page.locator(".question-used")
    assert note.count() == 1 and note.inner_text() == f"Searched for: “{rewritten}”"
    assert on_top(page, note)
    page.unroute("**/v1/chat/completions")
    serve_answer(page, "Kept for 30 years [1].", SERVER_CITATIONS[:1], question_used=TRACEABILITY)
    ask(page, TRACEABILITY)
    assert page.locator(".question-used").count() == 1  # same as typed: not repeated
