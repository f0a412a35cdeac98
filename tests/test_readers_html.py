"""Tests for qa.readers.html: EUR-Lex, legislation.gov.uk and generic pages, from real files."""

import hashlib
from pathlib import Path

import pytest

from qa.chunking import chunk_document
from qa.errors import ReadError
from qa.readers import read_document
from qa.readers.html import read_html

HTML = Path(__file__).resolve().parent / "data" / "html"

EU_TEXT = """\
REGULATION (EC) No 1394/2007 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL

of 13 November 2007

on advanced therapy medicinal products

THE EUROPEAN PARLIAMENT AND THE COUNCIL OF THE EUROPEAN UNION,

Having regard to the Opinion of the European Economic and Social Committee,

Whereas:

- (1) New scientific progress in cellular and molecular biotechnology has led to the \
development of advanced therapies.

- (2) Advanced therapy products are biological medicinal products.

- (3) Complex therapeutic products require precise legal definitions.

HAVE ADOPTED THIS REGULATION:

## CHAPTER 1 SUBJECT MATTER AND DEFINITIONS

#### Article 1

##### Subject matter

This Regulation lays down specific rules concerning the authorisation, supervision and \
pharmacovigilance of advanced therapy medicinal products.

#### Article 2

##### Definitions

1. For the purposes of this Regulation, the following definitions shall apply:

- (a) ‘Advanced therapy medicinal product’ means any of the following:

- — a gene therapy medicinal product,

- — a tissue engineered product;

- (b) ‘Tissue engineered product’ means a product that contains engineered cells or tissues.

2. Where a product contains viable cells or tissues, their action shall be considered as the \
principal mode of action.

## CHAPTER 2 MARKETING AUTHORISATION REQUIREMENTS

#### Article 3

##### Donation, procurement and testing

Where an advanced therapy medicinal product contains human cells or tissues, the donation, \
procurement and testing of those cells or tissues shall be made in accordance with Directive \
2004/23/EC.

Done at Strasbourg, 13 November 2007.

## ANNEX I

Manipulations referred to in the first indent of Article 2(1)(c)

- — cutting,

- — grinding.
"""

EU_TITLE = (
    "Regulation (EC) No 1394/2007 of the European Parliament and of the Council"
    " of 13 November 2007 on advanced therapy medicinal products"
)

UK_TITLE = (
    "The Medicines for Human Use (Advanced Therapy Medicinal Products and Miscellaneous"
    " Amendments) Regulations 2010"
)


def _lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def test_eurlex_oj_page_reads_as_corpus_markdown() -> None:
    path = HTML / "32007R1394.html"
    doc = read_html(path)
    assert doc.text == EU_TEXT
    assert doc.title == EU_TITLE
    assert doc.url == "https://eur-lex.europa.eu/eli/reg/2007/1394/oj"
    assert doc.jurisdiction == "EU"
    assert doc.doc_id == "32007R1394"
    assert doc.source_path == path
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc.page_starts == ()


def test_eurlex_oj_page_drops_chrome_notes_and_footnote_markers() -> None:
    text = read_html(HTML / "32007R1394.html").text
    for absent in ("Home", "analytics", "Official Journal", "L 324/121", "OJ C 309", "©", "(1),"):
        assert absent not in text
    assert "Social Committee," in text  # the "(1)" marker went with the space before it


def test_eurlex_legacy_rendering_reads_like_the_oj_rendering() -> None:
    doc = read_html(HTML / "32007R1394-legacy.htm")
    assert doc.text == EU_TEXT
    assert doc.title == EU_TITLE  # doc-ti paragraphs win over <title> "EUR-Lex - 32007R1394 - EN"
    assert doc.url is None
    assert doc.jurisdiction == "EU"  # from the markup: no URL in this page
    assert doc.doc_id == "32007R1394-legacy"


