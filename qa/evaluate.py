"""Evaluation on gold questions (the format of shared/eval/dev.jsonl), scored on what the user
reads: the answer text, citation [1] and the refusal — retrieval hit@k only as a means.

A gold item names one or more acceptable sources (`doc_id`, `section`, `evidence`; extra ones
under `alternatives`, e.g. the same rule in an EU and a UK text). Text "contains" an evidence
phrase after normalisation (NFKC; curly quotes to straight; en/em dashes to '-';
`* _ ` > # | \\` to spaces; whitespace collapsed; lower case).
"""

import json
import re
import statistics
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.answer import DANGLING_END, MARKER, Answer, restates, unit_texts
from qa.errors import QAError

MARKUP = re.compile(r"[*_`>#|\\]")
QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
# A unit of the answer that stops where its substance should begin.
FRAGMENT_END = DANGLING_END  # the answer's own guard is the evaluation's test


@dataclass(frozen=True)
class Evidence:
    """One acceptable source of an answer: the provision and a phrase it contains."""

    doc_id: str | None
    section: str | None
    phrase: str


@dataclass(frozen=True)
class EvalItem:
    """One gold question."""

    id: str
    question: str
    answerable: bool
    doc_id: str | None = None
    section: str | None = None
    evidence: str | None = None
    alternatives: tuple[Evidence, ...] = ()

    @property
    def sources(self) -> tuple[Evidence, ...]:
        """Every acceptable source, the primary one first."""
        if not self.answerable or not self.evidence:
            return ()
        return (Evidence(self.doc_id, self.section, self.evidence), *self.alternatives)


@dataclass(frozen=True)
class ItemResult:
    """What the system did with one gold question."""

    item: EvalItem
    rank: int | None  # first citation holding the evidence
    abstained: bool
    doc_in_top: bool
    doc_first: bool  # citation [1] is in an acceptable document
    in_answer: bool  # the answer text itself states the evidence
    fragment: bool  # some unit of the answer ends on a lead-in or a dangling conjunction
    repeated: bool  # two units of the answer say nearly the same in the same words
    top: str
    answer: str
    latency_ms: float

    def problems(self) -> list[str]:
        """What went wrong, in words (empty: nothing)."""
        if not self.item.answerable:
            return [] if self.abstained else ["answered an unanswerable question"]
        if self.abstained:
            return ["refused an answerable question"]
        out = []
        if not self.in_answer:
            out.append("evidence not in the answer")
        if self.rank != 1:
            out.append(f"citation [1] lacks it (rank {self.rank})" if self.rank else "not cited")
        if self.fragment:
            out.append("fragment")
        if self.repeated:
            out.append("a quote repeats another")
        return out


def _share(values: Sequence[bool]) -> float:
    return sum(values) / max(len(values), 1)


@dataclass
class EvalReport:
    """Metrics over a gold set."""

    k: int
    results: list[ItemResult] = field(default_factory=list)

    def _answerable(self) -> list[ItemResult]:
        return [r for r in self.results if r.item.answerable]

    def hit_at(self, n: int) -> float:
        """Share of answerable items with the evidence in the first n citations."""
        return _share([r.rank is not None and r.rank <= n for r in self._answerable()])

    @property
    def mrr(self) -> float:
        """Mean reciprocal rank of the first citation holding the evidence."""
        items = self._answerable()
        return sum(1 / r.rank for r in items if r.rank) / max(len(items), 1)

    @property
    def doc_at_k(self) -> float:
        """Share of answerable items whose document is among the first k citations."""
        return _share([r.doc_in_top for r in self._answerable()])

    @property
    def doc_at_1(self) -> float:
        """Share of answerable items whose citation [1] is in an acceptable document."""
        return _share([r.doc_first for r in self._answerable()])

    @property
    def answer_accuracy(self) -> float:
        """Share of answerable items whose answer text states the evidence."""
        return _share([r.in_answer for r in self._answerable()])

    @property
    def fragment_rate(self) -> float:
        """Share of given answers with a unit cut off after a lead-in or a conjunction."""
        given = [r for r in self.results if not r.abstained]
        return _share([r.fragment for r in given])

    @property
    def repeat_rate(self) -> float:
        """Share of given answers quoting nearly the same text twice."""
        return _share([r.repeated for r in self.results if not r.abstained])

    def abstention(self, answerable: bool) -> float:
        """Share of (un)answerable items on which the system abstained."""
        return _share([r.abstained for r in self.results if r.item.answerable == answerable])

    def latency(self, quantile: float) -> float:
        """Latency quantile in ms (0.5 = p50)."""
        values = sorted(r.latency_ms for r in self.results)
        if not values:
            return 0.0
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[round(quantile * 100) - 1]

    def misses(self) -> list[ItemResult]:
        """Items with a problem the user would see (or a retrieval miss at rank 1)."""
        return [r for r in self.results if r.problems()]

    def summary(self) -> dict[str, Any]:
        """The headline numbers: what the user reads first, then retrieval."""
        answerable = self._answerable()
        unanswerable = [r for r in self.results if not r.item.answerable]
        return {
            "items": len(self.results),
            "answerable": len(answerable),
            "answer_accuracy": round(self.answer_accuracy, 3),
            "citation1_accuracy": round(self.hit_at(1), 3),
            "doc@1": round(self.doc_at_1, 3),
            "fragment_rate": round(self.fragment_rate, 3),
            "repeat_rate": round(self.repeat_rate, 3),
            "refused_unanswerable": f"{sum(r.abstained for r in unanswerable)}/{len(unanswerable)}",
            "refused_answerable": f"{sum(r.abstained for r in answerable)}/{len(answerable)}",
            "abstain_unanswerable": round(self.abstention(False), 3),
            "abstain_answerable": round(self.abstention(True), 3),
            "hit@1": round(self.hit_at(1), 3),
            "hit@3": round(self.hit_at(3), 3),
            "hit@5": round(self.hit_at(5), 3),
            "mrr": round(self.mrr, 3),
            f"doc@{self.k}": round(self.doc_at_k, 3),
            "latency_p50_ms": round(self.latency(0.5), 1),
            "latency_p95_ms": round(self.latency(0.95), 1),
        }

    def to_json(self) -> dict[str, Any]:
        """Summary plus every miss, for `--json`."""
        return {
            "summary": self.summary(),
            "misses": [
                {
                    "id": r.item.id,
                    "question": r.item.question,
                    "answerable": r.item.answerable,
                    "want": [f"{s.doc_id} {s.section}" for s in r.item.sources],
                    "problems": r.problems(),
                    "rank": r.rank,
                    "top": r.top,
                    "answer": r.answer,
                }
                for r in self.misses()
            ],
        }


