"""Dense-only, BM25-only, plain hybrid and the final pipeline side by side on one gold file.

Usage: python scripts/compare_retrievers.py [FILE.jsonl ...] [--k 5]
(default: ../shared/eval/dev.jsonl). Uses the index and settings of the current directory.
"""

import argparse
from pathlib import Path

from qa.answer import Answer, citation_for
from qa.config import Settings
from qa.evaluate import EvalItem, evaluate, load_items
from qa.pipeline import QA
from qa.retrieval.search import STRUCTURAL_SIGNALS, Weights

REPO = Path(__file__).resolve().parent.parent
NO_STRUCTURE: dict[str, object] = {name: 0.0 for name in STRUCTURAL_SIGNALS} | {
    "pieces_per_passage": 1
}
# Quality only: the systems share one process and its query-vector cache, so their latencies
# are not comparable here; `atmp-qa eval` and scripts/bench.py measure speed.
COLUMNS = [
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr",
    "doc@{k}",
    "abstain_unanswerable",
    "abstain_answerable",
]


def search_only(qa: QA, weights: Weights, k: int):  # type: ignore[no-untyped-def]
    """An `ask` that returns the retrieved passages as citations, never abstaining."""

    def ask(question: str) -> Answer:
        passages = qa.search(question, k=k, weights=weights)
        citations = tuple(citation_for(p.rank, p, "") for p in passages)
        return Answer(question, "", False, citations)

    return ask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "files", nargs="*", type=Path, default=[REPO.parent / "shared/eval/dev.jsonl"]
    )
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    items: list[EvalItem] = [item for f in args.files for item in load_items(f)]
    qa = QA.from_settings(Settings())
    qa.warm_up()
    final = qa.weights
    plain = final.model_copy(update=NO_STRUCTURE)
    systems = {
        "dense only": search_only(qa, plain.model_copy(update={"lexical": 0.0}), args.k),
        "BM25 only": search_only(
            qa, plain.model_copy(update={"dense": 0.0, "lexical": 1.0}), args.k
        ),
        "hybrid (RRF)": search_only(
            qa, plain.model_copy(update={"fusion": "rrf", "lexical": 1.0}), args.k
        ),
        "hybrid (blend)": search_only(qa, plain, args.k),
        "final pipeline": lambda q: qa.ask(q, top_k=args.k),
    }
    columns = [c.format(k=args.k) for c in COLUMNS]
    print(f"{len(items)} items from {', '.join(str(f) for f in args.files)}; k={args.k}\n")
    print(f"{'system':16}" + "".join(f"{c:>22}" for c in columns))
    for name, ask in systems.items():
        summary = evaluate(items, ask, k=args.k).summary()
        print(f"{name:16}" + "".join(f"{summary[c]:>22}" for c in columns))


if __name__ == "__main__":
    main()
