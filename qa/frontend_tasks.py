"""Chat front ends' background prompts: a title, tags, follow-up suggestions, search queries,
autocompletion. Open WebUI and LibreChat send these to the chat model with the conversation
pasted in; answering them as legal questions gives refusals ("emoji", "JSON" are unknown
words) and chats without titles. Each is recognised here and answered cheaply, in the format
it asks for, from the conversation's questions and the passages they retrieve.
"""

import json
import re
from dataclasses import dataclass
from typing import Literal, Protocol

from qa.conversation import standalone_question, topic_of
from qa.retrieval.query import Query
from qa.retrieval.search import Passage

TaskKind = Literal["title", "tags", "follow_ups", "queries", "autocomplete", "plain_title"]

HISTORY = re.compile(r"<chat_history>(?P<history>.*?)</chat_history>", re.S | re.I)
TURN = re.compile(r"^(?P<role>USER|ASSISTANT|User|AI|Assistant|Human)\s*:\s?(?P<text>.*)$", re.M)
TEXT_TAG = re.compile(r"<text>(?P<text>.*?)</text>", re.S)
# Open WebUI's templates: "### Task:" with the chat history in tags, and the JSON key wanted
OPEN_WEBUI_KEYS: tuple[tuple[str, TaskKind], ...] = (
    ('"follow_ups"', "follow_ups"),
    ('"queries"', "queries"),
    ('"tags"', "tags"),
    ('"title"', "title"),
)
AUTOCOMPLETE = re.compile(r"autocompletion system|<type>.*</type>", re.S | re.I)
# LibreChat's title prompts ("… 5-word-or-less title for the conversation …", "Analyze this
# conversation and provide … a concise title …"): the title alone as plain text
LIBRECHAT_TITLE = re.compile(
    r"5-word-or-less title|\bconcise title\b.*\bconversation\b|\bconversation\b.*\bconcise title\b",
    re.S | re.I,
)
TITLE_WORDS = 7
ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.I)


@dataclass(frozen=True)
class Task:
    """A recognised background prompt: what it wants and the conversation it embeds."""

    kind: TaskKind
    user_turns: tuple[str, ...]
    text: str = ""  # autocompletion: the text typed so far


class Searcher(Protocol):
    """What answering a task needs of the service."""

    def analyse(self, question: str) -> Query: ...

    def search(self, query: str | Query, *, k: int | None = None) -> list[Passage]: ...


def recognise_task(prompt: str) -> Task | None:
    """The background task `prompt` asks for, or None for a real question."""
    history = HISTORY.search(prompt)
    if history and "### Task" in prompt:
        turns = _user_turns(history.group("history"))
        if AUTOCOMPLETE.search(prompt):
            typed = TEXT_TAG.search(prompt[history.end() :])
            return Task("autocomplete", turns, typed.group("text").strip() if typed else "")
        for key, kind in OPEN_WEBUI_KEYS:
            if key in prompt[: history.start()]:
                return Task(kind, turns)
        return None
    if LIBRECHAT_TITLE.search(prompt) and len(prompt) > 60:
        turns = _user_turns(prompt) or (prompt.strip().splitlines()[-1],)
        return Task("plain_title", turns)
    return None


def _user_turns(history: str) -> tuple[str, ...]:
    return tuple(
        m.group("text").strip()
        for m in TURN.finditer(history)
        if m.group("role").lower() in {"user", "human"} and m.group("text").strip()
    )


def title_for(question: str) -> str:
    """A short title from a question: "Hospital exemption under the EU ATMP Regulation"."""
    _, topic = topic_of(question)
    words = ARTICLE.sub("", topic.strip()).split()[:TITLE_WORDS]
    title = " ".join(words).strip(" ,;:.") or "ATMP law question"
    return title[0].upper() + title[1:]


def answer_task(task: Task, qa: Searcher) -> str:
    """The reply to a background task, in the format it asks for; never a refusal."""
    turns = task.user_turns
    first = turns[0] if turns else ""
    if task.kind == "title":
        return json.dumps({"title": title_for(first)}, ensure_ascii=False)
    if task.kind == "plain_title":
        return title_for(first)
    if task.kind == "autocomplete":
        return json.dumps({"text": ""})
    question = standalone_question(turns, qa.analyse) if turns else ""
    if task.kind == "queries":
        return json.dumps({"queries": [question] if question else []}, ensure_ascii=False)
    passages = qa.search(question, k=5) if question else []
    if task.kind == "tags":
        return json.dumps({"tags": tags_for(passages)}, ensure_ascii=False)
    return json.dumps({"follow_ups": follow_ups_for(passages, asked=turns)}, ensure_ascii=False)


def tags_for(passages: list[Passage]) -> list[str]:
    """The jurisdictions and short titles of the acts the passages come from."""
    tags: list[str] = []
    for passage in passages:
        chunk = passage.chunk
        for tag in (chunk.jurisdiction, chunk.short_title):
            if tag and tag not in tags:
                tags.append(tag)
    return tags[:5] or ["General"]


def follow_ups_for(passages: list[Passage], *, asked: tuple[str, ...]) -> list[str]:
    """Questions about the retrieved provisions, from their headings."""
    seen = {q.strip().lower() for q in asked}
    questions: list[str] = []
    for passage in passages:
        chunk = passage.chunk
        heading = chunk.heading.strip().rstrip(".")
        if not heading:
            continue
        question = f"What does {chunk.short_title}, {chunk.section} say about {heading.lower()}?"
        if question.lower() not in seen and question not in questions:
            questions.append(question)
    return questions[:3]