def normalise(text: str) -> str:
    """The scoring normalisation of shared/eval/README.md."""
    text = unicodedata.normalize("NFKC", text).translate(QUOTES)
    return " ".join(MARKUP.sub(" ", text).split()).lower()


def is_fragment(answer_text: str) -> bool:
    """Whether a unit of the answer ends on ":", "—", ";", "and", "or" with its substance cut."""
    return any(FRAGMENT_END.search(unit) for unit in unit_texts(answer_text))


def is_repeat(answer_text: str) -> bool:
    """Whether two units of the answer say nearly the same (the rule for human and for
    veterinary medicines, one definition in two acts)."""
    texts = [re.sub(r"^(?:EU|UK): ", "", t) for t in unit_texts(answer_text)]
    return any(restates(a, b) for i, a in enumerate(texts) for b in texts[i + 1 :])


def _evidence(data: Any) -> Evidence:
    if not isinstance(data, dict) or not data.get("evidence"):
        raise ValueError("each alternative needs doc_id, section and evidence")
    return Evidence(data.get("doc_id"), data.get("section"), str(data["evidence"]))


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
                alternatives=tuple(_evidence(a) for a in data.get("alternatives") or ()),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as ex:
            raise QAError(f"{path}, line {number}: not a gold item ({ex})") from None
        if item.answerable and not item.evidence:
            raise QAError(f"{path}, line {number}: an answerable item needs an evidence phrase")
        items.append(item)
    if not items:
        raise QAError(f"{path} holds no gold items")
    return items


def score(item: EvalItem, answer: Answer, *, k: int, latency_ms: float = 0.0) -> ItemResult:
    """Score one answer against its gold item."""
    cited = answer.citations[:k]
    phrases = [normalise(s.phrase) for s in item.sources]
    rank = next((c.n for c in cited if any(p in normalise(c.text) for p in phrases)), None)
    docs = {s.doc_id for s in item.sources}
    prose = normalise(MARKER.sub(" ", answer.text))
    return ItemResult(
        item=item,
        rank=rank,
        abstained=answer.abstained,
        doc_in_top=any(c.doc_id in docs for c in cited),
        doc_first=bool(cited) and cited[0].doc_id in docs,
        in_answer=not answer.abstained and any(p in prose for p in phrases),
        fragment=not answer.abstained and is_fragment(answer.text),
        repeated=not answer.abstained and is_repeat(answer.text),
        top=f"{cited[0].doc_id} {cited[0].section}" if cited else "(abstained)",
        answer=answer.text,
        latency_ms=latency_ms,
    )


def evaluate(items: Sequence[EvalItem], ask: Callable[[str], Answer], *, k: int) -> EvalReport:
    """Run every question through `ask` and score its answer and citations."""
    report = EvalReport(k=k)
    for item in items:
        started = time.perf_counter()
        answer = ask(item.question)
        latency = (time.perf_counter() - started) * 1000
        report.results.append(score(item, answer, k=k, latency_ms=latency))
    return report
