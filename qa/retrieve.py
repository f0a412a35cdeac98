"""Hybrid retrieval: dense (FAISS) and lexical (BM25) scores fused, then document structure.

Explicit references in the question ("Article 15 of Regulation 1394/2007", "the CTR",
"Annex I") raise the provisions and documents they name; filters restrict the candidates.
"""

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.chunking import Chunk
from qa.embed import Embedder
from qa.glossary import expand_query
from qa.index import Index
from qa.lexical import terms, tokenize
from qa.question import (
    ANSWER_TYPE_NAMES,
    DEFINITIONAL,
    HEADING_INTENTS,
    answer_types,
    defined_terms,
    finds_answer_type,
    heading_intents,
    names_term,
)
from qa.references import DocumentName, References, parse_references


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some jurisdictions and/or documents (empty = no restriction)."""

    jurisdictions: frozenset[str] = frozenset()
    doc_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Weights:
    """How dense, lexical and structural evidence combine into one score."""

    dense: float = 1.0
    lexical: float = 0.4
    fusion: str = "blend"  # "blend": weighted scores; "rrf": reciprocal rank fusion
    rrf_k: int = 60
    document_boost: float = 0.1
    provision_boost: float = 0.3
    jurisdiction_boost: float = 0.03
    title_boost: float = 0.15
    definition_boost: float = 0.2
    context_penalty: float = 0.1  # recitals, preambles, explanatory notes: context, not rules
    answer_type_boost: float = 0.1  # "how long" → passages stating a duration
    pieces_per_passage: int = 3  # retrieved chunks of one provision shown as one passage
    sibling_margin: float = 0.2  # a sibling joins when it scores within this of the best
    superseded_penalty: float = 0.1  # prefer law in force to a text it replaced
    heading_boost: float = 0.1  # "when does it apply" → "Entry into force and application"
    passage_chars: int = 2500  # neighbours of the same provision fill the passage up to this size


@dataclass(frozen=True)
class Passage:
    """A retrieved provision: its best-scoring chunk, plus other retrieved chunks of the same
    provision (so one citation shows Article 15(1) and 15(4) together, not two citations)."""

    rank: int
    score: float
    chunk: Chunk
    dense: float = 0.0
    lexical: float = 0.0
    siblings: tuple[Chunk, ...] = ()

    @property
    def pieces(self) -> list[Chunk]:
        """The chunks of this passage in document order."""
        return sorted((self.chunk, *self.siblings), key=lambda c: c.ordinal)

    @property
    def text(self) -> str:
        """The passage text; "[…]" marks text of the provision left out between pieces."""
        pieces = self.pieces
        parts = [pieces[0].text]
        for before, piece in zip(pieces, pieces[1:], strict=False):
            parts.append("\n" if piece.ordinal == before.ordinal + 1 else "\n[…]\n")
            parts.append(piece.text)
        return "".join(parts)

    @property
    def section(self) -> str:
        """How to cite it: the chunk's own section, or its provision when pieces are joined."""
        return self.chunk.provision if self.siblings else self.chunk.section

    def to_json(self) -> dict[str, object]:
        """The public form: rank, score, ids, citation fields and text."""
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(self.score, 4),
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "section": self.section,
            "page": c.page,
            "url": c.url,
            "text": self.text,
            "origin": c.origin,
        }


def document_names(index: Index) -> list[DocumentName]:
    """The names an index's documents can be referred to by."""
    return [
        DocumentName(r.doc_id, r.short_title, tuple(r.aliases))
        for r in index.manifest.documents.values()
    ]


CONTEXT_SECTIONS = re.compile(r"^(Recitals?|Preamble|Explanatory note|Signed)\b", re.I)


def is_context(chunk: Chunk) -> bool:
    """Recitals, preambles and notes explain the rules but are not themselves rules."""
    return bool(CONTEXT_SECTIONS.match(chunk.provision))


