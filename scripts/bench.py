"""Serving and ingest performance, measured in one run as ratios (issue 12's targets in brackets).

Everything runs on the whole corpus in a temporary folder, against real `atmp-qa serve`
processes on loopback, and, for the comparisons with today's main, against a checkout of a
baseline commit beside this one (`--baseline`, default: main when issue 12 was filed), started
with the same Python so both see the same machine in the same minutes:

  in-process ask p50 ÷ bare query embedding p50, same runtime         [≤ 2.0]
  HTTP POST /ask p50 / p95, one client (1 worker)
  throughput and p50/p95/p99 at 1, 8, 32, 64 clients, 1 and 2 workers  [32: ≥ 4× baseline,
                                                                         p95 ≤ 25× single p50,
                                                                         0 errors; 64: 0 errors]
  full ingest ÷ bare passage encoding, same runtime                    [≤ 1.15]
    (the mean of two ingests, one before and one after the encoding)
  full ingest, baseline ÷ this                                         [≥ 2]
  RSS per worker after the load                                        [≤ 700 MiB]
  two workers switching to a build published mid-load                  [≤ 5 s, 0 errors, 0 mixed]
  CLI `ask` wall time without and with a running server

Usage: python scripts/bench.py [--mirror ../shared/corpus] [--baseline de5d846]
                               [--seconds 8] [--no-baseline] [--json]
       python scripts/bench.py --report RUN.json      (the table of a saved --json run)

The load generator runs in this process on the same cores as the servers (so absolute
throughput is lower than with a separate client machine, for the baseline and this alike).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadtest import percentile, run_load  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.index import Index  # noqa: E402
from qa.pipeline import QA, load_embedder  # noqa: E402
from qa.sources import fetch_corpus, load_sources  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = REPO / "scripts" / "data" / "tune.jsonl"
# Main when issue 12 was filed (the code its figures describe): torch, a second model call per
# answer, one query thread, one process.
BASELINE = "de5d846"
CLIENTS = (1, 8, 32, 64)
TOUCHED = "uksi-2025-87"


def questions() -> list[str]:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_pids(pid: int) -> list[int]:
    """The uvicorn worker processes under `pid` (not multiprocessing's resource tracker nor a
    document reader), or `pid` itself when it serves alone."""
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        kids = []
    workers = []
    for kid in kids:
        try:
            command = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            workers.append(kid)
    return workers or [pid]


def env_for(root: Path, *, code: Path = REPO, **extra: str) -> dict[str, str]:
    """The environment of an `atmp-qa` process over the bench's folders, running `code`.

    `cli` and `server` also start the process in `code`: `python -m` puts the working
    directory first on the import path, ahead of PYTHONPATH, so a baseline started from this
    checkout would import this checkout's `qa` and measure this tree twice."""
    env = {
        **os.environ,
        "PYTHONPATH": str(code),
        "QA_CORPUS_DIR": str(root / "corpus"),
        "QA_INDEX_DIR": str(root / "index"),
        "QA_SOURCES_FILE": str(REPO / "corpus" / "sources.toml"),
        "QA_INDEX_POLL_S": "0.5",
        **extra,
    }
    return env


