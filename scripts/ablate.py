"""Standing ablation: what each scoring signal and each glossary entry is worth, measured on
what the user reads (answer accuracy and citation [1]) with it switched off, one at a time.

    python scripts/ablate.py scripts/data/validate.jsonl scripts/data/tune.jsonl [--glossary]

A signal or glossary entry stays only if switching it off hurts a set it was not written for
(validation); entries that fire on no question of the sets are listed as untested. Never pass
the held-out set here: it is for reporting, not for choosing.
"""

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.config import Settings
from qa.evaluate import EvalItem, evaluate, load_items
from qa.pipeline import QA
from qa.retrieval import glossary
from qa.retrieval.search import STRUCTURAL_SIGNALS

SIGNALS = ("lexical", *STRUCTURAL_SIGNALS)
TABLES = ("ABBREVIATIONS", "CITATION_FORMS", "FIELD_TERMS", "LONG_FORMS", "PLAIN_TO_LEGAL")


def figures(qa: QA, sets: dict[str, list[EvalItem]]) -> dict[str, tuple[float, float]]:
    """(answer accuracy, citation [1] accuracy) per set."""
    out = {}
    for name, items in sets.items():
        summary = evaluate(items, lambda q: qa.ask(q), k=5).summary()
        out[name] = (summary["answer_accuracy"], summary["citation1_accuracy"])
    return out


@contextmanager
def without_entry(table: str, key: str) -> Iterator[None]:
    """The glossary with one entry removed."""
    entries = getattr(glossary, table)
    value = entries.pop(key)
    try:
        yield
    finally:
        entries[key] = value


def fires(table: str, key: str, questions: list[str]) -> bool:
    """Whether the entry changes the expansion of any of the questions."""
    with without_entry(table, key):
        without = [glossary.expand(q)[0] for q in questions]
    return without != [glossary.expand(q)[0] for q in questions]


def row(
    label: str, base: dict[str, tuple[float, float]], now: dict[str, tuple[float, float]]
) -> str:
    cells = []
    for name, (answer, first) in now.items():
        cells.append(f"{answer - base[name][0]:+.3f} {first - base[name][1]:+.3f}")
    return f"{label:44}" + "".join(f"{c:>22}" for c in cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--glossary", action="store_true", help="ablate glossary entries too")
    args = parser.parse_args()
    started = time.perf_counter()
    sets = {f.stem: load_items(f) for f in args.files}
    qa = QA.from_settings(Settings())
    base = figures(qa, sets)
    print(f"{'switched off (Δ answer, Δ citation [1])':44}" + "".join(f"{n:>22}" for n in sets))
    print(
        f"{'(nothing: absolute figures)':44}"
        + "".join(f"{a:>11.3f}{f:>11.3f}" for a, f in base.values())
    )
    weights = qa.weights
    for name in SIGNALS:
        qa.weights = weights.model_copy(update={name: 0.0})
        print(row(f"signal {name} ({getattr(weights, name)})", base, figures(qa, sets)), flush=True)
    qa.weights = weights
    if args.glossary:
        questions = [i.question for items in sets.values() for i in items]
        untested = []
        for table in TABLES:
            for key in list(getattr(glossary, table)):
                if not fires(table, key, questions):
                    untested.append(key)
                    continue
                with without_entry(table, key):
                    print(row(f"{table.lower()} {key!r}", base, figures(qa, sets)), flush=True)
        print(f"\nfire on no question of these sets ({len(untested)}): {', '.join(untested)}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
