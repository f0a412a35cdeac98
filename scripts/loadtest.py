"""Load test: N concurrent clients asking `POST /ask` for T seconds against a running server.

Usage:
  python scripts/loadtest.py http://127.0.0.1:8000 [--clients 32] [--seconds 60]
                             [--questions scripts/data/tune.jsonl] [--top-k 5] [--json]

Each client sends one question after another (taking turns through the question file, so
the server's cache of recent questions rarely helps) until the time is up; requests still in
flight then finish (each has a timeout). Prints throughput, latency percentiles, the server's
own `took_ms` and the error count; exits 1 if any request failed. Only ever point it at your
own server on this machine (loopback).
"""

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "data" / "tune.jsonl"
MAX_CLIENTS = 256
MAX_SECONDS = 3600


@dataclass
class Result:
    """What a load run measured."""

    url: str
    clients: int
    seconds: float
    requests: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    throughput_rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_p50_ms: float = 0.0

    def lines(self) -> list[str]:
        """The summary for humans."""
        return [
            f"target      {self.url}/ask",
            f"clients     {self.clients}",
            f"duration    {self.seconds:.1f} s",
            f"requests    {self.requests} ({self.errors} errors)",
            f"throughput  {self.throughput_rps:.1f} requests/s",
            f"latency     p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, "
            f"p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms",
            f"server      took_ms p50 {self.server_p50_ms:.0f} ms (time spent answering)",
            *(f"error       {n} × {kind}" for kind, n in sorted(self.error_kinds.items())),
        ]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..1) of `values`; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def load_questions(path: Path) -> list[str]:
    """The `question` field of each line of a JSONL file (or each non-empty line of text)."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        questions.append(json.loads(line)["question"] if line.lstrip().startswith("{") else line)
    if not questions:
        raise SystemExit(f"{path} holds no questions")
    return questions


async def run_load(
    url: str,
    *,
    clients: int,
    seconds: float,
    questions: list[str],
    top_k: int = 5,
    timeout_s: float = 60.0,
) -> Result:
    """Drive `clients` concurrent askers for `seconds`; returns the measurements."""
    if not 1 <= clients <= MAX_CLIENTS or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"clients must be 1-{MAX_CLIENTS} and seconds 0-{MAX_SECONDS}")
    url = url.rstrip("/")
    latencies: list[float] = []
    took: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:
        ready = await http.get("/ready")
        if ready.status_code != 200:
            raise SystemExit(f"{url}/ready answered {ready.status_code}: {ready.text[:200]}")
        await http.post("/ask", json={"question": questions[0], "top_k": top_k})  # warm-up
        started = time.perf_counter()
        deadline = started + seconds

        async def asker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                question = questions[i % len(questions)]
                i += clients
                sent = time.perf_counter()
                try:
                    response = await http.post("/ask", json={"question": question, "top_k": top_k})
                except httpx.HTTPError as ex:
                    errors[type(ex).__name__] += 1
                    continue
                if response.status_code != 200:
                    errors[f"HTTP {response.status_code}"] += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                took.append(float(response.json().get("took_ms", 0.0)))

        await asyncio.gather(*(asker(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    failed = sum(errors.values())
    return Result(
        url=url,
        clients=clients,
        seconds=round(elapsed, 2),
        requests=len(latencies) + failed,
        errors=failed,
        error_kinds=dict(errors),
        throughput_rps=round(len(latencies) / elapsed, 2),
        p50_ms=round(percentile(latencies, 0.50), 1),
        p95_ms=round(percentile(latencies, 0.95), 1),
        p99_ms=round(percentile(latencies, 0.99), 1),
        max_ms=round(max(latencies, default=0.0), 1),
        server_p50_ms=round(percentile(took, 0.50), 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to run (60)")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL file")
    parser.add_argument("--top-k", type=int, default=5, help="top_k sent with each question")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(
            run_load(
                args.url,
                clients=args.clients,
                seconds=args.seconds,
                questions=load_questions(args.questions),
                top_k=args.top_k,
            )
        )
    except (ValueError, httpx.HTTPError) as ex:
        print(f"loadtest: {ex}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(result), indent=2) if args.json else "\n".join(result.lines()))
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