def cli(args: list[str], env: dict[str, str], *, timeout: float = 900) -> float:
    """Run `python -m qa …`; returns its wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "qa", *args],
        cwd=env["PYTHONPATH"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise SystemExit(f"atmp-qa {' '.join(args)} failed: {done.stderr[-1500:]}")
    return time.perf_counter() - started


@contextmanager
def server(env: dict[str, str], *, workers: int | None) -> Iterator[tuple[str, int]]:
    """`atmp-qa serve` (with `--workers` when given); yields (url, pid) once it is ready."""
    port = free_port()
    args = [sys.executable, "-m", "qa", "serve", "--port", str(port)]
    if workers is not None:
        args += ["--workers", str(workers)]
    proc = subprocess.Popen(
        args,
        cwd=env["PYTHONPATH"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"atmp-qa serve exited: {err[-800:]}")
            if time.monotonic() > deadline:
                raise SystemExit("atmp-qa serve did not become ready in 300 s")
            try:
                seen = {
                    httpx.get(f"{url}/ready", timeout=2).headers.get("x-atmp-worker", "one")
                    for _ in range(20)
                }
                if len(seen) >= (workers or 1):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def sequential(url: str, asked: list[str]) -> list[float]:
    """Latencies (ms) of one client asking each question in turn."""
    out = []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post("/ask", json={"question": asked[0]})
        for question in asked:
            sent = time.perf_counter()
            client.post("/ask", json={"question": question}).raise_for_status()
            out.append((time.perf_counter() - sent) * 1000)
    return out


def load(url: str, clients: int, seconds: float, asked: list[str]) -> dict[str, Any]:
    result = asyncio.run(run_load(url, clients=clients, seconds=seconds, questions=asked))
    return {
        "clients": clients,
        "rps": result.throughput_rps,
        "p50": result.p50_ms,
        "p95": result.p95_ms,
        "p99": result.p99_ms,
        "errors": result.errors,
        "error_kinds": result.error_kinds,  # "ReadTimeout": 1, "HTTP 503": 2, …
        "requests": result.requests,
    }


def errors_text(x: dict[str, Any]) -> str:
    """The errors of a load run with their kinds: "2 errors (ReadTimeout 1, HTTP 503 1)"."""
    kinds = ", ".join(f"{kind} {n}" for kind, n in x.get("error_kinds", {}).items())
    return f"{x['errors']} errors" + (f" ({kinds})" if kinds else "")


def worker_rss(pid: int) -> list[dict[str, float]]:
    """Resident and peak memory of each worker."""
    pids = worker_pids(pid)
    return [
        {
            "pid": p,
            "rss_mib": round(status_kib(p, "VmRSS") / 1024, 1),
            "peak_mib": round(status_kib(p, "VmHWM") / 1024, 1),
        }
        for p in pids
    ]


def switch_under_load(root: Path, url: str, asked: list[str], seconds: float) -> dict[str, Any]:
    """32 clients ask while a CLI ingest publishes a new build; when did each worker switch,
    did any request fail, did any answer mix builds?"""
    index_dir = root / "index"
    old = Index.load(index_dir)
    old_build, old_ids = old.path.name if old.path else "", {c.chunk_id for c in old.chunks}
    del old
    seen: list[tuple[float, str, str, list[str]]] = []
    errors: list[str] = []
    stop = threading.Event()

    def asker(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = n
            while not stop.is_set():
                i += 32
                try:
                    r = client.post("/ask", json={"question": asked[i % len(asked)]})
                except httpx.HTTPError as ex:
                    errors.append(type(ex).__name__)
                    continue
                if r.status_code != 200:
                    errors.append(f"HTTP {r.status_code}")
                    continue
                body = r.json()
                ids = [c["chunk_id"] for c in body["citations"] + body["related"]]
                seen.append(
                    (time.monotonic(), body["index_build"], r.headers["x-atmp-worker"], ids)
                )

    threads = [threading.Thread(target=asker, args=(n,), daemon=True) for n in range(32)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 2)
    touched = next((root / "corpus").rglob(f"{TOUCHED}.*"))
    touched.write_text(touched.read_text() + "\n\nA paragraph added for the benchmark.\n")
    reingest_s = cli(["ingest"], env_for(root))
    published = time.monotonic()
    link = os.readlink(index_dir / "current")
    new = Index.load(index_dir)
    new_build, new_ids = Path(link).name, {c.chunk_id for c in new.chunks}
    del new
    time.sleep(seconds / 2)
    stop.set()
    for thread in threads:
        thread.join(60)
    first_new: dict[str, float] = {}
    for at, build, worker, _ in seen:
        if build == new_build and worker not in first_new:
            first_new[worker] = at - published
    mixed = sum(
        1
        for _, build, _, ids in seen
        if build not in (old_build, new_build)
        or not set(ids) <= (new_ids if build == new_build else old_ids)
    )
    workers = {worker for _, _, worker, _ in seen}
    return {
        "requests": len(seen) + len(errors),
        "errors": len(errors),
        "mixed": mixed,
        "workers": len(workers),
        "switched": len(first_new),
        # the CLI's ingest ends a moment after it publishes, so this is an upper bound
        "switch_s": round(max(first_new.values()), 2) if len(first_new) == len(workers) else None,
        "reingest_cli_s": round(reingest_s, 2),
    }


def checkout(rev: str, into: Path) -> Path:
    """`rev` checked out at `into`; stops unless a process started there imports its `qa`."""
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(into), rev],
        check=True,
        capture_output=True,
    )
    imported = subprocess.run(
        [sys.executable, "-c", "import qa; print(qa.__file__)"],
        cwd=into,
        env={**os.environ, "PYTHONPATH": str(into)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(imported).resolve().is_relative_to(into.resolve()):
        raise SystemExit(f"the baseline imports {imported}, not its own checkout {into}")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mirror", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline runs")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each load run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--report", type=Path, metavar="RUN.json", help="only print the table of a saved --json run"
    )
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text(encoding="utf-8"))))
        return

    asked = questions()
    scratch = Path(tempfile.mkdtemp(prefix="atmp-bench-"))
    root, base_root = scratch / "new", scratch / "baseline"
    r: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    old_code: Path | None = None
    try:
        for folder in (root, base_root):
            fetch_corpus(
                load_sources(REPO / "corpus" / "sources.toml"),
                folder / "corpus",
                mirror=args.mirror,
                timeout_s=1,
            )
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            corpus_dir=root / "corpus",
            index_dir=root / "index",
            sources_file=REPO / "corpus" / "sources.toml",
        )
        # The ONNX export happens once per model; keep it out of the ingest timing.
        embedder = load_embedder(settings)
        embedder.embed(["warm-up"])
        r["runtime"] = embedder.model_name

        # -- ingest: this vs bare encoding vs the baseline ----------------------------------
        # Ingest, bare encoding, ingest again: this machine's speed drifts over minutes, and
        # the mean of two ingests either side of the encoding cancels a steady drift.
        first_ingest_s = cli(["ingest", "--rebuild"], env_for(root))
        index = Index.load(settings.index_dir)
        texts = [c.embed_text for c in index.chunks]
        r["chunks"] = len(texts)
        started = time.perf_counter()
        embedder.embed(texts)
        r["encode_s"] = time.perf_counter() - started
        r["ingest_runs"] = [first_ingest_s, cli(["ingest", "--rebuild"], env_for(root))]
        r["ingest_s"] = statistics.mean(r["ingest_runs"])
        if not args.no_baseline:
            old_code = checkout(args.baseline, scratch / "baseline-code")
            r["baseline_ingest_s"] = cli(["ingest", "--rebuild"], env_for(base_root, code=old_code))

        # -- single queries: ask vs the bare embedding, in one process ------------------------
        qa = QA.from_settings(settings, embedder=embedder)
        qa.warm_up()
        embeds, asks = [], []
        for question in asked:
            t = time.perf_counter()
            embedder.embed([question])
            embeds.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            qa.ask(question)
            asks.append((time.perf_counter() - t) * 1000)
        r["embed_p50"], r["ask_p50"] = statistics.median(embeds), statistics.median(asks)
        r["ask_p95"] = percentile(asks, 0.95)
        del qa, index

        # -- servers under load ---------------------------------------------------------------
        r["loads"] = {}
        for workers in (1, 2):
            with server(env_for(root), workers=workers) as (url, pid):
                if workers == 1:
                    single = sequential(url, asked)
                    r["http_p50"], r["http_p95"] = (
                        statistics.median(single),
                        percentile(single, 0.95),
                    )
                    r["cli_ask_with_server_s"] = cli(
                        ["ask", "--server", url, asked[0]], env_for(root)
                    )
                r["loads"][workers] = [load(url, n, args.seconds, asked) for n in CLIENTS]
                r[f"rss_{workers}"] = worker_rss(pid)
                if workers == 2:
                    r["switch"] = switch_under_load(root, url, asked, 2 * args.seconds)
        r["cli_ask_s"] = cli(["ask", asked[0]], env_for(root))
        if old_code is not None:
            with server(env_for(base_root, code=old_code), workers=None) as (url, pid):
                r["baseline_loads"] = [load(url, n, args.seconds, asked) for n in (32, 64)]
                r["baseline_rss"] = worker_rss(pid)
            r["baseline_cli_ask_s"] = cli(["ask", asked[0]], env_for(base_root, code=old_code))
        r["load_after"] = os.getloadavg()[0]
    finally:
        if old_code is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_code)],
                capture_output=True,
            )
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(r, indent=2) if args.json else report(r))


def report(r: dict[str, Any]) -> str:
    """The results as a Markdown table, with each target and whether it was met."""

    def ok(met: bool) -> str:
        return "met" if met else "MISSED"

    rows = [
        ("runtime / passages", f"{r['runtime']} / {r['chunks']}", ""),
        ("bare query embedding p50", f"{r['embed_p50']:.1f} ms", ""),
        ("in-process ask p50 / p95", f"{r['ask_p50']:.1f} / {r['ask_p95']:.1f} ms", ""),
        (
            "ask p50 ÷ query embedding p50 [≤ 2.0]",
            f"{r['ask_p50'] / r['embed_p50']:.2f}",
            ok(r["ask_p50"] / r["embed_p50"] <= 2.0),
        ),
        ("HTTP /ask p50 / p95, one client", f"{r['http_p50']:.1f} / {r['http_p95']:.1f} ms", ""),
        (
            "HTTP /ask p50 ÷ query embedding p50",
            f"{r['http_p50'] / r['embed_p50']:.2f}",
            "",
        ),
    ]
    base32 = next((x for x in r.get("baseline_loads", []) if x["clients"] == 32), None)
    for workers, runs in r["loads"].items():
        for x in runs:
            rows.append(
                (
                    f"{workers} worker{'s' if int(workers) > 1 else ''}, {x['clients']} clients",
                    f"{x['rps']:.0f} req/s, p50 {x['p50']:.0f} / p95 {x['p95']:.0f} / "
                    f"p99 {x['p99']:.0f} ms, {errors_text(x)}",
                    "",
                )
            )
    best32 = max(x["rps"] for runs in r["loads"].values() for x in runs if x["clients"] == 32)
    p95_32 = min(x["p95"] for runs in r["loads"].values() for x in runs if x["clients"] == 32)
    errors = sum(x["errors"] for runs in r["loads"].values() for x in runs)
    if base32 is not None:
        for x in r["baseline_loads"]:
            rows.append(
                (
                    f"baseline, {x['clients']} clients",
                    f"{x['rps']:.0f} req/s, p50 {x['p50']:.0f} / p95 {x['p95']:.0f} / "
                    f"p99 {x['p99']:.0f} ms, {errors_text(x)}",
                    "",
                )
            )
        rows.append(
            (
                "32 clients: throughput ÷ baseline [≥ 4]",
                f"{best32 / base32['rps']:.2f}",
                ok(best32 / base32["rps"] >= 4),
            )
        )
    rows += [
        (
            "32 clients: p95 ÷ single HTTP p50 [≤ 25]",
            f"{p95_32 / r['http_p50']:.1f}",
            ok(p95_32 / r["http_p50"] <= 25),
        ),
        ("errors in all load runs [0]", str(errors), ok(errors == 0)),
        (
            "full ingest (CLI, --rebuild), before / after the encoding"
            if "ingest_runs" in r
            else "full ingest (CLI, --rebuild)",
            f"{r['ingest_s']:.1f} s"
            + (
                " (mean of {:.1f} / {:.1f} s)".format(*r["ingest_runs"])
                if "ingest_runs" in r
                else ""
            ),
            "",
        ),
        ("bare passage encoding, same texts", f"{r['encode_s']:.1f} s", ""),
        (
            "ingest ÷ bare encoding [≤ 1.15]",
            f"{r['ingest_s'] / r['encode_s']:.2f}",
            ok(r["ingest_s"] / r["encode_s"] <= 1.15),
        ),
    ]
    if "baseline_ingest_s" in r:
        rows += [
            ("baseline full ingest", f"{r['baseline_ingest_s']:.1f} s", ""),
            (
                "baseline ingest ÷ this [≥ 2]",
                f"{r['baseline_ingest_s'] / r['ingest_s']:.2f}",
                ok(r["baseline_ingest_s"] / r["ingest_s"] >= 2),
            ),
        ]
    rss = [w["rss_mib"] for key in ("rss_1", "rss_2") for w in r.get(key, [])]
    rows.append(
        (
            "RSS per worker after load [≤ 700 MiB]",
            ", ".join(f"{w['rss_mib']:.0f} (peak {w['peak_mib']:.0f})" for w in r["rss_2"])
            + f" MiB; 1 worker {r['rss_1'][0]['rss_mib']:.0f}",
            ok(max(rss) <= 700),
        )
    )
    if "baseline_rss" in r:
        rows.append(("baseline RSS", f"{r['baseline_rss'][0]['rss_mib']:.0f} MiB", ""))
    s = r["switch"]
    rows.append(
        (
            "2 workers, new build mid-load [≤ 5 s, 0, 0]",
            f"switched {s['switched']}/{s['workers']} in {s['switch_s']} s; "
            f"{s['errors']} errors, {s['mixed']} mixed of {s['requests']}",
            ok(
                s["switch_s"] is not None
                and s["switch_s"] <= 5
                and s["errors"] == 0
                and s["mixed"] == 0
            ),
        )
    )
    rows += [
        ("CLI ask, no server", f"{r['cli_ask_s']:.1f} s", ""),
        ("CLI ask --server", f"{r['cli_ask_with_server_s']:.1f} s", ""),
    ]
    if "baseline_cli_ask_s" in r:
        rows.append(("baseline CLI ask, no server", f"{r['baseline_cli_ask_s']:.1f} s", ""))
    rows.append(
        (
            "load average before / after",
            f"{r['load_before']:.2f} / {r['load_after']:.2f} on {r['cpus']} CPUs",
            "",
        )
    )
    lines = ["| measure | value | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