def test_eurlex_consolidated_rendering_nests_containers_and_numbers_paragraphs() -> None:
    doc = read_html(HTML / "02007R1394-20190726.html")
    assert _lines(doc.text) == [
        "REGULATION (EC) No 1394/2007 OF THE EUROPEAN PARLIAMENT AND OF THE COUNCIL",
        "of 13 November 2007",
        "on advanced therapy medicinal products",
        "## TITLE I GENERAL PROVISIONS",
        "### CHAPTER 5 POST-AUTHORISATION REQUIREMENTS",
        "#### Section 1 Traceability and follow-up",
        "#### Article 15",
        "##### Traceability",
        "1. The holder of a marketing authorisation shall establish and maintain a system"
        " ensuring traceability.",
        "2. The hospital shall keep the data referred to in paragraph 1:",
        "- (a) for a minimum of 30 years; or",
        "- (b) longer, if required by the Commission.",
        "This Article applies without prejudice to Directive 2004/23/EC.",
        "## ANNEX I",
        "Manipulations referred to in the first indent of Article 2(1)(c)",
        "- — cutting.",
    ]
    assert "\n\n#### Article 15\n\n##### Traceability\n\n1. The holder" in doc.text
    assert doc.title == EU_TITLE
    assert doc.url == "http://data.europa.eu/eli/reg/2007/1394/2019-07-26"
    assert doc.jurisdiction == "EU"


def test_legislation_gov_uk_page_reads_as_corpus_markdown() -> None:
    doc = read_html(HTML / "uksi-2010-1882.html")
    assert _lines(doc.text) == [
        "2010 No. 1882",
        "MEDICINES",
        f"# {UK_TITLE}",
        "Made",
        "21st July 2010",
        "## PART 1 — General",
        "#### Citation, commencement and interpretation",
        "###### 1",
        "- (1) These Regulations may be cited as the Medicines for Human Use (Advanced Therapy"
        " Medicinal Products and Miscellaneous Amendments) Regulations 2010.",
        "- (2) In these Regulations “the Act” means the Medicines Act 1968.",
        "#### Traceability",
        "###### 4",
        "- (1) A person who treats a patient with an advanced therapy medicinal product commits"
        " an offence if there is no system in place for patient and product traceability.",
        "- (2) The traceability system must be compatible with the requirements laid down in—",
        "- (a) Articles 8 and 14 of Directive 2004/23/EC, and",
        "- (b) Articles 14 and 24 of Directive 2002/98/EC.",
        "#### Amendment of the Medicines (Standard Provisions for Licences and Certificates)"
        " Regulations 1971",
        "###### 6",
        "After regulation 1A of the 1971 Regulations insert—",
        "> Exempt advanced therapy medicinal products",
        "> 1B.—(1) These Regulations do not apply in relation to exempt advanced therapy"
        " medicinal products.",
        "> (a) “advanced therapy medicinal product” has the meaning given in Article 2.",
        "## SCHEDULE 6 — Manufacturer's and wholesale dealer's licences for exempt advanced"
        " therapy medicinal products",
        "###### 1",
        "The requirements in paragraphs 2 and 3 apply to a manufacturer's licence.",
        "###### 2",
        "- (1) The licence holder must inform the licensing authority of any adverse reaction.",
        "- (2) The licence holder must keep records for 30 years.",
        "###### 3",
        "The licence holder must co-operate with the licensing authority.",
    ]
    assert "\n\n#### Traceability\n\n###### 4\n\n- (1) A person" in doc.text
    assert doc.title == UK_TITLE
    assert doc.url == "https://www.legislation.gov.uk/uksi/2010/1882/made"
    assert doc.jurisdiction == "UK"
    for absent in ("Commencement", "Regulation 3(1)", "1968 c.67", "Footnotes", "Licence v3.0"):
        assert absent not in doc.text


def test_generic_page_maps_headings_paragraphs_lists_and_tables() -> None:
    doc = read_html(HTML / "guidance.html")
    assert doc.text == (
        "# Guidance on ATMPs\n\n"
        "This guidance explains how advanced therapy medicinal products are classified.\n\n"
        "## Scope\n\n"
        "It covers:\n\n"
        "- gene therapy medicinal products;\n\n"
        "- somatic cell therapy medicinal products.\n\n"
        "### Fees\n\n"
        "Procedure | Fee\n\n"
        "Scientific advice | EUR 10 000\n\n"
        "Certification | EUR 5 000\n\n"
        "Note: fees change every year.\n\n"
        "Contact the agency for help.\n\n"
        "Answers within 10 days.\n"
    )
    assert doc.title == "Guidance on advanced therapy medicinal products"  # <title> before <h1>
    assert doc.url == "https://example.org/guidance/atmp"
    assert doc.jurisdiction is None  # class="normal" and "Legend" are no site's markup


