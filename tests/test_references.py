import pytest

from qa.retrieval.references import (
    DocumentName,
    acts_of_parliament,
    amendments_named,
    document_year,
    parse_references,
    unindexed_acts,
)

DOCUMENTS = [
    DocumentName("32007R1394", "Regulation (EC) No 1394/2007", ("ATMP Regulation",)),
    DocumentName(
        "32014R0536", "Regulation (EU) No 536/2014", ("Clinical Trials Regulation", "CTR")
    ),
    DocumentName(
        "uksi-2012-1916",
        "SI 2012/1916 (Human Medicines Regulations 2012)",
        ("Human Medicines Regulations", "HMR"),
    ),
]


@pytest.mark.parametrize(
    ("question", "doc_ids", "provisions"),
    [
        ("What does Article 15 of Regulation 1394/2007 require?", {"32007R1394"}, ("Article 15",)),
        ("Explain Art. 2(1)(b)", set(), ("Article 2",)),
        (
            "Under regulation 17A of the HMR, who is responsible?",
            {"uksi-2012-1916"},
            ("regulation 17A",),
        ),
        ("What is in Annex I of the ATMP Regulation?", {"32007R1394"}, ("Annex I",)),
        ("Compare Articles 3 and 4 of the CTR", {"32014R0536"}, ("Article 3", "Article 4")),
        (
            "paragraph 10 of Schedule 6 to the Human Medicines Regulations 2012",
            {"uksi-2012-1916"},
            ("Schedule 6",),
        ),
        ("What does recital 6 say?", set(), ("Recital 6",)),
        ("What does the ctr say?", set(), ()),  # short aliases match only as written
        ("How long must data be kept?", set(), ()),
    ],
)
def test_parse_references(question: str, doc_ids: set[str], provisions: tuple[str, ...]) -> None:
    refs = parse_references(question, DOCUMENTS)
    assert set(refs.doc_ids) == doc_ids
    assert refs.provisions == provisions


def test_years_are_not_regulation_numbers() -> None:
    refs = parse_references("What do the Human Medicines Regulations 2012 say?", DOCUMENTS)
    assert refs.provisions == () and refs.doc_ids == {"uksi-2012-1916"}


def test_names_provision_matches_schedule_paragraphs_and_recital_groups() -> None:
    refs = parse_references("Schedule 6 and recital 5", DOCUMENTS)
    assert refs.names_provision("Schedule 6, paragraph 3")
    assert not refs.names_provision("Schedule 60, paragraph 3")
    assert refs.names_provision("Recitals 4–6") and not refs.names_provision("Recitals 7–9")


def test_jurisdiction_hints() -> None:
    assert parse_references("What does UK law say?", DOCUMENTS).jurisdictions == {"UK"}
    assert parse_references("Which EU rules apply?", DOCUMENTS).jurisdictions == {"EU"}


@pytest.mark.parametrize(
    ("text", "acts"),
    [
        ("Does the Human Rights Act 1998 give a right?", ["Human Rights Act 1998"]),
        (
            "What does the Animals (Scientific Procedures) Act 1986 require?",
            ["Animals (Scientific Procedures) Act 1986"],
        ),
        (
            "Under the Human Fertilisation and Embryology Act 1990, who licenses research?",
            ["Human Fertilisation and Embryology Act 1990"],
        ),
        (
            "section 10 of the Medicines Act 1968 and the Care Act 2014",
            ["Medicines Act 1968", "Care Act 2014"],
        ),
        ("What does the US Orphan Drug Act give?", []),  # no year: foreign law, handled apart
        ("What does 'the 2004 Act' mean?", []),
    ],
)
def test_acts_of_parliament_are_read_with_their_whole_short_title(
    text: str, acts: list[str]
) -> None:
    assert acts_of_parliament(text) == acts


def test_an_act_no_indexed_text_mentions_is_not_held() -> None:
    question = "What does the Human Rights Act 1998 say about consent?"
    assert [a.name for a in unindexed_acts(question, DOCUMENTS)] == ["The Human Rights Act 1998"]
    # an Act the indexed regulations cite may be asked about through them
    mentioned = {"human rights act 1998"}
    assert unindexed_acts(question, DOCUMENTS, (), mentioned) == []


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("What does the ICH E6 guideline say about the brochure?", "The ICH E6 guideline"),
        (
            "According to the EMA guideline on follow-up of ATMPs, how long?",
            "The EMA guideline on follow-up of ATMPs",
        ),
        (
            "What does the MHRA guidance on point-of-care manufacturing say about audits?",
            "The MHRA guidance on point-of-care manufacturing",
        ),
        (
            "Under the Commission's Q&A on the hospital exemption, how often?",
            "The Commission's Q&A on the hospital exemption",
        ),
        # what the law says about guidelines is law
        ("Who has to draw up the GMP guidelines specific to ATMPs?", None),
        ("What does the law say about guidelines?", None),
    ],
)
def test_guidance_cited_as_the_source_is_not_held_by_a_legislation_index(
    question: str, named: str | None
) -> None:
    found = unindexed_acts(question, DOCUMENTS)
    assert [a.name for a in found] == ([named] if named else [])
    assert all(a.guidance for a in found)
    # an index holding a guideline answers from it instead
    guideline = DocumentName("ema-fu", "Guideline on follow-up of ATMPs", kind="guideline")
    assert unindexed_acts(question, [*DOCUMENTS, guideline]) == []


AMENDING = [
    *DOCUMENTS,
    DocumentName("32019R0005", "Regulation (EU) 2019/5", amends=("32004R0726", "32001L0083")),
    DocumentName("uksi-2025-87", "SI 2025/87", amends=("uksi-2012-1916", "uksi-2004-1031")),
]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # a text the index does not hold, by its number; the year picks the instrument
        ("What changed with the 2019 amendments to Directive 2001/83/EC?", {"32019R0005"}),
        ("What changed with the 2018 amendments to Directive 2001/83/EC?", set()),
        ("What did the 2019 amending regulation change in Regulation 726/2004?", {"32019R0005"}),
        ("Is Regulation 726/2004 as amended in 2019 stricter on fines?", {"32019R0005"}),
        # an indexed text by its alias, no year: every instrument amending it
        ("How has the HMR been amended for point-of-care manufacture?", {"uksi-2025-87"}),
        ("Which rules amend SI 2004/1031?", {"uksi-2025-87"}),
        # no word of amendment: a question about the act itself
        ("What does Article 26 of Directive 2001/83/EC list?", set()),
        ("What does the HMR say about specials?", set()),
    ],
)
def test_the_amendments_to_an_act_name_the_instruments_that_make_them(
    question: str, expected: set[str]
) -> None:
    named = parse_references(question, AMENDING).doc_ids
    assert amendments_named(question, AMENDING, named) == expected


def test_the_year_of_an_official_id() -> None:
    assert document_year("32019R0005") == "2019"
    assert document_year("32001L0083") == "2001"
    assert document_year("uksi-2025-87") == "2025"
    assert document_year("ema-guideline-fu") is None
