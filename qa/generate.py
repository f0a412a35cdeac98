"""Generated answers through any OpenAI-compatible chat API, with their citations checked.

The model sees the passages of the extractive answer numbered [1]..[k] and must cite them the
same way. Its markers are rewritten as the text arrives: a marker naming no passage is dropped,
the others are renumbered 1..m in order of first use, so streamed text is already checked text.
An answer left citing nothing, or any failure of the model, gives the extractive answer instead.
"""

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx

from qa.answer import MARKER, Answer, Citation, check_citations
from qa.errors import QAError

SYSTEM_PROMPT = (
    "You answer questions about EU and UK law on advanced therapy medicinal products using only "
    "the numbered passages you are given, never outside knowledge."
)
PASSAGE_TEMPLATE = "[{n}] {section} — {short_title}\n{text}"
# No worked examples: small models copy them into their answers, facts and all.
CITATION_RULES = (
    "Answer in at most four short sentences. End each sentence with the number of the passage "
    "it comes from in square brackets, like [2] or [1][3]. Cite only the passages above, by number."
)
CANNOT_ANSWER_PHRASE = "I cannot answer this from the passages."
USER_PROMPT = (
    "Passages:\n\n{passages}\n\nQuestion: {question}\n\n{rules}\n"
    "If the passages do not answer the question, reply only: {cannot_answer}"
)
TEMPERATURE = 0.0  # the same passages should give the same answer
# `[3]`, `[1, 2]`, `[2-4]`, `[Passage 2]`; longer bracketed text is prose, not a citation.
MARKER_GROUP = re.compile(r"\[\s*(?:passages?\s*)?\d+(?:\s*[-–,;]\s*\d+)*\s*\]", re.I)
MARKER_PREFIX = re.compile(r"\[[\s\d,;–a-z-]*", re.I)
MAX_MARKER_CHARS = 48
MAX_RANGE = 20
NO_CITATION = (
    "The model's answer cited none of the passages (or said it cannot answer), so the "
    "extractive answer is shown."
)

Message = dict[str, str]


class GenerationError(QAError):
    """The model could not be reached or sent no usable answer."""


