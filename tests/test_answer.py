import pytest

from qa.answer import Answer, Citation, abstain, check_citations, clean_quote, compose_answer
from qa.chunking import Chunk
from qa.evaluate import is_fragment
from qa.retrieval.query import Query, Vocabulary, analyse
from qa.retrieval.search import Passage
from qa.units import units


def chunk(
    text: str,
    *,
    ordinal: int = 0,
    section: str = "Article 15(4)",
    doc_id: str = "demo",
    jurisdiction: str = "EU",
) -> Chunk:
    return Chunk(
        chunk_id=f"{doc_id}:{ordinal}",
        doc_id=doc_id,
        title="Demo Regulation",
        short_title="Demo Regulation",
        jurisdiction=jurisdiction,
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
VOCABULARY = Vocabulary(documents=(), known=frozenset(), word_pieces=lambda word: 1)


def query(text: str) -> Query:
    return analyse(text, VOCABULARY)


def lexical_idf(term: str) -> float:
    return 1.0


def spans(text: str) -> list[str]:
    return [text[u.start : u.end] for u in units(text)]


def test_a_lead_in_is_quoted_with_the_points_it_introduces() -> None:
    text = (
        "- (2) Condition A is that the product is prepared—\n- (a) on a non-routine basis;\n"
        "- (b) in the United Kingdom; and\n- (c) according to specific quality standards.\n"
        "- (3) Condition B is that the product is used in a hospital."
    )
    found = spans(text)
    assert found[0].startswith("- (2) Condition A") and found[0].endswith("quality standards.")
    assert found[1] == "- (3) Condition B is that the product is used in a hospital."
    assert len(found) == 2  # no point stands alone, cut from its lead-in


def test_an_annex_list_stays_whole_and_sentences_split() -> None:
    text = (
        "Manipulations referred to in Article 2\n- —cutting,\n- —grinding,\n- —shaping.\n"
        "The Agency shall decide on the classification of the product within a period of sixty "
        "days after receipt of the request, having consulted the Commission on the matter. The "
        "Commission shall publish summaries of the decisions after deleting commercially "
        "confidential information, and it shall keep them available."
    )
    found = spans(text)
    assert found[0].startswith("Manipulations") and found[0].endswith("—shaping.")
    assert "The Agency shall decide on the classification" in found[2]
    assert found[2].endswith("on the matter.") and found[3].startswith("The Commission shall")
    # a sentence that points back ("It shall …") stays with the one before it
    pointing = spans(text.replace("The Commission shall publish", "It shall publish"))
    assert len(pointing) == 2 and pointing[1].startswith("The Agency shall decide")
    assert pointing[1].endswith("keep them available.")


def test_a_sentence_that_continues_a_paragraph_is_quoted_with_it() -> None:
    """A sentence "That notification shall be made within 15 days" says nothing without the
    paragraph it continues; "This Regulation shall apply …" names the act and stands alone."""
    text = (
        "1. The temporary halt of a clinical trial shall be notified to the Member States "
        "concerned through the EU portal.\n"
        "That notification shall be made not later than in 15 days of the date of the "
        "temporary halt.\n"
        "2. The restart of a clinical trial shall be notified.\n"
        "This Regulation shall apply from 31 January 2022."
    )
    found = spans(text)
    assert found[0].startswith("1. The temporary halt") and found[0].endswith("temporary halt.")
    assert not any(s.startswith("That notification") for s in found)
    assert found[1] == "2. The restart of a clinical trial shall be notified."
    assert found[2] == "This Regulation shall apply from 31 January 2022."
    # past the unit cap, the two stay apart rather than be cut
    long_text = text.replace("through the EU portal", "through the EU portal" + " and" * 300)
    assert any(s.startswith("That notification") for s in spans(long_text))


def test_multi_level_numbered_paragraphs_of_an_annex_are_units_of_their_own() -> None:
    text = (
        "- 2.3.When potential donors have lost blood, an algorithm must be applied in the "
        "following circumstances:\n (a) ante-mortem blood sampling;\n (b) post-mortem blood "
        "sampling.\n Tissue establishments may accept tissues and cells from such donors only "
        "if the testing procedures used are validated.\n"
        "- 2.4.In the case of a deceased donor, blood samples must have been obtained just "
        "prior to death.\n"
        "- 2.5.\n (a)In the case of living donors, blood samples must be obtained at the time "
        "of donation.\n (b)Where tissues can be stored for long periods, repeat testing is "
        "required.\n"
        "- 1.2.4.The complete donor records must be reviewed."
    )
    found = spans(text)
    assert any(s.startswith("- 2.4.In the case") and s.endswith("prior to death.") for s in found)
    five = next(s for s in found if s.startswith("- 2.5."))
    assert five.endswith("repeat testing is required.") and "2.4." not in five
    assert found[-1] == "- 1.2.4.The complete donor records must be reviewed."


def test_a_definition_keeps_its_limbs_and_drops_the_trailing_semicolon() -> None:
    text = (
        "1. For the purposes of this Regulation, the following definitions shall apply:\n"
        "- (a)‘Tissue engineered product’ means a product that:\n"
        "—contains or consists of engineered cells or tissues, and\n"
        "—is presented as having properties for regenerating a human tissue;\n"
        "- (b)‘Somatic cell product’ means a product that is made of cells;"
    )
    definitions = [u for u in units(text) if u.definition]
    first = text[definitions[0].start : definitions[0].end]
    assert first.startswith("- (a)‘Tissue engineered product’ means")
    assert first.endswith("regenerating a human tissue")
    assert not is_fragment(clean_quote(first) + " [1]")


def test_numbered_definitions_are_units_of_their_own() -> None:
    text = (
        "For the purposes of this Regulation, the following definitions shall apply:\n"
        "- 1.‘Variation’ means any amendment to the terms;\n"
        "- 2.‘Minor variation of type IA’ means a variation which has only a minimal impact;\n"
        "- 3.‘Major variation of type II’ means a variation which may have a significant impact;"
    )
    definitions = [text[u.start : u.end] for u in units(text) if u.definition]
    assert definitions[1] == (
        "- 2.‘Minor variation of type IA’ means a variation which has only a minimal impact"
    )
    answer = compose_answer(
        query("What is a minor variation of type IA?"),
        [Passage(1, 1.0, chunk(text, section="Article 2"))],
        idf=lexical_idf,
    )
    assert answer.text.startswith("2.‘Minor variation of type IA’ means")


def test_a_list_past_the_size_cap_says_which_points_it_omits() -> None:
    points = "\n".join(
        f"- ({chr(97 + i)}) the {i}th item of a long list of conditions;" for i in range(8)
    )
    text = f"1. The application shall contain the following:\n{points}"
    unit = units(text, max_chars=200)[0]
    assert unit.omitted.startswith("points (") and unit.omitted.endswith("–(h) omitted")
    assert not text[unit.start : unit.end].rstrip().endswith(";")


def test_a_point_past_the_size_cap_is_quoted_with_its_lead_in() -> None:
    """The point that answers is quoted whole after its lead-in, not cut off with the list."""
    text = (
        "1. The qualified person shall be responsible for the following:\n"
        "- (a) where the products are made in the Member State, verifying that each batch was "
        "made and checked under good manufacturing practice as laid down in this Regulation"
        + ", taking into account the guidelines adopted under it and the information given in "
        "the application" * 7 + ";\n"
        "- (b) where the products are made in a third country, verifying that each batch was "
        "checked to standards at least equivalent to those of this Regulation."
    )
    whole, *abridged = units(text)
    assert whole.omitted == "point (b) omitted" and whole.skip is None
    (point,) = abridged
    assert point.omitted == "point (a) omitted"
    assert point.text(text) == (
        "1. The qualified person shall be responsible for the following: … (b) where the "
        "products are made in a third country, verifying that each batch was checked to "
        "standards at least equivalent to those of this Regulation."
    )
    passage = Passage(1, 1.0, chunk(text, section="Article 12"))
    answer = compose_answer(
        query("What must the qualified person verify for products made in a third country?"),
        [passage],
        idf=lexical_idf,
    )
    assert answer.text.startswith("1. The qualified person shall be responsible for the")
    assert "… (b) where the products are made in a third country" in answer.text
    assert "(point (a) omitted; see the passage) [1]" in answer.text
    assert not is_fragment(answer.text)
    check_citations(answer)
    # A question the list's start answers as well gets the start, not one point alone.
    answer = compose_answer(
        query("What is the qualified person responsible for?"),
        [passage],
        idf=lexical_idf,
    )
    assert "(a) where the products are made in the Member State" in answer.text
    # Where the first point alone is past the cap, the later points are still quotable.
    more = ", and the opinions of the Agency and of the national authorities on those guidelines"
    longer = text.replace(";\n- (b)", more + ";\n- (b)")
    assert [u.text(longer) for u in units(longer)] == [point.text(text)]


def test_answer_quotes_whole_units_and_cites_in_order_of_use() -> None:
    answer = compose_answer(
        query("How long must the holder keep traceability data?"), PASSAGES, idf=lexical_idf
    )
    assert not answer.abstained
    assert [c.n for c in answer.citations] == [1, 2, 3]
    assert answer.citations[0].section == "Article 15(4)" and answer.citations[0].used
    assert answer.text.startswith("4. The holder shall keep the data for a minimum of 30 years")
    assert not [c for c in answer.citations[1:] if c.used and f"[{c.n}]" not in answer.text]
    assert not is_fragment(answer.text)
    for citation in answer.citations:
        assert citation.quote and all(part in citation.text for part in citation.quote.split(" … "))
    check_citations(answer)


def test_a_later_passage_quoted_first_becomes_citation_one() -> None:
    answer = compose_answer(
        query("Which records linking each product to its patient must the hospital keep?"),
        PASSAGES,
        idf=lexical_idf,
    )
    assert answer.citations[0].section == "Article 15(2)" and answer.citations[0].used
    assert answer.text.startswith("The hospital shall keep records") and "[1]" in answer.text
    unused = [c for c in answer.citations if not c.used]
    assert unused and all(f"[{c.n}]" not in answer.text for c in unused)


def test_the_section_names_the_paragraph_the_quote_comes_from() -> None:
    text = (
        "1. The holder shall establish a system.\n2. The hospital shall keep records.\n"
        "3. The holder shall keep the data for a minimum of 30 years."
    )
    passage = Passage(1, 1.0, chunk(text, section="Article 15"))
    answer = compose_answer(query("How long must data be kept?"), [passage], idf=lexical_idf)
    assert answer.citations[0].section == "Article 15(3)"
    assert "30 years" in answer.citations[0].quote


def test_both_jurisdictions_on_point_get_one_labelled_quote_each() -> None:
    eu = Passage(
        1, 1.0, chunk("The holder shall keep the data for 30 years.", section="Article 15")
    )
    uk = Passage(
        2,
        0.95,
        chunk(
            "(1) The holder must keep the data for 30 years.",
            section="regulation 4(1)",
            doc_id="uk",
            jurisdiction="UK",
        ),
    )
    answer = compose_answer(query("How long must the data be kept?"), [eu, uk], idf=lexical_idf)
    assert (
        answer.text.startswith("EU: The holder shall keep") and "UK: (1) The holder" in answer.text
    )
    named = compose_answer(
        query("How long must the data be kept in the EU?"), [eu, uk], idf=lexical_idf
    )
    assert "UK:" not in named.text and "EU:" not in named.text


def test_caveats_of_the_quoted_texts_come_with_the_answer() -> None:
    answer = compose_answer(
        query("How long must the holder keep traceability data?"),
        PASSAGES[:1],
        idf=lexical_idf,
        caveat_of=lambda doc_id: "Demo Regulation: consolidated text as at 2012-07-02",
    )
    assert answer.caveats == ("Demo Regulation: consolidated text as at 2012-07-02",)


def test_a_passage_without_whole_units_still_gives_a_cited_answer() -> None:
    passage = Passage(1, 1.0, chunk("Signed\nA. TAJANI", section="Article 5"))
    answer = compose_answer(query("Who signed it?"), [passage], idf=lexical_idf)
    assert answer.text == "Signed A. TAJANI [1]" and answer.citations[0].used
    check_citations(answer)


def test_clean_quote_drops_list_dashes() -> None:
    assert (
        clean_quote("- (a) the product name;\n- (b) the batch")
        == "(a) the product name; (b) the batch"
    )


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
    answer = abstain(
        "Who won the cup?", PASSAGES, 0.1, "The indexed documents never mention “Cup”."
    )
    assert answer.abstained and not answer.citations
    assert "[" not in answer.text and "“Cup”" in answer.text and "related" not in answer.text
    assert [c.n for c in answer.related] == [1, 2, 3] and answer.related[0].quote == ""
    check_citations(answer)


def test_joined_passage_keeps_pieces_in_document_order() -> None:
    first, later = chunk("1. First paragraph.", ordinal=3), chunk("4. Fourth paragraph.", ordinal=6)
    passage = Passage(1, 1.0, later, siblings=(first,))
    assert passage.text == "1. First paragraph.\n[…]\n4. Fourth paragraph."
    assert passage.section == "Article 15"


def test_a_unit_ending_on_a_lead_in_whose_points_are_elsewhere_is_never_quoted() -> None:
    text = (
        "2. The following documentation shall be kept:\n"
        "(d) the donor records; and\n"
        "(e) in the case of cell cultures intended for autologous use, documentation of the "
        "possibility of medicinal allergies;\n"
        "In the case of partner donation, the data to be registered at the tissue "
        "establishment include:\n"
        "3. The tissue establishment shall keep the data registered for a partner donation "
        "for 30 years."
    )
    # the tree leaves a unit that ends on its lead-in ...
    assert any(span.endswith("include:") for span in spans(text))
    answer = compose_answer(
        query("What data must the tissue establishment register for a partner donation?"),
        [Passage(1, 1.0, chunk(text, section="Annex IV"))],
        idf=lexical_idf,
    )
    # ... which the answer never quotes
    assert not is_fragment(answer.text), answer.text
    assert "for 30 years. [1]" in answer.text


def test_of_two_units_with_the_question_s_words_the_one_with_its_phrases_is_quoted() -> None:
    scattered = chunk(
        "(3) It is a defence to an offence if the place where the patient is treated has a "
        "system, and a traceability assurance was given in writing.",
        section="regulation 4(3)",
        jurisdiction="UK",
    )
    phrased = chunk(
        "(4) It is an offence to give an assurance in writing that a traceability system is in "
        "place where none is, whoever the person giving it may be and whatever it is given for.",
        ordinal=1,
        section="regulation 4(4)",
        jurisdiction="UK",
    )
    answer = compose_answer(
        query(
            "Is it an offence to give an assurance in writing that a traceability system is "
            "in place?"
        ),
        [Passage(1, 1.0, scattered), Passage(2, 1.0, phrased)],
        idf=lexical_idf,
    )
    assert answer.citations[0].section == "regulation 4(4)", answer.text
