"""Hybrid retrieval: a passage's score is a weighted sum of named signals (dense cosine, BM25,
the documents, provisions and jurisdiction the question names, definitions, answer types,
headings; penalties for context, superseded and amending texts), each kept per passage so
`search --explain` can show why it ranked where it did.

A question naming one jurisdiction is answered from it alone; filters restrict the candidates.
"""

import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from qa.chunking import Chunk
from qa.config import Retrieval
from qa.embed import Embedder
from qa.index import DocumentRecord, Index
from qa.lexical import terms, tokenize
from qa.retrieval.query import (
    ANSWER_TYPE_NAMES,
    HEADING_INTENTS,
    Query,
    Vocabulary,
    analyse,
    defined_terms,
    finds_answer_type,
)
from qa.retrieval.references import (
    ANNEXES,
    SCHEDULES,
    DocumentName,
    NamedAct,
    References,
    acts_of_parliament,
)

Weights = Retrieval  # the signal weights live in the settings (QA_RETRIEVAL__*)
# Signals subtracted from the score rather than added.
PENALTIES = ("context", "superseded", "amending")
# Everything but the two text-similarity signals: what the law's structure adds.
STRUCTURAL_SIGNALS = (
    "document",
    "provision",
    "jurisdiction",
    "title",
    "subject",
    "definition",
    "answer_type",
    "heading",
    "referenced",
    "summary",
    *PENALTIES,
)


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some jurisdictions and/or documents (empty = no restriction)."""

    jurisdictions: frozenset[str] = frozenset()
    doc_ids: frozenset[str] = frozenset()


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
    signals: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def pieces(self) -> list[Chunk]:
        """The chunks of this passage in document order."""
        return sorted((self.chunk, *self.siblings), key=lambda c: c.ordinal)

    @cached_property
    def text(self) -> str:
        """The passage text; "[…]" marks text of the provision left out between pieces."""
        pieces = self.pieces
        parts = [pieces[0].text]
        for before, piece in zip(pieces, pieces[1:], strict=False):
            parts.append(self._gap(before, piece))
            parts.append(piece.text)
        return "".join(parts)

    @staticmethod
    def _gap(before: Chunk, piece: Chunk) -> str:
        return "\n" if piece.ordinal == before.ordinal + 1 else "\n[…]\n"

    def piece_at(self, offset: int) -> Chunk:
        """The chunk holding character `offset` of `text`."""
        pieces = self.pieces
        position = 0
        for before, piece in zip([None, *pieces], pieces, strict=False):
            position += len(self._gap(before, piece)) if before is not None else 0
            if offset < position + len(piece.text):
                return piece
            position += len(piece.text)
        return pieces[-1]

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
            "short_title": c.short_title,
            "section": self.section,
            "page": c.page,
            "url": c.url,
            "text": self.text,
            "origin": c.origin,
        }

    def explain(self) -> dict[str, float]:
        """Each signal's weighted contribution to the score (penalties negative)."""
        return {name: round(value, 4) for name, value in self.signals.items() if value}


def document_names(index: Index) -> list[DocumentName]:
    """The names an index's documents can be referred to by."""
    return [
        DocumentName(
            r.doc_id, r.short_title, tuple(r.aliases), r.jurisdiction, r.kind, tuple(r.amends)
        )
        for r in index.manifest.documents.values()
    ]


CONTEXT_SECTIONS = re.compile(r"^(Recitals?|Preamble|Explanatory note|Signed)\b", re.I)


def is_context(chunk: Chunk) -> bool:
    """Recitals, preambles and notes explain the rules but are not themselves rules."""
    return bool(CONTEXT_SECTIONS.match(chunk.provision))


def _amends_older_text(record: DocumentRecord, records: Mapping[str, DocumentRecord]) -> bool:
    """Whether an amending instrument amends an indexed act held in a version dated before it
    (SI 2025/538 and the 2020 text of SI 2004/1031): its changes are in no other indexed text."""
    made = record.version_date
    return made is not None and any(
        (held := records.get(doc_id)) is not None
        and held.version_date is not None
        and held.version_date < made
        for doc_id in record.amends
    )


