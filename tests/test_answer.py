from collections.abc import Sequence

import numpy as np
import pytest

from qa.answer import (
    Answer,
    Citation,
    abstain,
    check_citations,
    clean_quote,
    compose_answer,
    units,
)
from qa.chunking import Chunk
from qa.embed import SentenceTransformerEmbedder
from qa.retrieve import Passage


def chunk(text: str, *, ordinal: int = 0, section: str = "Article 15(4)") -> Chunk:
    return Chunk(
        chunk_id=f"demo:{ordinal}",
        doc_id="demo",
        title="Demo Regulation",
        short_title="Demo Regulation",
        jurisdiction="EU",
        url="http://example.org",
        section=section,
        provision=section.split("(")[0],
        heading="Traceability",
        heading_path=(),
        text=text,
        start=0,
        end=len(text),
        page=None,
        page_end=None,
        ordinal=ordinal,
    )


PASSAGES = [
    Passage(
        1,
        1.0,
        chunk(
            "4. The holder shall keep the data for a minimum of 30 years after the "
            "expiry date of the product. The Commission may require longer."
        ),
    ),
    Passage(
        2,
        0.8,
        chunk(
            "The hospital shall keep records linking each product to its patient.",
            ordinal=5,
            section="Article 15(2)",
        ),
    ),
    Passage(
        3,
        0.5,
        chunk(
            "This Regulation shall enter into force on the twentieth day.",
            ordinal=9,
            section="Article 30",
        ),
    ),
]


def lexical_idf(term: str) -> float:
    return 1.0


@pytest.fixture(scope="module")
def real_embed(embedder: SentenceTransformerEmbedder):
    return embedder


def test_units_split_sentences_and_join_short_list_items() -> None:
    text = (
        "Manipulations:\n- —cutting,\n- —grinding,\n- —shaping.\n"
        "The Agency shall decide. It shall publish."
    )
    spans = [text[a:b] for a, b in units(text)]
    assert spans[0].startswith("Manipulations:") and "—shaping." in spans[0]
    assert spans[-2:] == ["The Agency shall decide.", "It shall publish."]


def test_clean_quote_drops_list_dashes() -> None:
    assert (
        clean_quote("- (a) the product name;\n- (b) the batch")
        == "(a) the product name; (b) the batch"
    )


def test_answer_quotes_are_verbatim_and_markers_name_citations(
    real_embed: SentenceTransformerEmbedder,
) -> None:
    question = "How long must the holder keep traceability data?"
    answer = compose_answer(
        question,
        PASSAGES,
        query_vector=real_embed.embed([question])[0],
        embed=real_embed.embed,
        idf=lexical_idf,
    )
    assert not answer.abstained
    assert [c.n for c in answer.citations] == [1, 2, 3]
    assert answer.citations[0].section == "Article 15(4)"
    assert "minimum of 30 years" in answer.text and "[1]" in answer.text
    for citation in answer.citations:
        assert citation.quote and all(part in citation.text for part in citation.quote.split(" … "))
    check_citations(answer)


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    # Seam for speed: every unit equally similar, so lexical overlap decides.
    vectors = np.ones((len(texts), 4), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_at_most_three_sentences_are_used() -> None:
    text = " ".join(f"The holder shall keep record {i} of the data." for i in range(8))
    answer = compose_answer(
        "Which records of the data must the holder keep?",
        [Passage(1, 1.0, chunk(text))],
        query_vector=fake_embed(["q"])[0],
        embed=fake_embed,
        idf=lexical_idf,
    )
    assert answer.text.count("[1]") <= 3


def citation(n: int, quote: str, text: str) -> Citation:
    return Citation(n, f"c{n}", "demo", "Demo", "Demo", "Article 1", None, None, quote, text, 1.0)


def test_check_citations_rejects_unknown_markers() -> None:
    answer = Answer("q", "It says so [2].", False, (citation(1, "It says so.", "It says so."),))
    with pytest.raises(ValueError, match=r"\[2\]"):
        check_citations(answer)


def test_check_citations_rejects_quotes_not_in_the_passage() -> None:
    answer = Answer(
        "q", "It says so [1].", False, (citation(1, "It says otherwise.", "It says so."),)
    )
    with pytest.raises(ValueError, match="not verbatim"):
        check_citations(answer)


def test_abstention_has_no_markers_and_lists_related_passages() -> None:
    answer = abstain("Who won the cup?", PASSAGES, 0.1, unknown=["Cup"])
    assert answer.abstained and not answer.citations
    assert "[" not in answer.text and "“Cup”" in answer.text
    assert [c.n for c in answer.related] == [1, 2, 3] and answer.related[0].quote == ""
    check_citations(answer)


def test_joined_passage_keeps_pieces_in_document_order() -> None:
    first, later = chunk("1. First paragraph.", ordinal=3), chunk("4. Fourth paragraph.", ordinal=6)
    passage = Passage(1, 1.0, later, siblings=(first,))
    assert passage.text == "1. First paragraph.\n[…]\n4. Fourth paragraph."
    assert passage.section == "Article 15"
