"""Extractive answers: the sentences of the best passages that answer the question, each
followed by a `[n]` marker pointing at a returned citation, or an honest abstention.

Nothing is generated: every quote is a verbatim span of its passage, and `check_citations`
enforces that every marker names a returned citation.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.lexical import tokenize
from qa.retrieve import Passage

CANNOT_ANSWER = (
    "The indexed documents do not answer this question. The closest passages are listed "
    "under related; they may help you rephrase it or show where the topic is covered."
)
MARKER = re.compile(r"\[(\d+)\]")
UNIT_BREAK = re.compile(r"(?<=[.;:!?])\s+(?=[A-Z(‘“\"0-9—-])|\n")
LIST_PREFIX = re.compile(r"^\s*-\s+")
LABEL = re.compile(r"-?\s*\(?\w{1,4}[.)]")  # "4." or "(a)" alone: it belongs to what follows
MAX_UNIT_CHARS = 400
EMBED_CHARS = 200

EmbedFn = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Citation:
    """A passage behind the answer, with the verbatim sentence(s) it contributed."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    short_title: str
    section: str
    page: int | None
    url: str | None
    quote: str
    text: str
    score: float


@dataclass(frozen=True)
class Answer:
    """An answer with `[n]` markers, its citations (1 = best passage) or an abstention."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()
    took_ms: float = 0.0
    evidence: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)


def unit_texts(answer_text: str) -> list[str]:
    """The units of an answer as the user reads them: the text before each `[n]` marker."""
    return [u.strip() for u in re.split(r"\s*\[\d+\]", answer_text) if u.strip()]


def units(text: str) -> list[tuple[int, int]]:
    """Spans of answerable units in a passage: sentences, and runs of short list items."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in UNIT_BREAK.finditer(text + "\n"):
        end = m.start()
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = m.end()
    merged: list[tuple[int, int]] = []
    for previous, span in zip([None, *spans], spans, strict=False):
        label_only = previous is not None and LABEL.fullmatch(text[previous[0] : previous[1]])
        joinable = previous is not None and _short(text, previous) and _short(text, span)
        if label_only or (joinable and span[1] - merged[-1][0] <= MAX_UNIT_CHARS):
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return merged


def _short(text: str, span: tuple[int, int]) -> bool:
    """A short list item ("- —cutting,") or the short line introducing a list."""
    piece = text[span[0] : span[1]]
    return len(piece) < 80 and (piece[0] in "-—–(" or piece.endswith(":"))


def clean_quote(quote: str) -> str:
    """The quote as answer prose: list dashes dropped, whitespace collapsed."""
    lines = [LIST_PREFIX.sub("", line).strip() for line in quote.splitlines()]
    return " ".join(" ".join(line for line in lines if line).split())


def _overlap(question_terms: set[str], text: str, idf: Callable[[str], float]) -> float:
    found = question_terms & set(tokenize(text))
    total = sum(idf(t) for t in question_terms) or 1.0
    return sum(idf(t) for t in found) / total


def citation_for(n: int, passage: Passage, quote: str) -> Citation:
    """The public form of a cited passage, pinpointed to the piece the quote comes from."""
    c = passage.chunk
    first = quote.split(" … ")[0]
    quoted = next((p for p in passage.pieces if first and first in p.text), None)
    return Citation(
        n=n,
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        title=c.title,
        short_title=c.short_title,
        section=quoted.section if quoted else passage.section,
        page=min((p.page for p in passage.pieces if p.page is not None), default=None),
        url=c.url,
        quote=quote,
        text=passage.text,
        score=round(passage.score, 4),
    )


def abstain(
    question: str, passages: Sequence[Passage], evidence: float, *, unknown: Sequence[str] = ()
) -> Answer:
    """The fixed "not in these documents" answer, with the closest passages as related."""
    related = tuple(citation_for(i + 1, p, "") for i, p in enumerate(passages))
    text = CANNOT_ANSWER
    if unknown:
        names = ", ".join(f"“{u}”" for u in unknown)
        text = f"The indexed documents never mention {names}. " + CANNOT_ANSWER.split(". ", 1)[1]
    return Answer(question, text, True, (), related, evidence=evidence)