def _allowed(chunks: Sequence[Chunk], filters: Filters | None) -> np.ndarray:
    mask = np.ones(len(chunks), dtype=bool)
    if filters is None:
        return mask
    if filters.jurisdictions:
        mask &= np.array([c.jurisdiction in filters.jurisdictions for c in chunks], dtype=bool)
    if filters.doc_ids:
        mask &= np.array([c.doc_id in filters.doc_ids for c in chunks], dtype=bool)
    return mask


def best_first(scores: np.ndarray, k: int, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """The positions of the k highest scores, best first; ties by `tiebreak` (lower first),
    then by position: `np.lexsort((tiebreak, -scores))[:k]` without sorting every chunk."""
    n = len(scores)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]  # the k-th highest score
        candidates = np.flatnonzero(scores >= kth)
    else:
        candidates = np.arange(n)
    keys = [-scores[candidates]]
    if tiebreak is not None:
        keys.insert(0, tiebreak[candidates])  # lexsort's last key is the primary one
    order: np.ndarray = candidates[np.lexsort(keys)][:k]
    return order


def _ranks(scores: np.ndarray) -> np.ndarray:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


def named_signals(chunks: Sequence[Chunk], refs: References) -> tuple[np.ndarray, np.ndarray]:
    """1 for chunks in a document the question names, and for chunks of a provision it names
    (in a named document, or in any when it names none)."""
    document = np.zeros(len(chunks), dtype=np.float32)
    provision = np.zeros(len(chunks), dtype=np.float32)
    if not refs:
        return document, provision
    for i, chunk in enumerate(chunks):
        in_document = chunk.doc_id in refs.doc_ids
        document[i] = in_document
        in_scope = in_document or not refs.doc_ids
        if refs.provisions and in_scope and refs.names_provision(chunk.provision):
            provision[i] = 1.0
    return document, provision


