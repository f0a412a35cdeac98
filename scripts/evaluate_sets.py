"""Answer-level figures on several gold sets in one run (one model load), one row per set.

    python scripts/evaluate_sets.py ../shared/eval/dev.jsonl scripts/data/tune.jsonl \
        scripts/data/validate.jsonl scripts/data/heldout.jsonl [--misses SET] [--json]

Tuning uses dev, tune and validate; report heldout.jsonl apart and never tune on its misses.
"""

import argparse
import json
import sys
from pathlib import Path

from qa.config import Settings
from qa.evaluate import EvalReport, evaluate, load_items
from qa.pipeline import QA

COLUMNS = (
    "answer_accuracy",
    "citation1_accuracy",
    "doc@1",
    "hit@5",
    "fragment_rate",
    "repeat_rate",
    "refused_unanswerable",
    "refused_answerable",
    "latency_p50_ms",
)


def run(qa: QA, files: list[Path], k: int) -> dict[str, EvalReport]:
    """Evaluate each file with the same loaded service."""
    return {f.stem: evaluate(load_items(f), lambda q: qa.ask(q, top_k=k), k=k) for f in files}


def table(reports: dict[str, EvalReport]) -> str:
    """A plain-text table, one row per set."""
    header = f"{'set':12}" + "".join(f"{c:>21}" for c in COLUMNS)
    rows = [header]
    for name, report in reports.items():
        summary = report.summary()
        rows.append(f"{name:12}" + "".join(f"{summary[c]!s:>21}" for c in COLUMNS))
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--misses", action="append", default=[], help="print misses of SET")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    qa = QA.from_settings(Settings())
    qa.warm_up()
    reports = run(qa, args.files, args.k)
    if args.json:
        json.dump({n: r.to_json() for n, r in reports.items()}, sys.stdout, indent=2)
        return 0
    print(table(reports))
    for name in args.misses:
        for miss in reports[name].to_json()["misses"]:
            print(f"\n{miss['id']} {'; '.join(miss['problems'])}\n  Q: {miss['question']}")
            print(f"  want {' or '.join(miss['want'])}; [1] {miss['top']}")
            print(f"  A: {miss['answer'][:400]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
