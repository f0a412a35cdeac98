"""The answer pipeline on the shared dev set with the real corpus and model (issue targets)."""

import json
from pathlib import Path

from click.testing import CliRunner

from qa.cli import cli
from qa.config import Settings
from qa.evaluate import evaluate, load_items
from qa.pipeline import QA

from .conftest import REPO

DEV = REPO.parent / "shared" / "eval" / "dev.jsonl"


def test_dev_set_targets(real_index: Settings) -> None:
    qa = QA.from_settings(real_index)
    report = evaluate(load_items(DEV), lambda q: qa.ask(q, top_k=5), k=5)
    summary = report.summary()
    assert summary["hit@5"] >= 0.95, report.to_json()
    assert summary["abstain_unanswerable"] == 1.0, report.to_json()
    assert summary["abstain_answerable"] == 0.0, report.to_json()


def test_every_answer_keeps_the_citation_contract(real_index: Settings) -> None:
    qa = QA.from_settings(real_index)
    for item in load_items(DEV):
        answer = qa.ask(item.question)
        numbers = {c.n for c in answer.citations}
        markers = {int(m) for m in __import__("re").findall(r"\[(\d+)\]", answer.text)}
        assert markers <= numbers
        assert [c.n for c in answer.citations] == sorted(numbers)
        for c in answer.citations:
            assert all(part in c.text for part in c.quote.split(" … "))


def run(args: list[str], settings: Settings) -> tuple[int, str]:
    env = {"QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS_DIR": str(settings.corpus_dir)}
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output


def test_cli_ask_human_and_json(real_index: Settings) -> None:
    code, out = run(
        ["ask", "How long must a marketing authorisation holder keep ATMP traceability data?"],
        real_index,
    )
    assert code == 0, out
    assert "[1]" in out and "Sources:" in out and "Article 15" in out and "http" in out
    code, out = run(["ask", "Who won the 2018 FIFA World Cup?", "--json"], real_index)
    data = json.loads(out)
    assert code == 0 and data["abstained"] is True and data["citations"] == [] and data["related"]


def test_cli_ask_filters(real_index: Settings) -> None:
    code, out = run(
        ["ask", "How long must traceability data be kept?", "--jurisdiction", "UK", "--json"],
        real_index,
    )
    assert code == 0
    citations = json.loads(out)["citations"]
    assert citations and {c["jurisdiction"] for c in citations} == {"UK"}
    assert all(c["doc_id"].startswith("uksi-") for c in citations)


def test_cli_eval(real_index: Settings, tmp_path: Path) -> None:
    code, out = run(["eval", str(DEV)], real_index)
    assert code == 0, out
    assert out.splitlines()[0].split() == ["items", "18"]
    assert "hit@5" in out and "latency_p50_ms" in out
    code, out = run(["eval", str(DEV), "--json"], real_index)
    data = json.loads(out)
    assert data["summary"]["answerable"] == 15 and isinstance(data["misses"], list)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    code, out = run(["eval", str(bad)], real_index)
    assert code == 1 and "line 1" in out
