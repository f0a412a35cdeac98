"""Coordinate search of the retrieval weights on the tuning sets, scored on what the user reads.

    python scripts/tune_weights.py ../shared/eval/dev.jsonl scripts/data/tune.jsonl \
        scripts/data/validate.jsonl scripts/data/probe.jsonl [--passes 2]

Each weight in turn is multiplied by 0, 0.5, 1.5 and 2 (the others held); a change is kept only
where it gains at least `--min-gain` points (an answer holding the evidence: 2; citation [1]
holding it: 1; a trap refused: 2; an answerable question refused: -2) summed over the sets, and
no set loses an answer. Never pass the held-out sets: measure the chosen weights on them once,
with scripts/evaluate_sets.py.
"""

import argparse
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.config import Retrieval, Settings
from qa.evaluate import EvalItem, evaluate, load_items
from qa.pipeline import QA
from qa.retrieval.search import STRUCTURAL_SIGNALS

FACTORS = (0.0, 0.5, 1.5, 2.0)
TUNED = ("dense", "lexical", *STRUCTURAL_SIGNALS, "sibling_margin")


def points(qa: QA, sets: dict[str, list[EvalItem]]) -> dict[str, tuple[int, int]]:
    """Per set: (answers holding the evidence, points as in the module's docstring)."""
    out = {}
    for name, items in sets.items():
        report = evaluate(items, lambda q: qa.ask(q), k=5)
        answers = sum(r.in_answer for r in report.results if r.item.answerable)
        first = sum(r.rank == 1 for r in report.results if r.item.answerable)
        refused = sum(r.abstained for r in report.results if not r.item.answerable)
        wrongly = sum(r.abstained for r in report.results if r.item.answerable)
        out[name] = (answers, 2 * answers + first + 2 * refused - 2 * wrongly)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--min-gain", type=int, default=2)
    args = parser.parse_args()
    qa = QA.from_settings(Settings())
    retriever = qa._retriever
    embed_one = lru_cache(maxsize=None)(lambda text: retriever.embedder.embed([text])[0])
    retriever.query_vector = lambda text: np.asarray(embed_one(text))  # type: ignore[method-assign]
    sets = {f.stem: load_items(f) for f in args.files}
    weights = qa.weights
    best = points(qa, sets)
    print("start", weights.model_dump(include=set(TUNED)), best)
    for _ in range(args.passes):
        changed = False
        for name in TUNED:
            current = getattr(weights, name)
            for factor in FACTORS:
                value = round(current * factor, 4)
                if value == current:
                    continue
                trial = Retrieval.model_validate({**weights.model_dump(), name: value})
                qa.weights = trial
                now = points(qa, sets)
                gain = sum(p for _, p in now.values()) - sum(p for _, p in best.values())
                loses = any(now[s][0] < best[s][0] for s in sets)
                note = " (a set loses)" if loses else ""
                print(f"{name:15} {current:g} -> {value:g}: {gain:+d}{note}")
                if gain >= args.min_gain and not loses:
                    weights, best, changed = trial, now, True
                    print("  kept", {s: a for s, (a, _) in now.items()})
            qa.weights = weights
        if not changed:
            break
    print("chosen", weights.model_dump(include=set(TUNED)), best)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