def _allowed(chunks: Sequence[Chunk], filters: Filters | None) -> np.ndarray:
    mask = np.ones(len(chunks), dtype=bool)
    if filters is None:
        return mask
    if filters.jurisdictions:
        mask &= np.array([c.jurisdiction in filters.jurisdictions for c in chunks], dtype=bool)
    if filters.doc_ids:
        mask &= np.array([c.doc_id in filters.doc_ids for c in chunks], dtype=bool)
    return mask


def _ranks(scores: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def structure_bonus(chunks: Sequence[Chunk], refs: References, weights: Weights) -> np.ndarray:
    """Extra score for chunks in the documents and provisions the question names."""
    bonus = np.zeros(len(chunks), dtype=np.float32)
    if not refs and not refs.jurisdictions:
        return bonus
    for i, chunk in enumerate(chunks):
        in_document = chunk.doc_id in refs.doc_ids
        if in_document:
            bonus[i] += weights.document_boost
        in_scope = in_document or not refs.doc_ids
        if refs.provisions and in_scope and refs.names_provision(chunk.provision):
            bonus[i] += weights.provision_boost
        if chunk.jurisdiction in refs.jurisdictions:
            bonus[i] += weights.jurisdiction_boost
    return bonus


class Retriever:
    """Hybrid retrieval over one index; per-index data is prepared once."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        self.documents = document_names(index)
        self.name_words = {w.lower() for d in self.documents for a in d.aliases for w in a.split()}
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        self.definitions = [defined_terms(c.text) for c in index.chunks]
        titles = {
            r.doc_id: set(tokenize(" ".join([r.title, r.short_title, *r.aliases])))
            for r in index.manifest.documents.values()
        }
        # Per-document title words, and which document each chunk belongs to.
        self.title_words = list(titles.values())
        positions = {doc_id: i for i, doc_id in enumerate(titles)}
        self.document_of = np.array([positions.get(c.doc_id, -1) for c in index.chunks])
        self.context = np.array([is_context(c) for c in index.chunks], dtype=np.float32)
        records = index.manifest.documents
        superseded = {d for d, r in records.items() if r.superseded_by}
        self.superseded = np.array([c.doc_id in superseded for c in index.chunks], np.float32)
        # A provision is a run of consecutive chunks with the same document and provision.
        self.members: list[list[int]] = []
        runs = []
        for i, c in enumerate(index.chunks):
            previous = index.chunks[i - 1] if i else None
            if previous is None or (previous.doc_id, previous.provision) != (c.doc_id, c.provision):
                self.members.append([])
            self.members[-1].append(i)
            runs.append(len(self.members) - 1)
        self.provision_of = np.array(runs, dtype=np.int64)
        # On equal scores an uploaded passage ranks after the others (see `search`).
        self.uploaded = np.array([c.origin == "uploaded" for c in index.chunks], dtype=np.int8)
        self.has_heading = {
            heading: np.array([bool(heading.search(c.context)) for c in index.chunks], np.float32)
            for _, heading in HEADING_INTENTS
        }
        self.has_answer_type = {
            name: np.array([finds_answer_type(name, c.text) for c in index.chunks], np.float32)
            for name in ANSWER_TYPE_NAMES
        }

    def search(
        self,
        question: str,
        *,
        k: int,
        filters: Filters | None = None,
        weights: Weights = Weights(),
    ) -> list[Passage]:
        """The k best passages for a question, best first."""
        chunks = self.index.chunks
        allowed = _allowed(chunks, filters)
        if not chunks or k <= 0 or not allowed.any():
            return []
        expanded = expand_query(question)
        tokens = tokenize(expanded)
        n = len(chunks)
        dense = np.zeros(n, np.float32)
        if weights.dense:
            dense = self.index.dense_scores(self.query_vector(question))
        lexical = (
            self.index.lexical.scores(terms(expanded))
            if weights.lexical
            else np.zeros(n, np.float32)
        )
        if weights.fusion == "rrf":
            score = weights.dense / (weights.rrf_k + _ranks(dense)) + weights.lexical / (
                weights.rrf_k + _ranks(lexical)
            )
            score = score * (weights.rrf_k + 1)  # top of both lists ≈ dense + lexical weight
        else:
            top = float(lexical[allowed].max())
            score = weights.dense * dense + weights.lexical * (
                lexical / top if top > 0 else lexical
            )
        score = score - weights.context_penalty * self.context
        score = score - weights.superseded_penalty * self.superseded
        refs = parse_references(question, self.documents)
        score = score + structure_bonus(chunks, refs, weights)
        if weights.title_boost:
            score = score + weights.title_boost * self._title_overlap(set(tokens))
        if weights.definition_boost and DEFINITIONAL.search(question):
            score = score + weights.definition_boost * self._definition_match(tokens)
        for name in answer_types(question) if weights.answer_type_boost else ():
            score = score + weights.answer_type_boost * self.has_answer_type[name]
        for heading in heading_intents(question) if weights.heading_boost else ():
            score = score + weights.heading_boost * self.has_heading[heading]
        score = np.where(allowed, score, -np.inf)
        order = np.lexsort((self.uploaded, -score))  # by score, then official before uploaded
        pool = order[: min(max(4 * k, 40), int(allowed.sum()))]
        groups: dict[int, list[int]] = {}
        for i in pool:  # best first: the first chunk of each provision leads its passage
            group = groups.setdefault(int(self.provision_of[i]), [])
            if len(group) < weights.pieces_per_passage and (
                not group or score[i] >= score[group[0]] - weights.sibling_margin
            ):
                group.append(int(i))
        passages = []
        for rank, (lead, *rest) in enumerate(list(groups.values())[:k], start=1):
            siblings = tuple(chunks[j] for j in self._with_context(lead, rest, weights))
            passages.append(
                Passage(
                    rank=rank,
                    score=float(score[lead]),
                    chunk=chunks[lead],
                    dense=float(dense[lead]),
                    lexical=float(lexical[lead]),
                    siblings=siblings,
                )
            )
        return passages

    def _with_context(self, lead: int, picked: list[int], weights: Weights) -> list[int]:
        """The other pieces of the lead chunk's provision to show with it: those retrieved,
        then its nearest neighbours, while the passage stays within `passage_chars`."""
        members = self.members[int(self.provision_of[lead])]
        chosen = {lead, *picked}
        size = sum(len(self.index.chunks[i].text) for i in chosen)
        position = members.index(lead)
        for distance in range(1, len(members)):
            for j in (position - distance, position + distance):
                if 0 <= j < len(members) and members[j] not in chosen:
                    extra = len(self.index.chunks[members[j]].text)
                    if size + extra <= weights.passage_chars:
                        chosen.add(members[j])
                        size += extra
        return sorted(chosen - {lead})

    def query_vector(self, question: str) -> np.ndarray:
        """The embedding of the question (the last few are cached; safe across threads)."""
        vector = self._vectors.get(question)
        if vector is None:
            vector = self.embedder.embed([question])[0]
            with self._vectors_lock:
                self._vectors[question] = vector
                while len(self._vectors) > 64:
                    self._vectors.pop(next(iter(self._vectors)))
        return vector

    def _title_overlap(self, tokens: set[str]) -> np.ndarray:
        """Share of the question's (IDF-weighted) words found in each chunk's document title."""
        idf = {t: self.index.lexical.idf(t) for t in tokens}
        total = sum(idf.values()) or 1.0
        shares = [sum(idf[t] for t in tokens & words) / total for words in self.title_words]
        per_document = np.array([*shares, 0.0], dtype=np.float32)  # -1: no manifest entry
        out: np.ndarray = per_document[self.document_of]
        return out

    def _definition_match(self, stems: list[str]) -> np.ndarray:
        """For chunks defining the longest term the question names in full: that term's weight."""
        out = np.zeros(len(self.definitions), np.float32)
        best = [
            max(((len(t), w) for t, w in terms if names_term(stems, t)), default=(0, 0.0))
            for terms in self.definitions
        ]
        longest = max((size for size, _ in best), default=0)
        if longest:
            for i, (size, weight) in enumerate(best):
                if size == longest:
                    out[i] = weight
        return out
