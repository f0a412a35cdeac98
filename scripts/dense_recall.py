"""Dense recall lost by an HNSW graph against exhaustive (flat) search, on the gold sets.

    python scripts/dense_recall.py /path/to/index [GOLD.jsonl ...] [--m 32] [--ef-search 128]
                                   [--candidates 1000] [--json]

Loads the index read-only, embeds the questions with the embedder the index was built with,
and reports per gold set, for flat and HNSW (forced, whatever the corpus size):
  recall@5/@20/@100  overlap of the top-k chunk sets with flat's (flat = 1 by definition)
  gold@5             share of answerable items with a gold chunk (in the item's document,
                     holding its evidence phrase) among the 5 nearest chunks
  cand               share of flat's top 100 found among the HNSW `dense_candidates`
  search_ms          median time of one `Index.search(vector, 100)`
  scores_ms          median time of one `Index.dense_scores(vector)` (what fusion calls)
Default gold sets: ../shared/eval/dev.jsonl, scripts/data/tune.jsonl, scripts/data/validate.jsonl.

`--synthetic N` also times both structures on N synthetic passages (real vectors plus noise,
renormalised), where flat's exhaustive search starts to cost: the corpus itself is too small
for HNSW to pay off. Run from the repository root with PYTHONPATH=. (or the package installed).
"""

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.embed import SentenceTransformerEmbedder
from qa.evaluate import EvalItem, load_items, normalise
from qa.index import DenseOptions, Index
from qa.lexical import LexicalIndex

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETS = (
    REPO.parent / "shared" / "eval" / "dev.jsonl",
    REPO / "scripts" / "data" / "tune.jsonl",
    REPO / "scripts" / "data" / "validate.jsonl",
)
KS = (5, 20, 100)


def gold_rows(index: Index, item: EvalItem) -> set[int]:
    """Chunks of an acceptable document that hold one of the item's evidence phrases."""
    rows: set[int] = set()
    for source in item.sources:
        phrase = normalise(source.phrase)
        for row, chunk in enumerate(index.chunks):
            if (source.doc_id in (None, chunk.doc_id)) and phrase in normalise(chunk.text):
                rows.add(row)
    return rows


def top_rows(index: Index, vector: np.ndarray, k: int) -> list[int]:
    """The rows of the k nearest chunks, best first."""
    return [index.by_id[chunk.chunk_id] for chunk, _ in index.search(vector, k)]


def median_ms(run: Any, vectors: np.ndarray) -> float:
    """Median wall time of `run(vector)` over the vectors, in milliseconds."""
    times = []
    for vector in vectors:
        started = time.perf_counter()
        run(vector)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def measure(
    flat: Index, other: Index, items: list[EvalItem], vectors: np.ndarray
) -> dict[str, Any]:
    """The figures of one structure on one gold set (see the module docstring)."""
    recall: dict[int, list[float]] = {k: [] for k in KS}
    found, answerable, cand = 0, 0, []
    for item, vector in zip(items, vectors, strict=True):
        exact = top_rows(flat, vector, max(KS))
        mine = top_rows(other, vector, max(KS))
        for k in KS:
            recall[k].append(len(set(exact[:k]) & set(mine[:k])) / k)
        candidates = (
            exact if other.dense_kind == "flat" else top_rows(other, vector, other.dense.candidates)
        )
        cand.append(len(set(exact) & set(candidates)) / len(exact))
        if item.answerable:
            answerable += 1
            found += bool(gold_rows(flat, item) & set(mine[:5]))
    return {
        **{f"recall@{k}": round(float(np.mean(recall[k])), 4) for k in KS},
        "gold@5": round(found / answerable, 4) if answerable else None,
        "cand": round(float(np.mean(cand)), 4),
        "search_ms": median_ms(lambda v: other.search(v, 100), vectors),
        "scores_ms": median_ms(other.dense_scores, vectors),
    }


def synthetic(flat: Index, n: int, options: DenseOptions, vectors: np.ndarray) -> dict[str, Any]:
    """Build and query times of flat and HNSW on n passages near the corpus's own vectors."""
    rng = np.random.default_rng(0)
    base = flat.vectors[rng.integers(0, len(flat.vectors), n)]
    noisy = base + rng.normal(0, 0.05, base.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    chunks = [replace(flat.chunks[0], chunk_id=f"synthetic:{i}") for i in range(n)]
    manifest = replace(flat.manifest, chunk_count=n, documents={})
    lexical = LexicalIndex.build([f"passage {i}" for i in range(n)])
    out: dict[str, Any] = {"passages": n}
    for kind, dense in (("flat", DenseOptions("flat")), ("hnsw", options)):
        started = time.perf_counter()
        index = Index(manifest, chunks, noisy, lexical=lexical, dense=dense)
        out[f"{kind}_build_s"] = round(time.perf_counter() - started, 3)
        out[f"{kind}_search_ms"] = median_ms(lambda v, i=index: i.search(v, 100), vectors)
        out[f"{kind}_scores_ms"] = median_ms(index.dense_scores, vectors)
        if kind == "flat":
            exact = [top_rows(index, v, 100) for v in vectors]
        else:
            mine = [top_rows(index, v, 100) for v in vectors]
            found = [top_rows(index, v, options.candidates) for v in vectors]
    pairs = zip(exact, mine, found, strict=True)
    shares = [(len(set(a) & set(b)) / 100, len(set(a) & set(c)) / 100) for a, b, c in pairs]
    out["recall@100"] = round(float(np.mean([r for r, _ in shares])), 4)
    out["cand"] = round(float(np.mean([c for _, c in shares])), 4)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="index directory (read, never written)")
    parser.add_argument("files", nargs="*", type=Path, default=list(DEFAULT_SETS))
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--synthetic", type=int, default=0, metavar="N")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = SentenceTransformerEmbedder()
    flat = Index.load(
        args.index, model=embedder.model_name, dim=embedder.dim, dense=DenseOptions("flat")
    )
    options = DenseOptions(
        "hnsw", hnsw_m=args.m, hnsw_ef_search=args.ef_search, candidates=args.candidates
    )
    started = time.perf_counter()
    hnsw = Index(flat.manifest, flat.chunks, flat.vectors, lexical=flat.lexical, dense=options)
    build_s = round(time.perf_counter() - started, 3)

    report: dict[str, Any] = {
        "passages": len(flat.chunks),
        "hnsw": {"m": args.m, "ef_search": args.ef_search, "candidates": args.candidates},
        "hnsw_build_s": build_s,
        "sets": {},
    }
    questions: list[np.ndarray] = []
    for path in args.files:
        items = load_items(path)
        vectors = embedder.embed([item.question for item in items])
        questions.append(vectors)
        report["sets"][path.stem] = {
            "items": len(items),
            "flat": measure(flat, flat, items, vectors),
            "hnsw": measure(flat, hnsw, items, vectors),
        }
    if args.synthetic:
        report["synthetic"] = synthetic(flat, args.synthetic, options, np.concatenate(questions))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        return 0
    print(f"{report['passages']} passages; HNSW {report['hnsw']}, built in {build_s} s")
    columns = ("recall@5", "recall@20", "recall@100", "gold@5", "cand", "search_ms", "scores_ms")
    print(f"{'set':10}{'index':>7}" + "".join(f"{c:>11}" for c in columns))
    for name, figures in report["sets"].items():
        for kind in ("flat", "hnsw"):
            row = figures[kind]
            print(f"{name:10}{kind:>7}" + "".join(f"{row[c]!s:>11}" for c in columns))
    if "synthetic" in report:
        print("synthetic:", json.dumps(report["synthetic"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