def evidence_strength(
    question: str, passages: Sequence[Passage], idf: Callable[[str], float]
) -> float:
    """How well the best passage supports an answer: its cosine similarity to the question
    plus the (IDF-weighted) share of the question's words it contains."""
    if not passages:
        return 0.0
    top = passages[0]
    return top.dense + 0.5 * _overlap(
        set(tokenize(question)), top.chunk.context + "\n" + top.text, idf
    )


def compose_answer(
    question: str,
    passages: Sequence[Passage],
    *,
    query_vector: np.ndarray,
    embed: EmbedFn,
    idf: Callable[[str], float],
    max_sentences: int = 3,
    answer_passages: int = 3,
    scored_units: int = 4,
) -> Answer:
    """Pick the best sentences of the top passages and cite every passage (1 = best)."""
    terms = set(tokenize(question))
    candidates: list[tuple[float, int, tuple[int, int]]] = []  # (lexical, passage, span)
    best_lexical: dict[int, tuple[float, tuple[int, int]]] = {}
    for i, passage in enumerate(passages):
        text = passage.text
        for span in units(text):
            lexical = _overlap(terms, text[span[0] : span[1]], idf)
            if i not in best_lexical or lexical > best_lexical[i][0]:
                best_lexical[i] = (lexical, span)
            if i < answer_passages:
                candidates.append((lexical, i, span))
    # The model scores only the most promising units: embedding is the costly step.
    candidates.sort(key=lambda c: -c[0])
    shortlist = candidates[:scored_units]
    scores: list[tuple[float, int, tuple[int, int]]] = []
    if shortlist:
        # A unit's opening words carry its meaning; cutting them short keeps this fast.
        texts = [passages[i].text[a:b][:EMBED_CHARS] for _, i, (a, b) in shortlist]
        similarity = embed(texts) @ query_vector
        for (lexical, i, span), sim in zip(shortlist, similarity, strict=True):
            scores.append((float(sim) + 0.5 * lexical - 0.05 * i, i, span))
    scores.sort(key=lambda s: -s[0])
    chosen: list[tuple[int, tuple[int, int]]] = []
    for score, i, span in scores:
        if len(chosen) == max_sentences or (chosen and score < scores[0][0] - 0.15):
            break
        chosen.append((i, span))
    chosen.sort()
    quotes: dict[int, list[str]] = {}
    for i, (a, b) in chosen:
        quotes.setdefault(i, []).append(passages[i].text[a:b])
    citations = []
    for i, passage in enumerate(passages):
        if i in quotes:
            quote = " … ".join(quotes[i])
        elif i in best_lexical:
            a, b = best_lexical[i][1]
            quote = passage.text[a:b]
        else:
            quote = passage.text[:MAX_UNIT_CHARS]
        citations.append(citation_for(i + 1, passage, quote))
    text = " ".join(f"{clean_quote(passages[i].text[a:b])} [{i + 1}]" for i, (a, b) in chosen)
    answer = Answer(question, text, False, tuple(citations))
    check_citations(answer)
    return answer


def check_citations(answer: Answer) -> None:
    """Enforce the citation contract: markers ⊆ citations, quotes verbatim in their passages."""
    numbers = {c.n for c in answer.citations}
    for marker in MARKER.findall(answer.text):
        if int(marker) not in numbers:
            raise ValueError(f"answer cites [{marker}] but no citation {marker} was returned")
    for citation in answer.citations:
        for part in citation.quote.split(" … "):
            if part not in citation.text:
                raise ValueError(f"quote of citation {citation.n} is not verbatim in its passage")
    if answer.abstained and MARKER.search(answer.text):
        raise ValueError("an abstention must not carry citation markers")
