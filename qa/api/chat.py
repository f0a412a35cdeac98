"""OpenAI-compatible chat: `/v1/models` and `/v1/chat/completions`, streaming or not.

Any chat front end that speaks the chat-completions protocol shows the answer with a
markdown "Sources" list; clients that know about it also get the structured `citations`.
"""

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.answer import MARKER, Answer, Citation
from qa.api.deps import QADep
from qa.api.schemas import CitationOut, FiltersIn, citation_out
from qa.generate import AnswerStream
from qa.readers.document import UPLOADED, safe_url

MODEL_ID = "atmp-qa"
MAX_QUESTION_CHARS = 2000
PIECE = re.compile(r"\S+\s*|\s+")  # streamed a word at a time, markers stay whole
FALLBACK_NOTE = "\n\n*The generated answer is not shown; the documents say:*\n\n"

router = APIRouter(tags=["openai"])


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are read."""

    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """A message of the conversation."""

    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text, parts joined."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatRequest(BaseModel):
    """A chat-completions request; the last user message is the question."""

    model_config = ConfigDict(extra="ignore")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    top_k: int = Field(5, ge=1, le=20, description="Extension: passages to consider.")
    filters: FiltersIn | None = Field(None, description="Extension: jurisdictions, documents.")
    include_sources: bool = Field(
        True, description="Extension: append the markdown Sources list to the content."
    )

    @field_validator("messages")
    @classmethod
    def _has_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        question = last_user_text(messages)
        if not question:
            raise ValueError("needs a user message with some text: it is the question")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the last user message is over {MAX_QUESTION_CHARS} characters")
        return messages

    @property
    def question(self) -> str:
        """The text of the last user message."""
        return last_user_text(self.messages)


class AssistantMessage(BaseModel):
    """The answer as a chat message."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    """Token counts (nothing is generated, so zeros)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    """A `chat.completion`, plus the structured citations."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage = Usage()
    citations: list[CitationOut]
    related: list[CitationOut]
    abstained: bool
    caveats: list[str] = Field(default_factory=list)
    generator: str | None = Field(None, exclude_if=lambda v: v is None)
    generator_error: str | None = Field(None, exclude_if=lambda v: v is None)


class Delta(BaseModel):
    """What a streamed chunk adds to the message."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one streamed completion."""

    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """A `chat.completion.chunk` event; the last one carries the citations."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[CitationOut] | None = None
    related: list[CitationOut] | None = None
    abstained: bool | None = None
    caveats: list[str] | None = None
    generator: str | None = None
    generator_error: str | None = None
    replacement: str | None = Field(
        None,
        description="Last chunk only, when the streamed content is not the answer (the model's "
        "answer failed its citation check or broke off): the whole content to show instead.",
    )


FINAL_FIELDS = (
    "citations",
    "related",
    "abstained",
    "caveats",
    "generator",
    "generator_error",
    "replacement",
)


class ModelOut(BaseModel):
    """A model a chat front end can pick."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "atmp-qa"


class ModelList(BaseModel):
    """The models on offer: one."""

    object: Literal["list"] = "list"
    data: list[ModelOut]


def last_user_text(messages: list[ChatMessage]) -> str:
    """The trimmed text of the last user message, or "" when there is none."""
    return next((m.text().strip() for m in reversed(messages) if m.role == "user"), "")


def source_label(citation: Citation) -> str:
    """ "Regulation (EC) No 1394/2007, Article 15(4), p. 12", linked when there is a URL."""
    label = f"{citation.short_title or citation.title}, {citation.section}"
    label += f", p. {citation.page}" if citation.page else ""
    label = label.replace("[", "(").replace("]", ")")
    if citation.origin == UPLOADED:
        label += " (uploaded document, not an official text)"
    url = safe_url(citation.url)
    return f"[{label}]({url})" if url else label


