"""Evaluation on gold questions (the format of shared/eval/dev.jsonl).

A hit at rank r: the r-th citation's passage contains the item's evidence phrase after
normalisation (NFKC; curly quotes to straight; en/em dashes to '-'; `* _ ` > # | \\` to spaces;
whitespace collapsed; lower case).
"""

import json
import re
import statistics
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.answer import Answer
from qa.errors import QAError

MARKUP = re.compile(r"[*_`>#|\\]")
QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


@dataclass(frozen=True)
class EvalItem:
    """One gold question."""

    id: str
    question: str
    answerable: bool
    doc_id: str | None = None
    section: str | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class ItemResult:
    """What the system did with one gold question."""

    item: EvalItem
    rank: int | None
    abstained: bool
    doc_in_top: bool
    top: str
    latency_ms: float


@dataclass
class EvalReport:
    """Metrics over a gold set."""

    k: int
    results: list[ItemResult] = field(default_factory=list)

    def _answerable(self) -> list[ItemResult]:
        return [r for r in self.results if r.item.answerable]

    def hit_at(self, n: int) -> float:
        """Share of answerable items with the evidence in the first n citations."""
        items = self._answerable()
        return sum(r.rank is not None and r.rank <= n for r in items) / max(len(items), 1)

    @property
    def mrr(self) -> float:
        """Mean reciprocal rank of the first citation holding the evidence."""
        items = self._answerable()
        return sum(1 / r.rank for r in items if r.rank) / max(len(items), 1)

    @property
    def doc_at_k(self) -> float:
        """Share of answerable items whose document is among the first k citations."""
        items = self._answerable()
        return sum(r.doc_in_top for r in items) / max(len(items), 1)

    def abstention(self, answerable: bool) -> float:
        """Share of (un)answerable items on which the system abstained."""
        items = [r for r in self.results if r.item.answerable == answerable]
        return sum(r.abstained for r in items) / max(len(items), 1)

    def latency(self, quantile: float) -> float:
        """Latency quantile in ms (0.5 = p50)."""
        values = sorted(r.latency_ms for r in self.results)
        if not values:
            return 0.0
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[round(quantile * 100) - 1]

    def misses(self) -> list[ItemResult]:
        """Answerable items not hit at 1, and unanswerable items answered anyway."""
        return [
            r
            for r in self.results
            if (r.item.answerable and r.rank != 1) or (not r.item.answerable and not r.abstained)
        ]

    def summary(self) -> dict[str, Any]:
        """The headline numbers."""
        return {
            "items": len(self.results),
            "answerable": len(self._answerable()),
            "hit@1": round(self.hit_at(1), 3),
            "hit@3": round(self.hit_at(3), 3),
            "hit@5": round(self.hit_at(5), 3),
            "mrr": round(self.mrr, 3),
            f"doc@{self.k}": round(self.doc_at_k, 3),
            "abstain_unanswerable": round(self.abstention(False), 3),
            "abstain_answerable": round(self.abstention(True), 3),
            "latency_p50_ms": round(self.latency(0.5), 1),
            "latency_p95_ms": round(self.latency(0.95), 1),
        }

    def to_json(self) -> dict[str, Any]:
        """Summary plus every miss, for `--json`."""
        return {
            "summary": self.summary(),
            "misses": [
                {**asdict(r.item), "rank": r.rank, "abstained": r.abstained, "top": r.top}
                for r in self.misses()
            ],
        }


def normalise(text: str) -> str:
    """The scoring normalisation of shared/eval/README.md."""
    text = unicodedata.normalize("NFKC", text).translate(QUOTES)
    return " ".join(MARKUP.sub(" ", text).split()).lower()


def load_items(path: Path) -> list[EvalItem]:
    """Read a JSONL gold file; a malformed line raises QAError naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as ex:
        raise QAError(f"Cannot read {path}: {ex.strerror or ex}") from None
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            item = EvalItem(
                id=str(data["id"]),
                question=str(data["question"]),
                answerable=bool(data["answerable"]),
                doc_id=data.get("doc_id"),
                section=data.get("section"),
                evidence=data.get("evidence"),
            )
        except (ValueError, KeyError, TypeError) as ex:
            raise QAError(f"{path}, line {number}: not a gold item ({ex})") from None
        if item.answerable and not item.evidence:
            raise QAError(f"{path}, line {number}: an answerable item needs an evidence phrase")
        items.append(item)
    if not items:
        raise QAError(f"{path} holds no gold items")
    return items


def evaluate(items: Sequence[EvalItem], ask: Callable[[str], Answer], *, k: int) -> EvalReport:
    """Run every question through `ask` and score its citations (or related passages)."""
    report = EvalReport(k=k)
    for item in items:
        started = time.perf_counter()
        answer = ask(item.question)
        latency = (time.perf_counter() - started) * 1000
        cited = answer.citations[:k]
        rank = None
        if item.answerable and item.evidence:
            wanted = normalise(item.evidence)
            rank = next((c.n for c in cited if wanted in normalise(c.text)), None)
        top = f"{cited[0].doc_id} {cited[0].section}" if cited else "(abstained)"
        report.results.append(
            ItemResult(
                item=item,
                rank=rank,
                abstained=answer.abstained,
                doc_in_top=any(c.doc_id == item.doc_id for c in cited),
                top=top,
                latency_ms=latency,
            )
        )
    return report
