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


def test_the_definition_signal_marks_the_chunks_defining_the_longest_named_term(
    real_index: Settings,
) -> None:
    """The term → chunks map gives, for every chunk, what scanning each chunk's definitions
    for the longest term the question names in full gives (the rule it replaced)."""
    import numpy as np

    from qa.retrieval.query import defined_terms, names_term

    qa = QA.from_settings(real_index)
    retriever = qa._retriever
    chunks = retriever.index.chunks

    def scanned(stems: list[str]) -> np.ndarray:
        best = [
            max(
                ((len(t), w) for t, w in defined_terms(c.text) if names_term(stems, t)),
                default=(0, 0.0),
            )
            for c in chunks
        ]
        longest = max(size for size, _ in best)
        return np.array([w if longest and size == longest else 0.0 for size, w in best])

    questions = [
        "What is an advanced therapy medicinal product?",
        "How is a combined advanced therapy medicinal product defined?",
        "What does 'tissue engineered product' mean?",
        "What is a medicinal product?",
        "Define investigational medicinal product",
        "What is a substance of human origin?",
        "What is the meaning of marathon training?",
    ]
    marked = 0
    for question in questions:
        stems = list(qa.analyse(question).term_stems)
        signal = retriever._definition_match(stems)
        assert np.array_equal(signal, scanned(stems).astype(np.float32)), question
        marked += bool(signal.any())
    assert marked >= 5  # the questions name defined terms, except the last
