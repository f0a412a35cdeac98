from pathlib import Path

import pytest

from qa.errors import ReadError
from qa.readers import read_document

from .pdfs import write_image_only_pdf, write_pdf


def test_markdown_front_matter(shared_corpus: Path) -> None:
    doc = read_document(shared_corpus / "eu" / "32007R1394.md")
    assert doc.doc_id == "32007R1394"
    assert doc.title.startswith("Regulation (EC) No 1394/2007")
    assert doc.url == "http://data.europa.eu/eli/reg/2007/1394/oj"
    assert doc.jurisdiction == "EU"
    assert doc.text.startswith("# Regulation (EC) No 1394/2007")
    assert "identifier:" not in doc.text
    assert doc.page_at(0) is None


def test_pdf_maps_text_to_pages(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "three-pages.pdf",
        [
            "Article 1\nScope\nAlpha text on page one.",
            "Article 2\nBeta text on page two.",
            "Article 3\nGamma text on page three.",
        ],
    )
    doc = read_document(path)
    assert len(doc.page_starts) == 3
    for word, page in (("Alpha", 1), ("Beta", 2), ("Gamma", 3)):
        assert doc.page_at(doc.text.index(word)) == page
    from qa.chunking import chunk_document

    chunks = {c.section: c for c in chunk_document(doc)}
    assert chunks["Article 1"].page == 1
    assert chunks["Article 2"].page == 2
    assert chunks["Article 3"].page == 3 and "Gamma" in chunks["Article 3"].text


def test_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    doc = read_document(
        write_pdf(tmp_path / "owner-only.pdf", ["Readable text."], user_password="")
    )
    assert "Readable text." in doc.text


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("locked.pdf", lambda p: write_pdf(p, ["Secret"], user_password="s3cret"), "encrypted"),
        ("scan.pdf", write_image_only_pdf, "no text layer"),
        ("corrupt.pdf", lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj <<< garbage"), "corrupt"),
        ("fake.pdf", lambda p: p.write_bytes(b"MZ\x90\x00 this is an executable"), "not a PDF"),
        ("empty.pdf", lambda p: p.write_bytes(b""), "empty"),
        ("empty.md", lambda p: p.write_text("  \n"), "empty"),
        ("blank.txt", lambda p: p.write_bytes(b""), "empty"),
        ("binary.txt", lambda p: p.write_bytes(b"\x00\x01\x02binary"), "binary"),
        ("data.docx", lambda p: p.write_bytes(b"PK\x03\x04"), "unsupported file type '.docx'"),
        ("front-only.md", lambda p: p.write_text("---\ntitle: x\n---\n"), "no text"),
        (
            "bad-yaml.md",
            lambda p: p.write_text("---\ntitle: [unclosed\n---\nBody\n"),
            "front matter",
        ),
    ],
)
def test_unreadable_files_raise_one_line_errors(
    tmp_path: Path, name: str, make, message: str
) -> None:
    path = tmp_path / name
    make(path)
    with pytest.raises(ReadError) as caught:
        read_document(path)
    text = str(caught.value)
    assert text.startswith(name) and message in text
    assert "\n" not in text


def test_plain_text_title_is_first_line(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("\n\nGuidance on cell therapy\n\nBody text.\n")
    doc = read_document(path)
    assert doc.title == "Guidance on cell therapy" and doc.doc_id == "note"
