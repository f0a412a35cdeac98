"""Load smoke: `scripts/loadtest.py` runs 8 clients for 10 s against a live server on the small
real index; every request must succeed. (The benchmark, 32 clients for 60 s on the whole
corpus, is run by hand: see scripts/loadtest.py.)"""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.embed import Embedder

from .test_api import live_server, mini_app, mini_settings

LOADTEST = Path(__file__).resolve().parent.parent / "scripts" / "loadtest.py"
BENCH = LOADTEST.parent / "bench.py"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[str]:
    settings = mini_settings(tmp_path_factory.mktemp("load"), embedder)
    with live_server(mini_app(settings, embedder)) as url:
        yield url


def test_8_clients_for_10_seconds_get_no_errors(
    base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(LOADTEST), base_url, "--clients", "8", "--seconds", "10", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    with capsys.disabled():
        print(
            f"\nload smoke: {result['requests']} requests, {result['throughput_rps']} req/s, "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {result['errors']} errors"
        )
    assert result["errors"] == 0 and result["error_kinds"] == {}
    assert result["requests"] >= 20 and 9 <= result["seconds"] < 60
    assert result["p50_ms"] > 0 and result["p50_ms"] <= result["p99_ms"]


def test_the_load_script_refuses_a_server_that_is_not_there() -> None:
    done = subprocess.run(
        [sys.executable, str(LOADTEST), "http://127.0.0.1:9", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.startswith("loadtest: ")


def test_the_benchmark_runs_the_baseline_from_its_own_checkout(tmp_path: Path) -> None:
    """`scripts/bench.py` compares this tree with a baseline commit; its processes must run
    the baseline's code. Started from this repository, `python -m qa` imported this tree
    instead (the working directory comes before PYTHONPATH), and the 'baseline' was this tree."""
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCH.parent))
    code = bench.checkout("HEAD", tmp_path / "baseline-code")
    try:
        # The checkout's command line now fails on purpose; this tree's does not.
        (code / "qa" / "__main__.py").write_text("raise SystemExit('the baseline ran')\n")
        assert bench.cli(["--help"], bench.env_for(tmp_path / "new")) > 0
        with pytest.raises(SystemExit, match="the baseline ran"):
            bench.cli(["--help"], bench.env_for(tmp_path / "old", code=code))
    finally:
        subprocess.run(
            ["git", "-C", str(BENCH.parent.parent), "worktree", "remove", "--force", str(code)],
            capture_output=True,
        )
