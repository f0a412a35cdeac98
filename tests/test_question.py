import pytest

from qa.retrieval.query import answer_types, defined_terms, finds_answer_type, unknown_terms


@pytest.mark.parametrize(
    ("question", "types"),
    [
        ("How long must traceability data be kept?", ["duration"]),
        ("Within how many days must the CAT decide?", ["duration", "quantity"]),
        ("By when did products have to comply?", ["date"]),
        ("What reduction of the fee do SMEs get?", ["quantity"]),
        ("Who chairs the committee?", []),
    ],
)
def test_answer_types(question: str, types: list[str]) -> None:
    assert answer_types(question) == types


def test_passages_stating_an_answer_type() -> None:
    assert finds_answer_type("duration", "for a minimum of 30 years after the expiry date")
    assert finds_answer_type("duration", "within seven days of becoming aware")
    assert finds_answer_type("date", "no later than 30 December 2012")
    assert not finds_answer_type("date", "the Agency shall publish guidelines")


def test_defined_terms_weigh_pointers_lower() -> None:
    text = (
        "(3)‘Low-intervention clinical trial’ means a clinical trial which fulfils conditions; "
        "“the Act” has the meaning given in regulation 2."
    )
    terms = defined_terms(text)
    assert (("low", "intervent", "clinic", "trial"), 1.0) in terms
    assert (("act",), 0.5) in terms


def test_a_question_names_a_term_only_with_its_words_in_order() -> None:
    from qa.lexical import tokenize
    from qa.retrieval.query import names_term

    stems = tokenize("What is an auxiliary medicinal product in a clinical trial?")
    assert names_term(stems, tuple(tokenize("auxiliary medicinal product")))
    assert not names_term(stems, tuple(tokenize("clinical trial medicinal product")))


def _pieces(word: str) -> int:
    # Stands in for the model's tokenizer: long made-up words split into many pieces.
    return 1 if len(word) < 8 else 4


def test_unknown_terms_are_names_and_rare_words_the_corpus_never_uses() -> None:
    known = {"price", "germani", "list", "dose", "adult", "licens", "special", "recommend"}
    assert unknown_terms(
        "What is the list price of Kymriah in Germany?", known=known, word_pieces=_pieces
    ) == ["Kymriah"]
    assert unknown_terms(
        "Recommended dose of paracetamol for adults?", known=known, word_pieces=_pieces
    ) == ["paracetamol"]
    # Known abbreviations, document names and negated known words are not unknown.
    assert (
        unknown_terms(
            "Does the ATMP rule in the HMR cover unlicensed specials?",
            known=known,
            word_pieces=_pieces,
            names={"hmr"},
        )
        == []
    )
    # The first word of a sentence is capitalised anyway.
    assert unknown_terms("Explain dose", known=known, word_pieces=_pieces) == []


def test_field_terms_the_corpus_never_uses_are_not_unknown() -> None:
    assert (
        unknown_terms(
            "Can a CAR-T product be made under the hospital exemption after Brexit?",
            known={"product", "made", "hospit", "exempt"},
            word_pieces=_pieces,
        )
        == []
    )
