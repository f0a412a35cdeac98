"""Deep links to the cited provision: legislation.gov.uk paths, EUR-Lex anchors where they exist."""

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.answer import citation_for
from qa.chunking import Chunk
from qa.embed import Embedder
from qa.provision_links import provision_url
from qa.retrieval.search import Passage
from qa.units import units

from .test_api import mini_app, mini_settings

HMR = "https://www.legislation.gov.uk/uksi/2012/1916"
ATMP_REGULATION = "http://data.europa.eu/eli/reg/2007/1394/oj"
SOHO_REGULATION = "http://data.europa.eu/eli/reg/2024/1938/oj"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("regulation 171", f"{HMR}/regulation/171"),
        ("regulation 171(2)", f"{HMR}/regulation/171"),
        ("regulation 4(1)–(2)", f"{HMR}/regulation/4"),
        ("regulation 3A(1)", f"{HMR}/regulation/3A"),
        ("regulation 34ZA", f"{HMR}/regulation/34ZA"),
        ("Schedule 6, paragraph 10", f"{HMR}/schedule/6/paragraph/10"),
        ("Schedule 2, paragraph 6(4)–(4A)", f"{HMR}/schedule/2/paragraph/6"),
        ("Schedule 7", f"{HMR}/schedule/7"),
        ("Explanatory note", HMR),
        ("Preamble", HMR),
        ("Signed", HMR),
    ],
)
def test_legislation_gov_uk_addresses_each_provision(section: str, expected: str) -> None:
    assert provision_url(HMR, section) == expected


def test_a_uk_url_that_is_not_an_acts_root_is_left_alone() -> None:
    page = f"{HMR}/contents"
    assert provision_url(page, "regulation 171") == page


@pytest.mark.parametrize(
    "section", ["Article 15(4)", "Article 28", "Annex I", "Recitals 1–2", "Recital 6", "Preamble"]
)
def test_older_eur_lex_acts_link_to_the_act(section: str) -> None:
    # Their EUR-Lex HTML has generated ids (d1e…), not art_N: an anchor would not land.
    assert provision_url(ATMP_REGULATION, section) == ATMP_REGULATION


@pytest.mark.parametrize(
    ("section", "anchor"),
    [
        ("Article 15(4)", "art_15"),
        ("Article 10a(1)", "art_10a"),
        ("Article 3", "art_3"),
        ("Annex III", "anx_III"),
        ("Annex I, point 2", "anx_I"),
    ],
)
def test_recent_eur_lex_acts_get_article_and_annex_anchors(section: str, anchor: str) -> None:
    expected = f"https://eur-lex.europa.eu/eli/reg/2024/1938/oj#{anchor}"
    assert provision_url(SOHO_REGULATION, section) == expected


@pytest.mark.parametrize("section", ["Recital 5", "Recitals 1–2", "Annex", "Preamble"])
def test_recent_eur_lex_acts_without_a_known_anchor_link_to_the_act(section: str) -> None:
    assert provision_url(SOHO_REGULATION, section) == SOHO_REGULATION


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://health.ec.europa.eu/system/files/2019-10/atmp_guidelines_en_0.pdf",
        "http://example.org/eli/reg/2099/1/oj",
    ],
)
def test_other_urls_are_returned_unchanged(url: str | None) -> None:
    assert provision_url(url, "Article 15(4)") == url


def test_a_citation_links_to_the_paragraph_it_pinpoints() -> None:
    text = "(1) A manufacturer must hold a licence.\n(2) The licence must be renewed every year."
    chunk = Chunk(
        chunk_id="hmr:171",
        doc_id="hmr",
        title="The Human Medicines Regulations 2012",
        short_title="HMR 2012",
        jurisdiction="UK",
        url=HMR,
        section="regulation 171",
        provision="regulation 171",
        heading="Exemption",
        heading_path=(),
        text=text,
        start=0,
        end=len(text),
        page=None,
        page_end=None,
        ordinal=0,
    )
    renewal = units(text)[-1]
    quote = text[renewal.start : renewal.end]
    citation = citation_for(1, Passage(1, 1.0, chunk), quote, renewal)
    assert citation.section == "regulation 171(2)"
    assert citation.provision_url == f"{HMR}/regulation/171"
    assert citation.url == HMR


def test_ask_returns_the_provision_url_of_each_citation(tmp_path: Path, embedder: Embedder) -> None:
    question = "How often must the licence for an exempt product be renewed?"
    with TestClient(mini_app(mini_settings(tmp_path, embedder), embedder)) as client:
        body = client.post("/ask", json={"question": question}).json()
    first = body["citations"][0]
    assert first["section"] == "regulation 2(2)"
    assert first["url"] == "https://www.legislation.gov.uk/uksi/2099/1"
    assert first["provision_url"] == "https://www.legislation.gov.uk/uksi/2099/1/regulation/2"
    assert all("provision_url" in c for c in body["citations"] + body["related"])