class Retriever:
    """Hybrid retrieval over one index; per-index data is prepared once."""

    def __init__(
        self, index: Index, embedder: Embedder, *, unindexed: Sequence[NamedAct] = ()
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.documents = document_names(index)
        self.name_words = {w.lower() for d in self.documents for a in d.aliases for w in a.split()}
        self.vocabulary = Vocabulary(
            documents=self.documents,
            known=index.lexical.document_frequency,
            word_pieces=embedder.word_pieces,
            unindexed=tuple(unindexed),
            names=frozenset(self.name_words),
            mentioned_acts=frozenset(
                name.lower() for c in index.chunks for name in acts_of_parliament(c.text)
            ),
        )
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        # The dense scores of the last few question vectors: retrieval and the off-topic test
        # read the same ones (kept few: each is a float per passage).
        self._dense: dict[bytes, np.ndarray] = {}
        # Which chunks define each term, with the definition's weight ("means" 1, a pointer 0.5).
        self.defining: dict[tuple[str, ...], dict[int, float]] = {}
        for i, c in enumerate(index.chunks):
            for term, weight in defined_terms(c.text):
                chunks_of = self.defining.setdefault(term, {})
                chunks_of[i] = max(chunks_of.get(i, 0.0), weight)
        self.term_lengths = sorted({len(term) for term in self.defining})
        titles = {
            r.doc_id: set(tokenize(" ".join([r.title, r.short_title, *r.aliases])))
            for r in index.manifest.documents.values()
        }
        # Per-document title words, and which document each chunk belongs to.
        self.title_words = list(titles.values())
        positions = {doc_id: i for i, doc_id in enumerate(titles)}
        self.document_of = np.array([positions.get(c.doc_id, -1) for c in index.chunks])
        self.context = np.array([is_context(c) for c in index.chunks], dtype=np.float32)
        # An explanatory note's opening sums an act up: context for a rule, the answer for an
        # overview ("These Regulations amend …").
        records = index.manifest.documents
        superseded = {d for d, r in records.items() if r.superseded_by}
        self.superseded = np.array([c.doc_id in superseded for c in index.chunks], np.float32)
        # Amending instruments: their text is mostly what they insert into other acts, which
        # the consolidated act states as well, unless the act is held only in a version older
        # than the instrument: then the instrument is where the amended law is read.
        self.amending_documents = {
            d for d, r in records.items() if r.amends and not _amends_older_text(r, records)
        }
        self.amending = np.array(
            [c.doc_id in self.amending_documents for c in index.chunks], np.float32
        )
        self.jurisdiction_of = np.array([c.jurisdiction or "" for c in index.chunks])
        self.by_document: dict[str, list[int]] = {}
        for i, c in enumerate(index.chunks):
            self.by_document.setdefault(c.doc_id, []).append(i)
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
        self.summary = np.zeros(len(index.chunks), dtype=bool)
        for members in self.members:
            if index.chunks[members[0]].provision.startswith("Explanatory note"):
                self.summary[members[0]] = True
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

    def analyse(self, question: str) -> Query:
        """The question analysed against this index (see `qa.retrieval.query`)."""
        return analyse(question, self.vocabulary)

    def signals(
        self, query: Query, allowed: np.ndarray, vector: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Every signal for every chunk, unweighted: each in 0..1 (BM25 scaled to the best
        allowed chunk). `vector` is the question's embedding when already computed."""
        chunks = self.index.chunks
        n = len(chunks)
        lexical = self.index.lexical.scores(terms(query.expanded))
        top = float(lexical[allowed].max()) if allowed.any() else 0.0
        document, provision = named_signals(chunks, query.references)
        jurisdiction = np.isin(self.jurisdiction_of, list(query.jurisdictions)).astype(np.float32)
        answer_type = np.zeros(n, np.float32)
        for name in query.answer_types:  # "within how many days": a duration and a number
            answer_type = answer_type + self.has_answer_type[name]
        heading = np.zeros(n, np.float32)
        for pattern in query.headings:
            heading = np.maximum(heading, self.has_heading[pattern])
        named = document > 0  # chunks of a document the question names
        subjects = [set(tokenize(e.split(" → ", 1)[1])) for e in query.expansions]
        about = np.array(
            [*(any(s and s <= words for s in subjects) for words in self.title_words), False],
            np.float32,
        )
        return {
            "dense": self.dense_scores(self.query_vector(query.text) if vector is None else vector),
            "lexical": lexical / top if top > 0 else lexical,
            "document": document,
            "provision": provision,
            "jurisdiction": jurisdiction,
            "title": self._title_overlap(set(query.stems)),
            "subject": about[self.document_of],
            "definition": (
                self._definition_match(list(query.term_stems))
                if query.definitional
                else np.zeros(n, np.float32)
            ),
            "answer_type": answer_type,
            "heading": heading,
            "summary": (
                (self.summary & (named | (not query.references.doc_ids))).astype(np.float32)
                if query.overview
                else np.zeros(n, np.float32)
            ),
            "context": np.where(query.overview & self.summary, 0.0, self.context).astype(
                np.float32
            ),
            "superseded": self.superseded,
            "amending": np.where(named, 0.0, self.amending).astype(np.float32),
        }

    def allowed(self, query: Query, filters: Filters | None) -> np.ndarray:
        """Chunks the filters allow; a question naming one jurisdiction keeps to it."""
        chunks = self.index.chunks
        mask = _allowed(chunks, filters)
        named = query.jurisdictions
        if len(named) == 1 and not (filters and filters.jurisdictions):
            only = mask & np.isin(self.jurisdiction_of, list(named))
            if only.any():
                mask = only
        return mask

    def search(
        self,
        question: str | Query,
        *,
        k: int,
        filters: Filters | None = None,
        weights: Weights | None = None,
        vector: np.ndarray | None = None,
    ) -> list[Passage]:
        """The k best passages for a question, best first (`vector`: its embedding, when the
        caller computed it already)."""
        weights = weights or Weights()
        query = question if isinstance(question, Query) else self.analyse(question)
        chunks = self.index.chunks
        allowed = self.allowed(query, filters)
        if not chunks or k <= 0 or not allowed.any():
            return []
        signals = self.signals(query, allowed, vector)
        if weights.fusion == "rrf":  # ranks of the two lists, scaled so the top ≈ the weights
            for name in ("dense", "lexical"):
                ranks = _ranks(np.where(allowed, signals[name], -np.inf))
                signals[name] = (weights.rrf_k + 1) / (weights.rrf_k + ranks)
        contributions = {
            name: (-1.0 if name in PENALTIES else 1.0) * getattr(weights, name) * values
            for name, values in signals.items()
        }
        score = np.sum(list(contributions.values()), axis=0)
        score = np.where(allowed, score, -np.inf)
        if weights.referenced:
            referenced = self._referenced(score)
            contributions["referenced"] = weights.referenced * referenced
            score = score + contributions["referenced"]
        # by score, then official before uploaded
        pool = best_first(score, min(max(4 * k, 40), int(allowed.sum())), self.uploaded)
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
                    dense=float(signals["dense"][lead]) if weights.dense else 0.0,
                    lexical=float(signals["lexical"][lead]) if weights.lexical else 0.0,
                    siblings=siblings,
                    signals={n: float(v[lead]) for n, v in contributions.items()},
                )
            )
        return passages

    def _referenced(self, score: np.ndarray, top: int = 3) -> np.ndarray:
        """1 for chunks of an annex or schedule that one of the best chunks points to ("the
        manipulations listed in Annex I"): the list a rule refers to answers with it."""
        out = np.zeros(len(score), np.float32)
        chunks = self.index.chunks
        for i in best_first(score, top):
            names = {f"Annex {m.group(1).upper()}" for m in ANNEXES.finditer(chunks[i].text)}
            names |= {f"Schedule {m.group(1).upper()}" for m in SCHEDULES.finditer(chunks[i].text)}
            if not names:
                continue
            doc_id = chunks[i].doc_id
            for j in self.by_document.get(doc_id, ()):
                if chunks[j].provision in names:
                    out[j] = 1.0
        return out

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
            self._remember(self._vectors, question, vector, 64)
        return vector

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        """`Index.dense_scores` of a question vector, remembered for the last few vectors."""
        key = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        scores = self._dense.get(key)
        if scores is None:
            scores = self.index.dense_scores(vector)
            scores.setflags(write=False)  # shared between readers
            self._remember(self._dense, key, scores, 8)
        return scores

    def _remember(
        self, cache: dict[Any, np.ndarray], key: Any, value: np.ndarray, size: int
    ) -> None:
        """Keep `value` under `key`, dropping the oldest entries past `size` (thread-safe)."""
        with self._vectors_lock:
            cache[key] = value
            while len(cache) > size:
                cache.pop(next(iter(cache)))

    def topicality(self, vector: np.ndarray) -> float:
        """How close the texts come to a question (its `query_vector`): the mean cosine of its
        nearest passages, one per hundred passages held, from 1 to 10 (a small upload's ten
        nearest would be most of it), read from the dense scores retrieval computed. On the 19
        texts "How long should I boil an egg?" gets 0.18, a question they answer 0.30 or more."""
        scores = self.dense_scores(vector)
        if not len(scores):
            return 0.0
        nearest = max(1, min(10, len(scores) // 100))
        return float(np.partition(scores, len(scores) - nearest)[-nearest:].mean())

    def _title_overlap(self, tokens: set[str]) -> np.ndarray:
        """Share of the question's (IDF-weighted) words found in each chunk's document title."""
        idf = {t: self.index.lexical.idf(t) for t in tokens}
        total = math.fsum(idf.values()) or 1.0  # fsum: independent of the sets' order
        shares = [math.fsum(idf[t] for t in tokens & words) / total for words in self.title_words]
        per_document = np.array([*shares, 0.0], dtype=np.float32)  # -1: no manifest entry
        out: np.ndarray = per_document[self.document_of]
        return out

    def _definition_match(self, stems: list[str]) -> np.ndarray:
        """For chunks defining the longest term the question names in full: that term's weight."""
        out = np.zeros(len(self.index.chunks), np.float32)
        named = [
            term
            for n in self.term_lengths
            for term in {tuple(stems[i : i + n]) for i in range(len(stems) - n + 1)}
            if term in self.defining
        ]
        longest = max((len(term) for term in named), default=0)
        for term in named:
            if len(term) == longest:
                for i, weight in self.defining[term].items():
                    out[i] = max(out[i], weight)
        return out
