import pytest

from qa.retrieval.query import (
    answer_types,
    asked_clause,
    defined_terms,
    finds_answer_type,
    is_definitional,
    is_name,
    unknown_terms,
)


@pytest.mark.parametrize(
    ("question", "types"),
    [
        ("How long must traceability data be kept?", ["duration"]),
        ("Within how many days must the CAT decide?", ["duration", "quantity"]),
        ("By when did products have to comply?", ["date"]),
        ("Until when can banked cells be released?", ["date"]),
        ("What reduction of the fee do SMEs get?", ["quantity"]),
        ("Who chairs the committee?", []),
        ("How fast must an investigator tell the sponsor?", ["duration"]),
        ("How much notice must the holder give?", ["duration", "quantity"]),
        ("Who sits on the COMP?", ["composition"]),
        ("When must the sponsor tell the Member States?", ["duration", "date"]),
        ("When did the SoHO Regulation enter into force?", ["date"]),
        ("How is the PRAC made up?", ["composition"]),
    ],
)
def test_answer_types(question: str, types: list[str]) -> None:
    assert answer_types(question) == types


def test_passages_stating_an_answer_type() -> None:
    assert finds_answer_type("duration", "for a minimum of 30 years after the expiry date")
    assert finds_answer_type("duration", "within seven days of becoming aware")
    assert finds_answer_type("date", "no later than 30 December 2012")
    assert not finds_answer_type("date", "the Agency shall publish guidelines")


@pytest.mark.parametrize(
    ("question", "definitional"),
    [
        ("What is an ATMP?", True),
        ("What is the hospital exemption?", True),
        ("Does a CAR-T product count as a gene therapy?", True),
        ("Define 'substantial manipulation'", True),
        ("What is the maximum prison sentence for that offence?", False),
        ("What is the deadline for reporting a SUSAR?", False),
        ("Who must keep the traceability data?", False),
        ("What does the SoHO Regulation mean by a SoHO preparation?", True),
        ("In the tissue regulations, what does 'the 2004 Act' refer to?", True),
        ("What does SoHO stand for?", True),
        ("What does Article 5 require?", False),
        ("Which provisions does the CTR refer to for fees?", False),
    ],
)
def test_definitional_questions(question: str, definitional: bool) -> None:
    assert is_definitional(question) is definitional


def test_a_composition_is_stated() -> None:
    assert finds_answer_type("composition", "The Committee shall consist of one member")
    assert not finds_answer_type("composition", "The Committee shall elect its Chairman")


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


def test_names_and_rare_words_are_told_apart() -> None:
    """A capitalised word or a medicine's name names something; "apheresis" is a rare word."""
    question = "Is tocilizumab or Kymriah given after apheresis?"
    assert is_name("Kymriah", question) and is_name("tocilizumab", question)
    assert not is_name("apheresis", question)
    assert not is_name("Ortho", "Ortho surgeons harvest marrow: is that an ATMP?")
    assert all(is_name(w, "x") for w in ("metformin", "paracetamol", "tisagenlecleucel"))


def test_a_name_that_only_sets_the_scene_does_not_refuse_as_a_name() -> None:
    """The clause that asks decides: "GvHD" sets the scene, "Kymriah" is asked about."""
    assert asked_clause("Our GvHD patient needs cells - who takes responsibility?") == (
        "who takes responsibility?"
    )
    assert asked_clause("We use it on wards. What does Kymriah cost?") == "What does Kymriah cost?"
    scene = analysed("We treat a GvHD patient under the HMR: who must take responsibility?")
    assert scene.unknown == () and "GvHD" in scene.rare
    asked = analysed("What does the HMR say about the price of Kymriah?")
    assert asked.unknown == ("Kymriah",) and "Kymriah" not in asked.rare


def test_field_terms_the_corpus_never_uses_are_not_unknown() -> None:
    assert (
        unknown_terms(
            "Can a CAR-T product be made under the hospital exemption after Brexit?",
            known={"product", "made", "hospit", "exempt"},
            word_pieces=_pieces,
        )
        == []
    )


def analysed(question: str):  # type: ignore[no-untyped-def]
    from qa.retrieval.query import Vocabulary, analyse
    from qa.retrieval.references import DocumentName, NamedAct

    documents = (
        DocumentName("32007R1394", "Regulation (EC) No 1394/2007", ("ATMP Regulation",), "EU"),
        DocumentName("uksi-2012-1916", "SI 2012/1916", ("HMR",), "UK"),
    )
    catalogue = (NamedAct("Directive 2001/83/EC", "http://data.europa.eu/eli/dir/2001/83/oj"),)
    known = {"regul", "say", "master", "file", "contain", "trial", "chang"}
    return analyse(question, Vocabulary(documents, known, lambda word: 3, catalogue))


