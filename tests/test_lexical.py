from pathlib import Path

import numpy as np

from qa.lexical import LexicalIndex, terms, tokenize


def test_tokenize_stems_and_folds_spelling() -> None:
    assert tokenize("The holder shall keep traceability data") == [
        "holder",
        "keep",
        "traceabl",
        "data",
    ]
    assert tokenize("authorization") == tokenize("authorisation")
    assert tokenize("kept") == tokenize("keep")
    assert tokenize("ATMPs") == ["atmp"]


def test_terms_add_word_pairs() -> None:
    assert terms("marketing authorisation holder") == [
        "market",
        "authoris",
        "holder",
        "market_authoris",
        "authoris_holder",
    ]


def test_bm25_ranks_the_passage_with_the_words_and_phrases() -> None:
    texts = [
        "The marketing authorisation holder shall keep the data for 30 years.",
        "The holder of a licence shall keep records of marketing.",
        "Hospitals shall keep a register of patients.",
    ]
    index = LexicalIndex.build(texts)
    scores = index.scores(terms("How long must the marketing authorisation holder keep data?"))
    assert int(np.argmax(scores)) == 0
    assert scores[0] > scores[1] > scores[2] >= 0
    assert not index.scores(terms("football")).any()


def test_idf_is_highest_for_unseen_words() -> None:
    index = LexicalIndex.build(["gene therapy", "cell therapy", "tissue product"])
    assert index.idf("zzz") > index.idf("gene") > index.idf("therapi")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = LexicalIndex.build(
        ["gene therapy product", "somatic cell therapy", "tissue engineered"]
    )
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    query = terms("cell therapy")
    assert np.allclose(loaded.scores(query), index.scores(query))
    assert loaded.document_frequency == index.document_frequency and loaded.size == 3
