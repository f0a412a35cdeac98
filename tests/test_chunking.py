import re
from pathlib import Path

import pytest

from qa.chunking import chunk_document, short_title_of
from qa.readers import read_document


@pytest.fixture(scope="module")
def atmp_regulation(shared_corpus: Path) -> list:
    return chunk_document(read_document(shared_corpus / "eu" / "32007R1394.md"))


def test_regulation_1394_yields_every_article_annex_and_recitals(atmp_regulation: list) -> None:
    provisions = {c.provision for c in atmp_regulation}
    assert {f"Article {n}" for n in range(1, 31)} <= provisions
    assert {"Annex I", "Annex II", "Annex III", "Annex IV"} <= provisions
    recitals = {c.section for c in atmp_regulation if c.section.startswith("Recital")}
    numbers = set()
    for section in recitals:
        first, _, last = section.split()[-1].partition("–")
        numbers |= set(range(int(first), int(last or first) + 1))
    assert numbers == set(range(1, 32))


def test_no_chunk_holds_the_start_of_two_articles(atmp_regulation: list) -> None:
    for chunk in atmp_regulation:
        assert "#### Article" not in chunk.text
        if chunk.provision.startswith("Article"):
            assert chunk.section.startswith(chunk.provision)
    # Every article's text is in chunks of that article only.
    article_15 = [c for c in atmp_regulation if c.provision == "Article 15"]
    assert article_15 and all(c.heading == "Traceability" for c in article_15)
    assert "30 years" in " ".join(c.text for c in article_15)
    assert not any(
        "30 years after the expiry" in c.text
        for c in atmp_regulation
        if c.provision == "Article 16"
    )


def test_single_paragraph_chunks_are_cited_to_the_paragraph(atmp_regulation: list) -> None:
    keep = next(c for c in atmp_regulation if "minimum of 30 years" in c.text)
    assert keep.section == "Article 15(4)"
    assert keep.heading_path == ("CHAPTER 5 POST-AUTHORISATION REQUIREMENTS",)
    assert keep.short_title == "Regulation (EC) No 1394/2007"
    assert keep.url == "http://data.europa.eu/eli/reg/2007/1394/oj"
    assert keep.jurisdiction == "EU"


def test_chunks_fit_the_model_window_and_drop_footnotes(atmp_regulation: list) -> None:
    assert all(len(c.text) <= 1000 for c in atmp_regulation)
    assert not any(re.search(r"\[\^E\d+\]", c.text) for c in atmp_regulation)
    assert not any("OJ L 35, 15.2.1995" in c.text for c in atmp_regulation)  # footnote E0014


def test_chunk_ids_are_stable_and_unique(shared_corpus: Path) -> None:
    doc = read_document(shared_corpus / "eu" / "32007R1394.md")
    first = [c.chunk_id for c in chunk_document(doc)]
    assert first == [c.chunk_id for c in chunk_document(doc)]
    assert len(set(first)) == len(first)
    assert first[0].startswith("32007R1394:")


def test_uk_regulations_and_schedule_paragraphs(shared_corpus: Path) -> None:
    chunks = chunk_document(read_document(shared_corpus / "uk" / "uksi-2010-1882.md"))
    sections = {c.section for c in chunks}
    assert {"regulation 4(1)", "regulation 4(5)", "regulation 2"} <= sections
    reg4 = next(c for c in chunks if c.section == "regulation 4(1)")
    assert reg4.heading == "Traceability"
    hmr = chunk_document(read_document(shared_corpus / "uk" / "uksi-2012-1916.md"))
    long_keep = next(c for c in hmr if "30 years after the expiry date of the exempt" in c.text)
    assert long_keep.provision.startswith("Schedule 6, paragraph")
    assert long_keep.heading_path[0].startswith("SCHEDULE 6")


def test_fixture_law_sections(mini_corpus: Path) -> None:
    chunks = chunk_document(read_document(mini_corpus / "reg-demo.md"))
    assert [c.section for c in chunks] == [
        "Preamble",
        "Recitals 1–2",
        "Preamble",
        "Article 1",
        "Article 2",
        "Article 3",
        "Annex I",
    ]
    by_section = {c.section: c for c in chunks}
    assert chunks[2].text == "HAVE ADOPTED THIS REGULATION:"
    assert by_section["Article 2"].heading == "Record keeping"
    assert by_section["Annex I"].heading == "Data to be recorded"
    assert "OJ C 1" not in " ".join(c.text for c in chunks)


def test_long_provisions_split_at_paragraphs_and_keep_their_heading(mini_corpus: Path) -> None:
    chunks = chunk_document(read_document(mini_corpus / "reg-demo.md"), max_chars=120, min_chars=20)
    article_2 = [c for c in chunks if c.provision == "Article 2"]
    assert [c.section for c in article_2] == ["Article 2(1)", "Article 2(2)"]
    assert all(c.heading == "Record keeping" for c in article_2)
    assert article_2[0].embed_text.splitlines()[0].endswith("Article 2(1) — Record keeping")


def test_uk_fixture_sections(mini_corpus: Path) -> None:
    chunks = chunk_document(read_document(mini_corpus / "si-demo.md"))
    sections = [c.section for c in chunks]
    assert sections == [
        "Preamble",
        "regulation 1",
        "regulation 2",
        "Schedule 1, paragraph 1",
        "Schedule 1, paragraph 2",
    ]
    assert chunks[2].heading == "Exempt products"
    assert chunks[3].heading_path == ("SCHEDULE 1 — Licence conditions",)


def test_guideline_numbered_headings_in_plain_text(mini_corpus: Path) -> None:
    chunks = chunk_document(read_document(mini_corpus / "guideline-demo.txt"))
    sections = [(c.section, c.heading) for c in chunks]
    assert ("Section 2.2", "Products not covered") in sections
    assert ("Section 1", "Introduction") in sections
    assert next(c for c in chunks if c.section == "Section 2.2").text.startswith(
        "Blood transfusions"
    )


def test_plain_text_law_recognises_article_lines(tmp_path: Path) -> None:
    text = (
        "REGULATION 1/2099\n\nArticle 1\nScope\n1. This applies to gene therapies.\n"
        "2. It does not apply to blood.\n\n"
        "Article 2\nDefinitions\nIn this Regulation, words mean things.\n\n"
        "ANNEX I\nList of manipulations\n(a) cutting\n(b) freezing\n"
    )
    path = tmp_path / "plain-law.txt"
    path.write_text(text)
    chunks = chunk_document(read_document(path))
    assert [c.section for c in chunks] == ["Preamble", "Article 1", "Article 2", "Annex I"]
    assert chunks[1].heading == "Scope" and chunks[2].heading == "Definitions"
    assert chunks[3].text.endswith("(b) freezing")


@pytest.mark.parametrize(
    ("title", "short"),
    [
        (
            "Regulation (EC) No 1394/2007 of the European Parliament and of the Council",
            "Regulation (EC) No 1394/2007",
        ),
        (
            "Commission Delegated Regulation (EU) 2017/1569 of 23 May 2017",
            "Commission Delegated Regulation (EU) 2017/1569",
        ),
        ("The Human Medicines Regulations 2012", "The Human Medicines Regulations 2012"),
    ],
)
def test_short_title(title: str, short: str) -> None:
    assert short_title_of(title) == short


def test_offsets_point_into_the_document(mini_corpus: Path) -> None:
    doc = read_document(mini_corpus / "reg-demo.md")
    for chunk in chunk_document(doc):
        assert 0 <= chunk.start < chunk.end <= len(doc.text)
        source = doc.text[chunk.start : chunk.end]
        assert chunk.text.split()[0].strip("-") in source
