"""Performance ratios, measured in one run on the whole corpus (the issue's targets in brackets):

  full ingest ÷ `model.encode` alone on the same chunk texts        [≤ 1.15]
  re-ingest after editing one provision of one document ÷ full ingest [≤ 0.10]
  in-process `ask` p50 ÷ query-embedding p50                          [≤ 2.0]
  HTTP `POST /ask` p50 (sequential, `atmp-qa serve` on loopback)
  server RSS after warm-up                                            [≤ 1 GiB]

Usage: python scripts/bench.py [--mirror ../shared/corpus] [--touch uksi-2025-87]
                               [--questions 60] [--profile] [--json]

Wall-clock ratios are shown with CPU-time ratios next to them: on a busy machine (see the load
average printed at the end) the CPU-time ratio is the steadier of the two. `--profile` prints
pyinstrument's call tree of the asks and the re-ingest (pip install pyinstrument).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from qa.config import Settings
from qa.embed import SentenceTransformerEmbedder
from qa.index import Index
from qa.pipeline import QA, ingest
from qa.sources import fetch_corpus, load_sources

REPO = Path(__file__).resolve().parent.parent
QUESTION_FILES = [
    REPO / "scripts" / "data" / "tune.jsonl",
    REPO.parent / "shared" / "eval" / "dev.jsonl",
]


@dataclass
class Timing:
    """Wall-clock and process CPU seconds of one measured step."""

    wall: float
    cpu: float


@contextmanager
def timed() -> Iterator[Timing]:
    timing = Timing(0.0, 0.0)
    wall, cpu = time.perf_counter(), time.process_time()
    yield timing
    timing.wall = time.perf_counter() - wall
    timing.cpu = time.process_time() - cpu


@contextmanager
def profiled(enabled: bool, title: str) -> Iterator[None]:
    """Print pyinstrument's call tree of the block when `enabled`."""
    if not enabled:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    yield
    profiler.stop()
    print(f"\n--- profile: {title} ---")
    print(profiler.output_text(unicode=False, color=False))


def load_questions(limit: int) -> list[str]:
    questions = []
    for path in QUESTION_FILES:
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            questions += [json.loads(line)["question"] for line in lines if line.strip()]
    return list(dict.fromkeys(questions))[:limit]


def p50_pair(
    questions: list[str], first: Callable[[str], object], second: Callable[[str], object]
) -> tuple[list[Timing], list[Timing]]:
    """Time `first(q)` and `second(q)` alternately, so both see the same machine load."""
    a: list[Timing] = []
    b: list[Timing] = []
    for question in questions:
        with timed() as t:
            first(question)
        a.append(t)
        with timed() as t:
            second(question)
        b.append(t)
    return a, b


