"""OpenAI-compatible chat: `/v1/models` and `/v1/chat/completions`, streaming or not.

Any chat front end that speaks the chat-completions protocol shows the answer with a
markdown "Sources" list; clients that know about it also get the structured `citations`.
"""

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.answer import MARKER, Answer, Citation
from qa.api.deps import QADep
from qa.api.errors import NotFoundError
from qa.api.schemas import CitationOut, FiltersIn, citation_out
from qa.conversation import model_standalone_question, standalone_question
from qa.errors import QAError
from qa.frontend_tasks import answer_task, recognise_task
from qa.generate import AnswerStream
from qa.pipeline import QA
from qa.readers.document import UPLOADED, safe_url

MODEL_ID = "atmp-qa"
MAX_QUESTION_CHARS = 2000
PIECE = re.compile(r"\S+\s*|\s+")  # streamed a word at a time, markers stay whole
FALLBACK_NOTE = "\n\n*The generated answer is not shown; the documents say:*\n\n"

router = APIRouter(tags=["openai"])


class ChatRequestError(QAError):
    """A chat request this server cannot honour (`n > 1`, tools, another model): a 400 whose
    OpenAI error envelope names the parameter."""

    def __init__(self, message: str, *, param: str, code: str = "unsupported_parameter") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class ModelNotFoundError(NotFoundError):
    """`GET /v1/models/{id}` for a model other than `atmp-qa`."""

    param = "model"
    code = "model_not_found"


class StreamOptions(BaseModel):
    """OpenAI's `stream_options`: `include_usage` adds a last chunk with the token counts."""

    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


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
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, description="Only 1: there is one answer.")
    tools: list[Any] | None = Field(None, description="Not supported: send none.")
    functions: list[Any] | None = Field(None, description="Not supported: send none.")
    tool_choice: Any = Field(None, description='Not supported beyond "none" and "auto".')
    function_call: Any = Field(None, description="Not supported: send none.")
    response_format: dict[str, Any] | None = Field(None, description='Only {"type": "text"}.')

    @field_validator("messages")
    @classmethod
    def _has_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not last_user_text(messages):
            raise ValueError("needs a user message with some text: it is the question")
        return messages

    def check_supported(self) -> None:
        """Refuse, naming the parameter, what this server would otherwise silently ignore."""
        if self.model != MODEL_ID:
            raise ChatRequestError(
                f"The model {self.model!r} does not exist here; use {MODEL_ID!r} "
                "(GET /v1/models lists it).",
                param="model",
                code="model_not_found",
            )
        if self.n is not None and self.n != 1:
            raise ChatRequestError(
                f"n is {self.n}, but this server gives one answer per request; send n: 1 "
                "or leave it out.",
                param="n",
            )
        for name in ("tools", "functions"):
            if getattr(self, name):
                raise ChatRequestError(
                    f"{name} are not supported: ATMP-QA answers from its documents and calls "
                    f"no tools; leave {name} out.",
                    param=name,
                )
        if self.function_call not in (None, "none", "auto"):
            raise ChatRequestError(
                "function_call is not supported; leave it out.", param="function_call"
            )
        if self.tool_choice not in (None, "none", "auto"):
            raise ChatRequestError(
                "tool_choice is not supported: there are no tools; leave it out.",
                param="tool_choice",
            )
        kind = (self.response_format or {}).get("type", "text")
        if kind != "text":
            raise ChatRequestError(
                f"response_format {kind!r} is not supported: answers are text with citations; "
                'send {"type": "text"} or leave it out.',
                param="response_format",
            )

    @property
    def question(self) -> str:
        """The text of the last user message."""
        return last_user_text(self.messages)

    @property
    def user_turns(self) -> list[str]:
        """The text of every user message, in order."""
        return [m.text() for m in self.messages if m.role == "user"]

    @property
    def include_usage(self) -> bool:
        """Whether a stream ends with a usage chunk."""
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


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
    question_used: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="The question answered: the last user message, made standalone from the "
        "conversation when it was a follow-up. Absent for a front end's background task.",
    )


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
    question_used: str | None = Field(
        None, description="Last chunk only: the question answered (see the completion's)."
    )
    usage: Usage | None = Field(
        None,
        description="With stream_options.include_usage: null on every chunk but an extra last "
        "one, whose choices are empty.",
    )


