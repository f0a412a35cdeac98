"""Lexical (BM25) scoring over the same chunks as the vectors, built and saved with the index."""

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

TOKEN = re.compile(r"[a-z0-9]+")
# American spellings fold onto the British ones of the EU/UK texts before stemming.
AMERICAN = [
    (re.compile(r"iz(e|es|ed|ing|ation|ations)$"), r"is\1"),
    (re.compile(r"eling$"), "elling"),
]
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "shall",
        "may",
        "must",
    ]
)


# Irregular forms the stemmer leaves alone ("kept" would not match "keep").
IRREGULAR = {
    "kept": "keep",
    "held": "hold",
    "made": "make",
    "given": "give",
    "gave": "give",
    "taken": "take",
    "took": "take",
    "done": "do",
    "did": "do",
    "sent": "send",
    "paid": "pay",
    "laid": "lay",
    "brought": "bring",
    "sought": "seek",
    "written": "write",
    "wrote": "write",
    "chosen": "choose",
    "drawn": "draw",
    "drew": "draw",
    "met": "meet",
    "known": "know",
    "shown": "show",
    "set": "set",
    "begun": "begin",
    "began": "begin",
    "lost": "lose",
    "spent": "spend",
    "sold": "sell",
    "told": "tell",
    "led": "lead",
    "left": "leave",
    "children": "child",
    "persons": "person",
    "people": "person",
}


def _bm25s() -> Any:
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-case word stems without stopwords ("Traceability data" → ["traceabl", "data"])."""
    return [stem for word in TOKEN.findall(text.lower()) if (stem := _stem(word)) is not None]


@lru_cache(maxsize=65536)
def _stem(word: str) -> str | None:
    """A lower-case word's stem, None for a stopword (remembered: a corpus has few words)."""
    if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
        return None
    for pattern, replacement in AMERICAN:
        word = pattern.sub(replacement, word)
    stem: str = _stemmer().stemWord(IRREGULAR.get(word, word))
    return stem


@lru_cache(maxsize=16384)
def word_set(text: str) -> frozenset[str]:
    """`tokenize(text)` as a set, remembered: answering reads the same passages' units,
    headings and titles question after question (it was half the time of an answer)."""
    return frozenset(tokenize(text))


@lru_cache(maxsize=16384)
def word_pairs(text: str) -> frozenset[str]:
    """Adjacent stem pairs of a text ("give_assur", "written_assur"), the phrases `terms`
    indexes, remembered like `word_set`."""
    return frozenset(_pairs(tokenize(text)))


def _pairs(stems: list[str]) -> list[str]:
    return [f"{a}_{b}" for a, b in zip(stems, stems[1:], strict=False)]


def terms(text: str) -> list[str]:
    """Index terms: word stems plus adjacent pairs, so phrases ("marketing authorisation
    holder") outscore the same words scattered over a passage."""
    stems = tokenize(text)
    return stems + _pairs(stems)


class LexicalIndex:
    """BM25 (bm25s) over tokenised chunk texts, plus document frequencies for term weights."""

    def __init__(self, bm25: Any, document_frequency: dict[str, int], size: int) -> None:
        self.bm25 = bm25
        self.document_frequency = document_frequency
        self.size = size
        self._idf: dict[str, float] = {}  # computed on first use

    @classmethod
    def build(cls, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.4) -> "LexicalIndex":
        """Index texts (one per chunk, in index order)."""
        bm25s = _bm25s()
        tokens = [terms(t) or ["\u2205"] for t in texts]
        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index(tokens, show_progress=False)
        frequency = Counter(t for doc in tokens for t in set(doc))
        return cls(bm25, dict(frequency), len(texts))

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every chunk for the query tokens (zeros when none is known)."""
        known = [t for t in query_tokens if t in self.document_frequency]
        if not known or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)

    def idf(self, token: str) -> float:
        """Inverse document frequency; a token the corpus never uses gets the highest value."""
        value = self._idf.get(token)
        if value is None:
            frequency = self.document_frequency.get(token, 0)
            value = math.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5))
            if len(self._idf) < 100_000:  # the corpus's words and the questions' few new ones
                self._idf[token] = value
        return value

    def save(self, directory: Path) -> None:
        """Write the BM25 matrices and the document frequencies under `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(directory), show_progress=False)
        (directory / "document_frequency.json").write_text(
            json.dumps({"size": self.size, "frequency": self.document_frequency})
        )

    @classmethod
    def load(cls, directory: Path) -> "LexicalIndex":
        """Read what `save` wrote; raises OSError/ValueError on missing or damaged files."""
        bm25s = _bm25s()
        data = json.loads((directory / "document_frequency.json").read_text())
        bm25 = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(bm25, {str(k): int(v) for k, v in data["frequency"].items()}, int(data["size"]))