def sources_markdown(answer: Answer) -> str:
    """The short "Sources" list under an answer: the passages its markers cite."""
    cited = {int(n) for n in MARKER.findall(answer.text)}
    if answer.abstained:
        heading, items = "Related passages", answer.related[:3]
    else:
        heading = "Sources"
        items = tuple(c for c in answer.citations if c.n in cited) or answer.citations
    if not items:
        return ""
    lines = [f"{c.n}. {source_label(c)}" for c in items]
    see_also = [c for c in answer.citations if c.n not in cited and c not in items][:3]
    more = "\n".join(f"{c.n}. {source_label(c)}" for c in see_also)
    notes = "".join(f"\n\n_Note: {caveat}._" for caveat in answer.caveats)
    also = f"\n\n**See also**\n\n{more}" if more else ""
    return f"\n\n**{heading}**\n\n" + "\n".join(lines) + also + notes


def _citations(answer: Answer) -> tuple[list[CitationOut], list[CitationOut]]:
    return [citation_out(c) for c in answer.citations], [citation_out(c) for c in answer.related]


def message_content(answer: Answer, *, include_sources: bool) -> str:
    """The answer as chat content, with the Sources list unless asked not to."""
    return answer.text + (sources_markdown(answer) if include_sources else "")


def completion(answer: Answer, content: str) -> ChatCompletion:
    """The non-streaming response."""
    citations, related = _citations(answer)
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=MODEL_ID,
        choices=[Choice(message=AssistantMessage(content=content))],
        citations=citations,
        related=related,
        abstained=answer.abstained,
        caveats=list(answer.caveats),
        generator=answer.notes.get("generator"),
        generator_error=answer.notes.get("generator_error"),
    )


def stream_events(stream: AnswerStream, *, include_sources: bool) -> Iterator[str]:
    """Server-sent events: role, the content as it comes, citations, then [DONE].

    A generated answer is relayed piece by piece as the model writes it (markers already
    checked); the extractive answer is sent a word at a time. If the model's answer fails
    (no valid citation, an error mid-way) after some of it was sent, a note and the extractive
    answer follow, and the last chunk's `replacement` holds the content to show instead.
    """
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(choice: ChunkChoice, **final: object) -> str:
        chunk = ChatCompletionChunk(
            id=ident, created=created, model=MODEL_ID, choices=[choice], **final
        )
        absent = {k for k in FINAL_FIELDS if getattr(chunk, k) is None}
        data = chunk.model_dump(mode="json", exclude=absent)
        data["choices"][0]["delta"] = choice.delta.model_dump(exclude_none=True)
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def pieces(text: str) -> Iterator[str]:
        for piece in PIECE.findall(text):
            sent.append(piece)
            yield event(ChunkChoice(delta=Delta(content=piece)))

    sent: list[str] = []
    yield event(
        ChunkChoice(delta=Delta(role="assistant", content="")), abstained=stream.draft.abstained
    )
    for piece in stream:
        sent.append(piece)
        yield event(ChunkChoice(delta=Delta(content=piece)))
    answer = stream.answer
    content = message_content(answer, include_sources=include_sources)
    if not sent:
        yield from pieces(content)
    elif "".join(sent) == answer.text:
        yield from pieces(content[len(answer.text) :])
    else:
        yield from pieces(FALLBACK_NOTE + content)
    citations, related = _citations(answer)
    yield event(
        ChunkChoice(delta=Delta(), finish_reason="stop"),
        citations=citations,
        related=related,
        abstained=answer.abstained,
        caveats=list(answer.caveats),
        generator=answer.notes.get("generator"),
        generator_error=answer.notes.get("generator_error"),
        replacement=content if "".join(sent) != content else None,
    )
    yield "data: [DONE]\n\n"


@router.get("/v1/models")
def list_models() -> ModelList:
    """The one model: `atmp-qa`."""
    return ModelList(data=[ModelOut(id=MODEL_ID)])


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses={200: {"model": ChatCompletion, "content": {"text/event-stream": {}}}},
)
def chat_completions(body: ChatRequest, qa: QADep) -> ChatCompletion | StreamingResponse:
    """Answer the last user message; `stream: true` sends server-sent events."""
    filters = body.filters.to_filters() if body.filters else None
    if not body.stream:
        answer = qa.ask(body.question, top_k=body.top_k, filters=filters)
        return completion(answer, message_content(answer, include_sources=body.include_sources))
    return StreamingResponse(
        stream_events(
            qa.ask_stream(body.question, top_k=body.top_k, filters=filters),
            include_sources=body.include_sources,
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