FINAL_FIELDS = (
    "question_used",
    "usage",
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


def completion(answer: Answer, content: str, *, question_used: str | None = None) -> ChatCompletion:
    """The non-streaming response."""
    citations, related = _citations(answer)
    return ChatCompletion(
        question_used=question_used,
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


def stream_events(
    stream: AnswerStream,
    *,
    include_sources: bool,
    question_used: str | None = None,
    include_usage: bool = False,
) -> Iterator[str]:
    """Server-sent events: role, the content as it comes, citations, then [DONE].

    A generated answer is relayed piece by piece as the model writes it (markers already
    checked); the extractive answer is sent a word at a time. If the model's answer fails
    (no valid citation, an error mid-way) after some of it was sent, a note and the extractive
    answer follow, and the last chunk's `replacement` holds the content to show instead.
    """
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def event(choice: ChunkChoice | None, **final: Any) -> str:
        chunk = ChatCompletionChunk(
            id=ident, created=created, model=MODEL_ID, choices=[choice] if choice else [], **final
        )
        absent = {k for k in FINAL_FIELDS if getattr(chunk, k) is None}
        if include_usage:
            absent.discard("usage")  # OpenAI sends `usage: null` until the last chunk
        data = chunk.model_dump(mode="json", exclude=absent)
        if choice:
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
        question_used=question_used,
    )
    if include_usage:
        yield event(None, usage=Usage())
    yield "data: [DONE]\n\n"


def text_events(content: str, *, include_usage: bool = False) -> Iterator[str]:
    """A stream of a plain reply (a front end's background task): role, content, stop."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    choices = [
        ChunkChoice(delta=Delta(role="assistant", content="")),
        ChunkChoice(delta=Delta(content=content)),
        ChunkChoice(delta=Delta(), finish_reason="stop"),
    ]
    exclude = set(FINAL_FIELDS) - ({"usage"} if include_usage else set())
    for choice in choices:
        chunk = ChatCompletionChunk(id=ident, created=created, model=MODEL_ID, choices=[choice])
        data = chunk.model_dump(mode="json", exclude=exclude)
        data["choices"][0]["delta"] = choice.delta.model_dump(exclude_none=True)
        yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
    if include_usage:
        final = ChatCompletionChunk(
            id=ident, created=created, model=MODEL_ID, choices=[], usage=Usage()
        )
        data = final.model_dump(mode="json", exclude=exclude)
        yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"


@router.get("/v1/models")
def list_models() -> ModelList:
    """The one model: `atmp-qa`."""
    return ModelList(data=[ModelOut(id=MODEL_ID)])


@router.get("/v1/models/{model_id}")
def retrieve_model(model_id: str) -> ModelOut:
    """`atmp-qa`; any other id is a 404 `model_not_found`."""
    if model_id != MODEL_ID:
        raise ModelNotFoundError(f"The model {model_id!r} does not exist here; use {MODEL_ID!r}.")
    return ModelOut(id=MODEL_ID)


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def resolve_question(body: ChatRequest, qa: QA) -> str:
    """The standalone question the conversation asks, within the question-length limit."""
    if qa.settings.follow_up_rewriter == "llm" and qa.chat_model is not None:
        question = model_standalone_question(
            body.user_turns, qa.analyse, qa.chat_model, limit=MAX_QUESTION_CHARS
        )
    else:
        question = standalone_question(body.user_turns, qa.analyse)
    if len(question) > MAX_QUESTION_CHARS:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "messages"),
                    "msg": f"the question (the last user message, made standalone) is over "
                    f"{MAX_QUESTION_CHARS} characters",
                    "type": "value_error",
                }
            ]
        )
    return question


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses={200: {"model": ChatCompletion, "content": {"text/event-stream": {}}}},
)
def chat_completions(body: ChatRequest, qa: QADep) -> ChatCompletion | StreamingResponse:
    """Answer the conversation's question; `stream: true` sends server-sent events.

    A follow-up ("and in the UK?") is answered as the standalone question it stands for
    (`question_used`); a chat front end's background prompt (a title, tags, follow-up
    suggestions) gets a short reply in the format it asks for.
    """
    body.check_supported()
    task = recognise_task(body.question)
    if task is not None:
        reply = answer_task(task, qa)
        if body.stream:
            return StreamingResponse(
                text_events(reply, include_usage=body.include_usage),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=MODEL_ID,
            choices=[Choice(message=AssistantMessage(content=reply))],
            citations=[],
            related=[],
            abstained=False,
        )
    question = resolve_question(body, qa)
    filters = body.filters.to_filters() if body.filters else None
    if not body.stream:
        answer = qa.ask(question, top_k=body.top_k, filters=filters)
        content = message_content(answer, include_sources=body.include_sources)
        return completion(answer, content, question_used=question)
    return StreamingResponse(
        stream_events(
            qa.ask_stream(question, top_k=body.top_k, filters=filters),
            include_sources=body.include_sources,
            question_used=question,
            include_usage=body.include_usage,
        ),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
