"""Hybrid retrieval over the small fixture corpus with the real model."""

from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.embed import Embedder
from qa.errors import UnknownDocumentError
from qa.pipeline import QA, ingest
from qa.retrieval.search import Filters, Weights, best_first

from .conftest import make_settings


@pytest.fixture(scope="module")
def mini_qa(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QA:
    import shutil

    from .conftest import DATA

    root = tmp_path_factory.mktemp("mini")
    shutil.copytree(DATA / "mini", root / "corpus")
    settings: Settings = make_settings(root)
    ingest(settings, embedder=embedder)
    return QA.from_settings(settings, embedder=embedder)


def test_hybrid_finds_the_provision(mini_qa: QA) -> None:
    best = mini_qa.search("How long must traceability records be kept?", k=3)[0]
    assert best.chunk.doc_id == "reg-demo" and best.section == "Article 2"
    assert best.dense > 0 and best.lexical > 0


def test_an_explicit_article_reference_wins(mini_qa: QA) -> None:
    passages = mini_qa.search("What does Article 3 of Regulation 2099/1 say?", k=3)
    assert passages[0].section == "Article 3"


def test_filters_restrict_jurisdiction_and_documents(mini_qa: QA) -> None:
    uk = mini_qa.search("licence records", k=10, filters=Filters(jurisdictions=frozenset({"UK"})))
    assert uk and {p.chunk.doc_id for p in uk} == {"si-demo"}
    only = mini_qa.search("records", k=10, filters=Filters(doc_ids=frozenset({"guideline-demo"})))
    assert {p.chunk.doc_id for p in only} == {"guideline-demo"}
    with pytest.raises(UnknownDocumentError, match="Unknown document id: nope"):
        mini_qa.search("records", k=5, filters=Filters(doc_ids=frozenset({"nope"})))


def test_dense_only_and_lexical_only_modes(mini_qa: QA) -> None:
    dense = mini_qa.search("batch records", k=3, weights=Weights(lexical=0))
    lexical = mini_qa.search("batch records", k=3, weights=Weights(dense=0, lexical=1))
    assert all(p.lexical == 0 for p in dense) and all(p.dense == 0 for p in lexical)
    assert lexical[0].chunk.provision.startswith("Schedule 1")


def test_rrf_fusion(mini_qa: QA) -> None:
    passages = mini_qa.search("keep traceability records", k=3, weights=Weights(fusion="rrf"))
    assert passages[0].chunk.doc_id == "reg-demo"
    assert [p.rank for p in passages] == [1, 2, 3]


def test_one_passage_per_provision(mini_qa: QA) -> None:
    passages = mini_qa.search("records", k=10)
    keys = [(p.chunk.doc_id, p.chunk.provision) for p in passages]
    assert len(keys) == len(set(keys))


def test_ask_answers_with_citations_and_abstains_on_unknown_names(mini_qa: QA) -> None:
    answer = mini_qa.ask("How long must the holder keep traceability records?")
    assert not answer.abstained and "30 years" in answer.text and "[1]" in answer.text
    assert answer.citations[0].section == "Article 2(1)" and answer.took_ms > 0
    abstained = mini_qa.ask("What is the list price of Kymriah in Germany?")
    assert abstained.abstained and "Kymriah" in abstained.text and abstained.related
    assert not abstained.citations


def test_topicality_reads_the_nearest_passages_of_a_small_index_too(mini_qa: QA) -> None:
    """16 passages: the nearest one counts, not ten (most of the index), so a question the
    texts answer stays above the off-topic line and an egg question falls below it."""
    retriever = mini_qa._retriever
    line = mini_qa.settings.off_topic_below
    on_topic = retriever.query_vector("What does the licence holder have to do?")
    assert retriever.topicality(on_topic) > line
    assert retriever.topicality(retriever.query_vector("How long should I boil an egg?")) < line


def test_reload_switches_to_a_new_index(mini_qa: QA, tmp_path: Path) -> None:
    before = mini_qa.index
    mini_qa.reload()
    assert mini_qa.index is not before
    assert len(mini_qa.index.chunks) == len(before.chunks)


def test_best_first_is_the_full_sort_s_head_ties_and_all() -> None:
    """The partial sort behind the passage pool gives exactly what sorting every chunk gives,
    ties (by official-before-uploaded, then position) and unreachable chunks included."""

    rng = np.random.default_rng(7)
    for trial in range(200):
        n = int(rng.integers(1, 60))
        scores = rng.integers(0, 6, n).astype(np.float32)  # few values: many ties
        scores[rng.random(n) < 0.2] = -np.inf  # chunks a filter excludes
        uploaded = rng.integers(0, 2, n).astype(np.int8)
        for k in (1, 3, n // 2 + 1, n, n + 5):
            assert (
                best_first(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()
            ), (trial, k)
            assert (
                best_first(scores, k, uploaded).tolist()
                == np.lexsort((uploaded, -scores))[:k].tolist()
            ), (trial, k)


def test_an_amending_instrument_newer_than_the_held_act_it_amends_is_not_penalised() -> None:
    from qa.index import DocumentRecord
    from qa.retrieval.search import _amends_older_text

    def record(doc_id: str, date: str, amends: tuple[str, ...] = ()) -> DocumentRecord:
        return DocumentRecord(
            doc_id, doc_id, doc_id, f"{doc_id}.md", "0", 1, version_date=date, amends=amends
        )

    records = {
        "act-2020": record("act-2020", "2020-12-31"),
        "si-2025": record("si-2025", "2025-04-28", ("act-2020",)),
        "si-2010": record("si-2010", "2010-07-21", ("act-2020", "not-held")),
    }
    assert _amends_older_text(records["si-2025"], records)
    assert not _amends_older_text(records["si-2010"], records)