def passage_window(citation: Citation, limit: int) -> str:
    """The passage as the model reads it: whitespace collapsed, cut to `limit` around its quote."""
    text = " ".join(citation.text.split())
    if len(text) <= limit:
        return text
    anchor = text.find(" ".join(citation.quote.split(" … ")[0].split())[:80])
    start = max(0, min(anchor - limit // 5, len(text) - limit)) if anchor > 0 else 0
    end = start + limit
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def build_messages(
    question: str, citations: Sequence[Citation], *, passage_chars: int
) -> list[Message]:
    """The chat messages asking for a cited answer from the numbered passages."""
    passages = "\n\n".join(
        PASSAGE_TEMPLATE.format(
            n=c.n,
            section=c.section,
            short_title=c.short_title or c.title,
            text=passage_window(c, passage_chars),
        )
        for c in citations
    )
    user = USER_PROMPT.format(
        passages=passages,
        question=question,
        rules=CITATION_RULES,
        cannot_answer=CANNOT_ANSWER_PHRASE,
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


class MarkerFilter:
    """Rewrites streamed text: valid markers renumbered by first use, the others dropped.

    The output depends only on the text fed, never on how it was split into pieces, so the
    streamed pieces join to exactly the checked answer. Leading and trailing space is dropped.
    """

    def __init__(self, passages: int) -> None:
        self.passages = passages
        self.cited: list[int] = []  # passage numbers in order of first citation
        self._pending = ""  # text that may be the start of a marker
        self._space = ""  # whitespace shown only if more text follows
        self._started = False

    def feed(self, text: str) -> str:
        """The checked text that `text` completes (possibly empty: a marker may be unfinished)."""
        self._pending += text
        return self._drain(final=False)

    def close(self) -> str:
        """The rest of the checked text, at the end of the answer."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> str:
        out: list[str] = []
        while self._pending:
            at = self._pending.find("[")
            if at < 0:
                out.append(self._text(self._pending))
                self._pending = ""
                break
            out.append(self._text(self._pending[:at]))
            self._pending = self._pending[at:]
            group = MARKER_GROUP.match(self._pending)
            if group and group.end() <= MAX_MARKER_CHARS:
                out.append(self._marker(group.group()))
                self._pending = self._pending[group.end() :]
                continue
            unfinished = MARKER_PREFIX.fullmatch(self._pending) is not None
            if unfinished and not final and len(self._pending) < MAX_MARKER_CHARS:
                break  # wait for the rest of the marker
            out.append(self._text("["))
            self._pending = self._pending[1:]
        return "".join(out)

    def _text(self, text: str) -> str:
        body = text.rstrip()
        if not body:
            self._space += text
            return ""
        shown = self._space + body if self._started else body.lstrip()
        self._space, self._started = text[len(body) :], True
        return shown

    def _marker(self, group: str) -> str:
        numbers: list[int] = []
        for part in re.split(r"[,;]", group[1:-1]):
            ends = [int(d) for d in re.findall(r"\d+", part)]
            if len(ends) == 2 and 0 < ends[1] - ends[0] < MAX_RANGE:
                ends = list(range(ends[0], ends[1] + 1))  # "[2-4]"
            numbers.extend(ends)
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= self.passages]
        if not valid:
            self._space = ""  # "claim [9]." reads "claim."
            return ""
        for n in valid:
            if n not in self.cited:
                self.cited.append(n)
        shown = (self._space if self._started else "") + "".join(
            f"[{self.cited.index(n) + 1}]" for n in valid
        )
        self._space, self._started = "", True
        return shown


def fallback(draft: Answer, reason: str) -> Answer:
    """The extractive answer, noting why the model's answer is not shown."""
    return replace(
        draft, notes={**draft.notes, "generator": "extractive", "generator_error": reason}
    )


def finish(draft: Answer, text: str, cited: Sequence[int], *, generator: str) -> Answer:
    """The checked generated answer citing exactly `cited` (renumbered 1..m), else the draft."""
    if not cited or not MARKER.sub("", text).strip():
        return fallback(draft, NO_CITATION)
    by_n = {c.n: c for c in draft.citations}
    citations = tuple(replace(by_n[n], n=i + 1) for i, n in enumerate(cited))
    answer = replace(
        draft, text=text, citations=citations, notes={**draft.notes, "generator": generator}
    )
    check_citations(answer)
    return answer


class ChatModel:
    """An OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp, a cloud API)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 512,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @property
    def name(self) -> str:
        """How answers name their generator: `llm:<model>`."""
        return f"llm:{self.model}"

    def _payload(self, messages: Sequence[Message], *, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": self.max_tokens,
            "temperature": TEMPERATURE,
            "stream": stream,
        }

    def complete(self, messages: Sequence[Message]) -> str:
        """The whole answer; `GenerationError` when there is none."""
        try:
            with httpx.Client(timeout=self.timeout_s, headers=self._headers) as client:
                response = client.post(self.url, json=self._payload(messages, stream=False))
                self._check(response)
                return _message_content(_json(response.text, self.url))
        except httpx.HTTPError as ex:
            raise self._transport_error(ex) from ex

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The answer's text pieces as the server sends them; `GenerationError` on failure."""
        deadline = time.monotonic() + self.timeout_s
        payload = self._payload(messages, stream=True)
        try:
            with (
                httpx.Client(timeout=self.timeout_s, headers=self._headers) as client,
                client.stream("POST", self.url, json=payload) as response,
            ):
                self._check(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignores `stream` sends one whole completion.
                    yield _message_content(_json(response.read().decode(), self.url))
                    return
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise self._timeout()
                    data = line.removeprefix("data:").strip() if line.startswith("data:") else ""
                    if data == "[DONE]":
                        return
                    if data and (piece := _delta_content(_json(data, self.url))):
                        yield piece
        except httpx.HTTPError as ex:
            raise self._transport_error(ex) from ex

    def _check(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        body = " ".join(response.read().decode(errors="replace").split())
        try:
            detail = str(json.loads(body)["error"]["message"])
        except (ValueError, KeyError, TypeError):
            detail = body
        detail = f": {detail[:200]}" if detail else ""
        raise GenerationError(
            f"The model server at {self.url} answered HTTP {response.status_code}{detail}."
        )

    def _timeout(self) -> GenerationError:
        return GenerationError(
            f"The model at {self.url} did not answer within {self.timeout_s:g} s "
            "(raise QA_LLM_TIMEOUT_S or use a faster model)."
        )

    def _transport_error(self, ex: httpx.HTTPError) -> GenerationError:
        if isinstance(ex, httpx.TimeoutException):
            return self._timeout()
        return GenerationError(
            f"The model server at {self.url} could not be reached ({type(ex).__name__}); "
            "check QA_LLM_BASE_URL."
        )


def _json(text: str, url: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as ex:
        raise GenerationError(f"The model server at {url} sent a reply that is not JSON.") from ex


def _message_content(reply: Any) -> str:
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise GenerationError(_malformed(reply, "choices[0].message.content"))
    return content


def _delta_content(chunk: Any) -> str:
    if not isinstance(chunk, dict) or not isinstance(chunk.get("choices", []), list):
        raise GenerationError(_malformed(chunk, "choices[0].delta"))
    if not chunk.get("choices"):
        if "error" in chunk:
            raise GenerationError(_malformed(chunk, "choices[0].delta"))
        return ""  # e.g. the usage chunk
    delta = chunk["choices"][0].get("delta") if isinstance(chunk["choices"][0], dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    if content is not None and not isinstance(content, str):
        raise GenerationError(_malformed(chunk, "choices[0].delta.content"))
    return content or ""


def _malformed(reply: Any, wanted: str) -> str:
    error = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return f"The model server reported an error: {' '.join(str(error['message']).split())}."
    return f"The model server's reply has no {wanted}, so it is not an OpenAI chat completion."


def generate_answer(model: ChatModel, draft: Answer, *, passage_chars: int) -> Answer:
    """The model's answer from the draft's passages, checked; the draft if that fails."""
    messages = build_messages(draft.question, draft.citations, passage_chars=passage_chars)
    try:
        raw = model.complete(messages)
    except GenerationError as ex:
        return fallback(draft, str(ex))
    markers = MarkerFilter(len(draft.citations))
    text = markers.feed(raw) + markers.close()
    return finish(draft, text, markers.cited, generator=model.name)


class AnswerStream:
    """An answer as it is generated: iterate (once) for checked text pieces, then read `answer`.

    Without a model (none configured, or the question was abstained on) iteration yields
    nothing and `answer` is the draft.
    """

    def __init__(
        self,
        draft: Answer,
        model: ChatModel | None = None,
        *,
        passage_chars: int = 1000,
        started: float | None = None,
    ) -> None:
        self.draft = draft
        self.answer = draft
        self.model = None if draft.abstained else model
        self._passage_chars = passage_chars
        self._started = time.perf_counter() if started is None else started

    @property
    def generating(self) -> bool:
        """Whether iterating calls the model."""
        return self.model is not None

    def __iter__(self) -> Iterator[str]:
        model, draft = self.model, self.draft
        if model is None:
            return
        messages = build_messages(
            draft.question, draft.citations, passage_chars=self._passage_chars
        )
        markers = MarkerFilter(len(draft.citations))
        shown: list[str] = []
        try:
            for token in model.stream(messages):
                if piece := markers.feed(token):
                    shown.append(piece)
                    yield piece
        except GenerationError as ex:
            self.answer = self._timed(fallback(draft, str(ex)))
            return
        if tail := markers.close():
            shown.append(tail)
            yield tail
        self.answer = self._timed(
            finish(draft, "".join(shown), markers.cited, generator=model.name)
        )

    def _timed(self, answer: Answer) -> Answer:
        return replace(answer, took_ms=round((time.perf_counter() - self._started) * 1000, 2))