def test_title_falls_back_to_the_first_h1_then_the_file_stem(tmp_path: Path) -> None:
    page = tmp_path / "note.html"
    page.write_text("<html><body><h1> Cell  therapy </h1><p>Text.</p></body></html>")
    assert read_html(page).title == "Cell therapy"
    bare = tmp_path / "bare.htm"
    bare.write_text("<p>Only a paragraph.</p>")
    doc = read_html(bare)
    assert (doc.title, doc.text) == ("bare", "Only a paragraph.\n")
    assert (doc.url, doc.jurisdiction) == (None, None)


def test_read_document_dispatches_html_and_htm() -> None:
    assert read_document(HTML / "32007R1394.html").text == EU_TEXT
    assert read_document(HTML / "32007R1394-legacy.htm").text == EU_TEXT


def test_html_versions_chunk_into_the_provisions_a_lawyer_cites() -> None:
    eu = chunk_document(read_html(HTML / "32007R1394.html"))
    assert [c.provision for c in eu] == [
        "Preamble",
        "Recitals 1–3",
        "Preamble",
        "Article 1",
        "Article 2",
        "Article 3",
        "Annex I",
    ]
    assert eu[4].label == "Regulation (EC) No 1394/2007, Article 2"
    assert eu[4].heading == "Definitions"
    uk = chunk_document(read_html(HTML / "uksi-2010-1882.html"))
    assert [c.provision for c in uk][1:] == [
        "regulation 1",
        "regulation 4",
        "regulation 6",  # the inserted "1B." is quoted text, not a provision of this SI
        "Schedule 6, paragraph 1",
        "Schedule 6, paragraph 2",
        "Schedule 6, paragraph 3",
    ]
    assert uk[2].heading == "Traceability"
    assert uk[2].heading_path == ("PART 1 — General",)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.html", "empty.html: the file is empty"),
        ("junk.html", "junk.html: this is a binary file, not text"),
        ("no-text.html", "no-text.html: the HTML page holds no text"),
    ],
)
def test_unreadable_files_raise_a_one_line_read_error(name: str, message: str) -> None:
    with pytest.raises(ReadError) as caught:
        read_html(HTML / name)
    assert str(caught.value) == message


def test_binary_junk_without_nul_bytes_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "photo.html"
    junk.write_bytes(bytes(range(1, 256)) * 8)
    with pytest.raises(ReadError, match=r"^photo\.html: this is a binary file, not HTML$"):
        read_html(junk)


def test_a_windows_1252_page_is_decoded_as_such(tmp_path: Path) -> None:
    page = tmp_path / "old.htm"
    page.write_bytes(b"<p>Caf\xe9 \x93quoted\x94 \x96 text</p>")
    assert read_html(page).text == "Café “quoted” – text\n"


def test_class_less_old_eurlex_text_still_gets_article_and_annex_headings(tmp_path: Path) -> None:
    page = tmp_path / "31993L0042.html"
    page.write_text(
        '<html><body><div id="TexteOnly"><TXT_TE><p>COUNCIL DIRECTIVE 93/42/EEC</p>'
        "<p>Article 1</p><p>Definitions, scope</p><p>1. This Directive shall apply.<p>"
        "<p>ANNEX I</p><p>ESSENTIAL REQUIREMENTS</p></TXT_TE></div></body></html>"
    )
    assert _lines(read_html(page).text) == [
        "COUNCIL DIRECTIVE 93/42/EEC",
        "#### Article 1",
        "Definitions, scope",
        "1. This Directive shall apply.",
        "## ANNEX I",
        "ESSENTIAL REQUIREMENTS",
    ]


def test_sloppy_deeply_nested_markup_is_read_without_recursion(tmp_path: Path) -> None:
    page = tmp_path / "sloppy.html"
    page.write_text("<p>start" + "<div>" * 5000 + "deep" + "<ul>" + "<li>item" * 3000)
    lines = _lines(read_html(page).text)
    assert lines[:2] == ["start", "deep"]
    assert lines[2:] == ["- item"] * 3000
