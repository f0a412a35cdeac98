"""Search over the whole shared corpus with the real model (index built once per session)."""

from qa.config import Settings
from qa.index import Index
from qa.pipeline import QA


def test_traceability_question_finds_article_15(real_index: Settings) -> None:
    qa = QA.from_settings(real_index)
    passages = qa.search("How long must traceability data for an ATMP be kept?", k=3)
    assert any(
        p.chunk.doc_id == "32007R1394" and p.chunk.provision == "Article 15" for p in passages
    )
    assert [p.rank for p in passages] == [1, 2, 3]
    assert passages[0].score >= passages[-1].score


def test_whole_corpus_is_indexed_with_citations(real_index: Settings) -> None:
    index = Index.load(real_index.index_dir)
    assert len(index.manifest.documents) == 19
    assert all(c.url and c.section and c.jurisdiction in ("EU", "UK") for c in index.chunks)
    hmr = index.manifest.documents["uksi-2012-1916"]
    assert hmr.jurisdiction == "UK" and hmr.url == "https://www.legislation.gov.uk/uksi/2012/1916"