def test_citation_forms_acronyms_and_instruction_words_are_not_unknown_names() -> None:
    assert analysed("What does reg 171 of SI 2012/1916 say?").unknown == ()
    assert analysed("What must the TMF contain?").unknown == ()
    assert analysed("Summarise the HMR").unknown == ()
    assert "TMF → trial master file" in analysed("What must the TMF contain?").expansions


def test_the_jurisdiction_comes_from_words_and_named_documents() -> None:
    assert analysed("What is the hospital exemption in the UK?").jurisdictions == {"UK"}
    assert analysed("What does reg 171 say?").jurisdictions == {"UK"}
    assert analysed("What does the EMA do?").jurisdictions == {"EU"}
    assert analysed("What does the ATMP Regulation say?").jurisdictions == {"EU"}
    assert analysed("What is the hospital exemption?").jurisdictions == frozenset()


def test_acts_not_indexed_foreign_law_and_amounts_are_recognised() -> None:
    act = analysed("What does Article 26 of Directive 2001/83/EC list?").unindexed
    assert [(a.name, a.url) for a in act] == [
        ("Directive 2001/83/EC", "http://data.europa.eu/eli/dir/2001/83/oj")
    ]
    assert [a.name for a in analysed("What does Regulation (EU) 2017/745 say?").unindexed] == [
        "Regulation (EU) 2017/745"
    ]
    assert analysed("How does Regulation 1394/2007 amend Directive 2001/83/EC?").unindexed == ()
    assert analysed("What does the FDA require?").foreign == ("FDA",)
    assert analysed("How long is exclusivity in Japan?").foreign == ("Japan",)
    assert analysed("Must a US company appoint a legal representative?").foreign == ()
    assert analysed("What is the MHRA fee in pounds?").asks_money
    assert not analysed("What fee reduction do SMEs get?").asks_statistic
    assert analysed("How many ATMPs have been approved so far?").asks_statistic
    assert analysed("How many CTAs did the MHRA approve in 2024?").asks_statistic
    assert analysed("How many sites currently hold an HTA licence?").asks_statistic
    assert not analysed("How many days does the MHRA have to approve a CTA?").asks_statistic


def test_places_are_not_unknown_words_and_national_law_is_foreign() -> None:
    # A place in a question about EU or UK law is a Member State or a third country ...
    spain = analysed("We want to add Spain to an authorised EU trial: how long until it decides?")
    assert "Spain" not in spain.unknown
    assert "Spain → Member State" in spain.expansions
    site = analysed("Will EU inspectors inspect our US site that makes IMPs?")
    assert "US" not in site.unknown
    assert site.foreign == ()
    assert "US → third country" in site.expansions
    # ... while another country's own law is still recognised as law the index does not hold.
    assert analysed("What is the penalty under Irish law for an unlicensed ATMP?").foreign == (
        "Irish law",
    )
    assert analysed("How does the French national health insurance reimburse CAR-T?").foreign
    assert analysed("What must the German competent authority do?").foreign == ()
    assert analysed("What does the US Orphan Drug Act give?").foreign


def test_everyday_acronyms_of_manufacturing_and_trials_are_spelt_out() -> None:
    question = analysed("Can a CDMO do the QC testing of a GMO product for the PI?")
    assert not {"CDMO", "QC", "GMO", "PI"} & set(question.unknown)
    assert {"CDMO → contract manufacturing", "QC → quality control"} <= set(question.expansions)


def test_a_foreign_country_s_own_body_or_law_is_foreign() -> None:
    assert analysed("What does South Korea's Advanced Regenerative Bio Act allow?").foreign == (
        "South Korea",
    )
    assert analysed("How does China's NMPA classify a cell therapy?").foreign == ("NMPA", "China")


def test_third_countries_and_eea_states_come_from_one_list() -> None:
    assert analysed("What is the penalty under Turkish law?").foreign == ("Turkish law",)
    assert analysed("How long is exclusivity in Mexico?").foreign == ("Mexico",)
    norway = analysed("Can our Norway site release batches for the EU?")
    assert norway.foreign == () and "Norway" not in norway.unknown
    assert "Norway → European Economic Area" in norway.expansions