def median_ms(timings: list[Timing], attr: str = "wall") -> float:
    return statistics.median(getattr(t, attr) for t in timings) * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def http_bench(settings: Settings, questions: list[str]) -> dict[str, float]:
    """Start `atmp-qa serve`, wait until ready, time sequential /ask, read its RSS."""
    port = free_port()
    env = {
        **os.environ,
        "QA_CORPUS_DIR": str(settings.corpus_dir),
        "QA_INDEX_DIR": str(settings.index_dir),
        "QA_SOURCES_FILE": str(settings.resolved_sources_file),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "qa", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                if server.poll() is not None:
                    err = server.stderr.read().decode() if server.stderr else ""
                    raise SystemExit(f"atmp-qa serve exited: {err[-500:]}")
                try:
                    if client.get("/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - started > 300:
                    raise SystemExit("atmp-qa serve did not become ready in 300 s")
                time.sleep(0.2)
            ready_s = time.perf_counter() - started
            rss_ready = rss_bytes(server.pid)
            timings = []
            for question in questions:
                sent = time.perf_counter()
                response = client.post("/ask", json={"question": question})
                timings.append((time.perf_counter() - sent) * 1000)
                response.raise_for_status()
        return {
            "ready_s": ready_s,
            "http_p50_ms": statistics.median(timings),
            "rss_ready": rss_ready,
            "rss_after": rss_bytes(server.pid),
            "rss_peak": rss_bytes(server.pid, "VmHWM"),
        }
    finally:
        server.terminate()
        server.wait(30)


def touch(path: Path, sentence: str) -> None:
    """Add a paragraph inside the document's last provision (not after its footnotes)."""
    text = path.read_text()
    at = text.rfind("\n###### ")
    at = text.find("\n\n", at + 1)
    path.write_text(text[:at] + f"\n\n{sentence}" + text[at:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--touch", default="uksi-2025-87", help="document id to edit")
    parser.add_argument("--questions", type=int, default=60, help="questions to time")
    parser.add_argument("--profile", action="store_true", help="print pyinstrument profiles")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="atmp-bench-"))
    try:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            corpus_dir=root / "corpus",
            index_dir=root / "index",
            sources_file=REPO / "corpus" / "sources.toml",
        )
        fetch_corpus(
            load_sources(settings.resolved_sources_file),
            settings.corpus_dir,
            mirror=args.mirror,
            timeout_s=1,
        )
        embedder = SentenceTransformerEmbedder(batch_size=settings.embed_batch_size)
        embedder.embed(["warm-up"])
        load_before = os.getloadavg()[0]

        with timed() as full:
            report = ingest(settings, rebuild=True, embedder=embedder)
        texts = [c.embed_text for c in Index.load(settings.index_dir).chunks]
        with timed() as encode:
            embedder.model.encode(
                texts, batch_size=settings.embed_batch_size, normalize_embeddings=True
            )

        touched = next(settings.corpus_dir.rglob(f"{args.touch}.*"))
        touch(touched, "An added paragraph for the benchmark.")
        with profiled(args.profile, "re-ingest after editing one document"), timed() as again:
            changed = ingest(settings, embedder=embedder)
        assert changed.changed == [args.touch], changed.summary()

        questions = load_questions(args.questions)
        qa = QA.from_settings(settings, embedder=embedder)
        qa.warm_up()
        with profiled(args.profile, f"{len(questions)} asks"):
            embeds, asks = p50_pair(questions, lambda q: embedder.embed([q]), lambda q: qa.ask(q))
        # "?" makes each query new to the retriever's cache of recent query vectors.
        _, searches = p50_pair(questions, lambda q: None, lambda q: qa.search(q + "?"))
        served = http_bench(settings, questions)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    results: dict[str, Any] = {
        "documents": len(report.added),
        "chunks": report.chunks,
        "full_ingest_s": round(full.wall, 2),
        "encode_alone_s": round(encode.wall, 2),
        "ingest_over_encode": round(full.wall / encode.wall, 3),
        "ingest_over_encode_cpu": round(full.cpu / encode.cpu, 3),
        "reingest_s": round(again.wall, 2),
        "reingest_embedded": changed.embedded,
        "reingest_over_full": round(again.wall / full.wall, 4),
        "reingest_over_full_cpu": round(again.cpu / full.cpu, 4),
        "questions": len(questions),
        "query_embed_p50_ms": round(median_ms(embeds), 2),
        "ask_p50_ms": round(median_ms(asks), 2),
        "ask_over_embed": round(median_ms(asks) / median_ms(embeds), 3),
        "ask_over_embed_cpu": round(median_ms(asks, "cpu") / median_ms(embeds, "cpu"), 3),
        "search_p50_ms": round(median_ms(searches), 2),
        "server_ready_s": round(served["ready_s"], 1),
        "http_ask_p50_ms": round(served["http_p50_ms"], 2),
        "server_rss_mib": round(served["rss_after"] / 2**20, 1),
        "server_rss_ready_mib": round(served["rss_ready"] / 2**20, 1),
        "server_rss_peak_mib": round(served["rss_peak"] / 2**20, 1),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    r = results

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rows = [
        ("documents / chunks", f"{r['documents']} / {r['chunks']}", ""),
        ("full ingest", f"{r['full_ingest_s']:.1f} s", ""),
        ("model.encode alone, same texts", f"{r['encode_alone_s']:.1f} s", ""),
        (
            "full ingest ÷ encode  [≤ 1.15]",
            f"{r['ingest_over_encode']:.3f} (CPU {r['ingest_over_encode_cpu']:.3f})",
            verdict(r["ingest_over_encode"] <= 1.15),
        ),
        ("re-ingest, one provision edited", f"{r['reingest_s']:.2f} s", ""),
        (
            "re-ingest ÷ full  [≤ 0.10]",
            f"{r['reingest_over_full']:.4f} (CPU {r['reingest_over_full_cpu']:.4f})",
            verdict(r["reingest_over_full"] <= 0.10),
        ),
        ("query embedding p50", f"{r['query_embed_p50_ms']:.1f} ms", ""),
        ("search p50 (embedding + retrieval)", f"{r['search_p50_ms']:.1f} ms", ""),
        ("in-process ask p50", f"{r['ask_p50_ms']:.1f} ms", ""),
        (
            "ask ÷ query embedding  [≤ 2.0]",
            f"{r['ask_over_embed']:.2f} (CPU {r['ask_over_embed_cpu']:.2f})",
            verdict(r["ask_over_embed"] <= 2.0),
        ),
        ("HTTP POST /ask p50", f"{r['http_ask_p50_ms']:.1f} ms", ""),
        (
            "server RSS after warm-up  [≤ 1 GiB]",
            f"{r['server_rss_mib']:.0f} MiB (peak {r['server_rss_peak_mib']:.0f})",
            verdict(r["server_rss_mib"] <= 1024),
        ),
        ("load average before / after", f"{r['load_average']} on {r['cpus']} CPUs", ""),
    ]
    for name, value, ok in rows:
        print(f"{name:38} {value:34} {ok}")


if __name__ == "__main__":
    main()
