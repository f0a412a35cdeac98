import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import cli
from qa.config import Settings

from .conftest import SOURCES


def run(args: list[str], settings_env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=settings_env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "QA_CORPUS_DIR": str(tmp_path / "corpus"),
        "QA_INDEX_DIR": str(tmp_path / "index"),
        "QA_SOURCES_FILE": str(SOURCES),
        "QA_DOWNLOAD_TIMEOUT_S": "2",
    }


def real_env(settings: Settings) -> dict[str, str]:
    return {"QA_INDEX_DIR": str(settings.index_dir), "QA_CORPUS_DIR": str(settings.corpus_dir)}


def test_corpus_fetch_from_mirror_is_idempotent(
    env_for: dict[str, str], shared_corpus: Path, tmp_path: Path
) -> None:
    code, out = run(["corpus", "fetch", "--mirror", str(shared_corpus)], env_for)
    assert code == 0, out
    lines = out.splitlines()
    assert sum(line.startswith("copied") for line in lines) == 19
    assert "19 of 24 documents" in lines[-1]
    assert (tmp_path / "corpus" / "eu" / "32007R1394.md").exists()
    code, out = run(["corpus", "fetch", "--mirror", str(shared_corpus)], env_for)
    assert code == 0 and sum(line.startswith("present") for line in out.splitlines()) == 19


def test_corpus_fetch_rejects_a_missing_mirror(env_for: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["corpus", "fetch", "--mirror", str(tmp_path / "nope")], env=env_for
    )
    assert result.exit_code == 2 and "is not a directory" in result.output


def test_ingest_prints_a_summary(env_for: dict[str, str], mini_corpus: Path) -> None:
    code, out = run(["ingest", "-q"], env_for)
    assert code == 0, out
    assert "3 added, 0 changed, 0 unchanged, 0 removed, 0 failed documents" in out
    code, out = run(["ingest", "-q"], env_for)
    assert "0 added, 0 changed, 3 unchanged" in out and "0 embedded" in out


def test_search_json(real_index: Settings) -> None:
    code, out = run(
        ["search", "How long must traceability data for an ATMP be kept?", "-k", "3", "--json"],
        real_env(real_index),
    )
    assert code == 0, out
    results = json.loads(out)["results"]
    assert len(results) == 3
    assert set(results[0]) == {
        "rank",
        "score",
        "chunk_id",
        "doc_id",
        "title",
        "short_title",
        "section",
        "page",
        "url",
        "text",
        "origin",
    }
    assert {r["origin"] for r in results} == {"official mirror"}
    assert any(
        r["doc_id"] == "32007R1394" and r["section"].startswith("Article 15") for r in results
    )


def test_search_text_output(real_index: Settings) -> None:
    code, out = run(["search", "hospital exemption", "-k", "2"], real_env(real_index))
    assert code == 0 and out.startswith("[1] ") and "[2] " in out and "http" in out


def test_docs_json(real_index: Settings) -> None:
    code, out = run(["docs", "--json"], real_env(real_index))
    data = json.loads(out)
    assert code == 0 and len(data["documents"]) == 19 and data["chunks"] > 1000
    by_id = {d["doc_id"]: d for d in data["documents"]}
    assert by_id["uksi-2012-1916"]["status"] == "excerpt"
    assert by_id["uksi-2012-1916"]["caveat"].startswith("HMR 2012: excerpts, as at 2013-11-11")
    assert by_id["uksi-2025-538"]["amends"] == ["uksi-2004-1031"]
    assert by_id["32006R0507"]["status"] == "current" and by_id["32006R0507"]["caveat"] == ""
    code, out = run(["docs"], real_env(real_index))
    assert "32007R1394" in out and out.splitlines()[-1].startswith("19 documents")
    hmr = next(i for i, line in enumerate(out.splitlines()) if line.startswith("uksi-2012-1916"))
    assert "excerpt" in out.splitlines()[hmr]
    assert "caveat: HMR 2012: excerpts" in out.splitlines()[hmr + 1]


@pytest.mark.parametrize("args", [["search", "anything"], ["docs"], ["serve", "--port", "8765"]])
def test_missing_index_is_one_line_and_exit_1(env_for: dict[str, str], args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, env=env_for)
    assert result.exit_code == 1
    assert result.output.startswith("Error: No index at") and "atmp-qa ingest" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_bad_settings_are_one_line(env_for: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["docs"], env={**env_for, "QA_CHUNK_MAX_CHARS": "nope"})
    assert (
        result.exit_code == 1
        and "Invalid settings" in result.output
        and "Traceback" not in result.output
    )


def test_empty_query_is_a_usage_error(real_index: Settings) -> None:
    result = CliRunner().invoke(cli, ["search", "   "], env=real_env(real_index))
    assert result.exit_code == 2 and "the query is empty" in result.output
