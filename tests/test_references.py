import pytest

from qa.retrieval.references import DocumentName, parse_references

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
