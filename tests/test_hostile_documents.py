"""Hostile documents: every input that froze the server, aborted an ingest or blew up memory
(issue 10, items 2–5) is generated here and must now be read in time linear in its size, be
refused with a one-line reason, or be skipped by an ingest that indexes everything else.

Timings are compared with a benign document of the same size read the same way (the hostile
one must take less than five times as long), never with absolute seconds.
"""

import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner
from fpdf import FPDF

from qa.chunking import MAX_CHUNKS_PER_DOCUMENT, chunk_document
from qa.cli import cli
from qa.config import Settings
from qa.embed import Embedder
from qa.errors import ReadError, SourceError
from qa.index import Index
from qa.markup import strip_emphasis, strip_footnote_refs, strip_links
from qa.parsing import ParseJob, ParseLimits, Parser
from qa.pipeline import ingest
from qa.readers import read_document
from qa.readers.document import LOCAL, MAX_TITLE_CHARS
from qa.readers.html import MAX_DEPTH, _depth, _flatten
from qa.readers.markdown import MAX_FRONT_MATTER_BYTES
from qa.structure import md_heading

from .conftest import DATA, make_settings
from .test_bad_input import FONT, flate, pdf_bytes

# -- inline markup: the linear functions give exactly what the old patterns gave ---------------

OLD_FOOTNOTE_REF = re.compile(r"\s*\(\[\^[^\]]+\]\)|\[\^[^\]]+\]")
OLD_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()\s]|\([^)\s]*\))*\)")
OLD_EMPHASIS = re.compile(r"(\*{1,3}|_{2})(\S(?:.*?\S)?)\1")
OLD_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def test_linear_markup_matches_the_backtracking_patterns_on_random_lines() -> None:
    rnd = random.Random(10)
    alphabet = list("[]()^*_ #ax\t\xa0")
    for _ in range(40_000):
        line = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        assert strip_footnote_refs(line) == OLD_FOOTNOTE_REF.sub("", line), repr(line)
        assert strip_links(line) == OLD_LINK.sub(r"\1", line), repr(line)
        assert strip_emphasis(line) == OLD_EMPHASIS.sub(r"\2", line), repr(line)
        old = OLD_MD_HEADING.match(line)
        assert md_heading(line) == (old and (len(old.group(1)), old.group(2))), repr(line)


def test_linear_markup_matches_the_patterns_on_the_corpus(shared_corpus: Path) -> None:
    lines = [
        line
        for path in sorted(shared_corpus.rglob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) > 10_000
    for line in lines:
        assert strip_footnote_refs(line) == OLD_FOOTNOTE_REF.sub("", line)
        assert strip_links(line) == OLD_LINK.sub(r"\1", line)
        assert strip_emphasis(line) == OLD_EMPHASIS.sub(r"\2", line)


# -- pathological Markdown: linear time ---------------------------------------------------------


def _benign(size: int) -> str:
    """Ordinary Markdown of about `size` characters: headings, paragraphs, a link, emphasis."""
    unit = (
        "#### Article 7\n\n1. The **holder** shall keep the records referred to in "
        "[Article 2](https://example.org/a2) for 30 years.\n\n"
    )
    return ("# Benign\n\n" + unit * (size // len(unit) + 1))[:size]


HOSTILE_MARKDOWN: dict[str, Callable[[], str]] = {
    # name: the body (each was 26 s to minutes on main, with the GIL held throughout)
    "heading padded with 3,000 spaces": lambda: "# T\n\n# a" + " " * 3000 + "b\n\nText.\n",
    "unclosed emphasis": lambda: "# T\n\n" + "**a " * 50_000,
    "unclosed links": lambda: "# T\n\n" + "[a](" * 50_000,
    "unclosed footnote markers": lambda: "# T\n\n" + "[^" * 50_000,
    "200k short lines, no blank line": lambda: "# T\n\n" + "word\n" * 200_000,
}


def _read_and_chunk(path: Path, runs: int = 3) -> tuple[float, int]:
    """Best of `runs` timings (the machine is shared: one slow run is noise, not the parser)."""
    best, count = float("inf"), 0
    for _ in range(runs):
        started = time.perf_counter()
        count = len(chunk_document(read_document(path)))
        best = min(best, time.perf_counter() - started)
    return best, count


@pytest.mark.parametrize("kind", HOSTILE_MARKDOWN)
def test_pathological_markdown_is_read_in_linear_time(tmp_path: Path, kind: str) -> None:
    body = HOSTILE_MARKDOWN[kind]()
    hostile = tmp_path / "hostile.md"
    hostile.write_text(body)
    benign = tmp_path / "benign.md"
    benign.write_text(_benign(len(body)))
    _read_and_chunk(benign)  # warm caches (regex compilation, imports)
    benign_s, _ = _read_and_chunk(benign)
    hostile_s, chunks = _read_and_chunk(hostile)
    assert chunks >= 1
    assert hostile_s < 5 * max(benign_s, 0.02), (kind, hostile_s, benign_s)


def _benign_html(size: int) -> str:
    unit = "<h4>Article 7</h4><p>1. The <b>holder</b> shall keep the <a href='#x'>records</a>.</p>"
    return "<html><body>" + unit * (size // len(unit) + 1) + "</body></html>"


HOSTILE_HTML: dict[str, Callable[[], str]] = {
    # BeautifulSoup's searches walk a nested element's subtree: 64 s, 4 s and 49 s on main
    "8,000 nested elements": lambda: (
        "<html><body>" + "<div><span>" * 4000 + "Text." + "</span></div>" * 4000 + "</body></html>"
    ),
    "4,000 unclosed paragraphs": lambda: "<html><body>" + "<p>Text." * 4000 + "</body></html>",
    "4,000 nested footnote links": lambda: (
        "<html><body><p>Text."
        + "<sup><a href='#f1'>" * 4000
        + "1"
        + "</a></sup>" * 4000
        + "</p></body></html>"
    ),
}


@pytest.mark.parametrize("kind", HOSTILE_HTML)
def test_deeply_nested_html_is_read_in_linear_time(tmp_path: Path, kind: str) -> None:
    body = HOSTILE_HTML[kind]()
    hostile = tmp_path / "hostile.html"
    hostile.write_text(body)
    benign = tmp_path / "benign.html"
    benign.write_text(_benign_html(len(body)))
    _read_and_chunk(benign)
    benign_s, _ = _read_and_chunk(benign)
    hostile_s, chunks = _read_and_chunk(hostile)
    assert chunks >= 1 and "Text." in read_document(hostile).text
    # the mechanism: the page is rebuilt to a bounded depth before BeautifulSoup searches it
    assert _depth(BeautifulSoup(_flatten(body), "html.parser")) <= MAX_DEPTH + 2
    assert hostile_s < 5 * max(benign_s, 0.05), (kind, hostile_s, benign_s)


def test_repeated_text_gives_short_unique_ids_and_is_stored_once(tmp_path: Path) -> None:
    """1 MB of one line repeated (5 MB took 17.8 s and made 5,034-character ids)."""
    path = tmp_path / "repeated.txt"
    path.write_text("The same sentence about records, again and again.\n" * 20_000)
    chunks = chunk_document(read_document(path))
    ids = [c.chunk_id for c in chunks]
    assert len(ids) == len(set(ids)) and max(map(len, ids)) < 80
    assert len({c.text for c in chunks}) == len(chunks)  # identical passages stored once
    assert len(chunks) < 10


def test_a_pdf_of_repeated_text_operators_is_stored_once(tmp_path: Path) -> None:
    """A 19 KB PDF repeating one text operator gave 3,756 chunks with 3,784-character ids."""
    content = b"BT /F1 12 Tf 72 720 Td (Repeated line of text) Tj ET\n" * 20_000
    data = pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            flate(content),
            FONT,
        ]
    )
    assert len(data) < 20_000
    path = tmp_path / "operators.pdf"
    path.write_bytes(data)
    chunks = chunk_document(read_document(path))
    assert 1 <= len(chunks) < 20 and max(len(c.chunk_id) for c in chunks) < 80


def test_too_many_passages_refuse_the_document(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    path.write_text(
        "".join(f"#### Article {i}\n\nText {i}.\n\n" for i in range(MAX_CHUNKS_PER_DOCUMENT + 1))
    )
    with pytest.raises(ReadError, match="more than 20,000 passages"):
        chunk_document(read_document(path))


# -- front matter and titles --------------------------------------------------------------------

ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


@pytest.mark.parametrize(
    ("front_matter", "reason"),
    [
        (ALIAS_BOMB + "title: *a8\n", "YAML aliases (*name) are not allowed"),
        ("title: " + "[" * 1000 + "]" * 1000 + "\n", "nests deeper than"),
        ("title: x\nnotes: '" + "x" * MAX_FRONT_MATTER_BYTES + "'\n", "larger than 64 KB"),
    ],
    ids=["alias bomb", "1,000 nested lists", "65 KB"],
)
def test_hostile_front_matter_is_refused_in_one_line(
    tmp_path: Path, front_matter: str, reason: str
) -> None:
    path = tmp_path / "doc.md"
    path.write_text(f"---\n{front_matter}---\n# Body\n\nSome text.\n")
    assert len(ALIAS_BOMB) < 600  # 469 bytes reached 7.6 GB of memory on main
    with pytest.raises(ReadError) as refused:
        read_document(path)
    message = str(refused.value)
    assert message.startswith("doc.md: ") and reason in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("title.md", "---\ntitle: '" + "Long title " * 5_000 + "'\n---\n# X\n\nText.\n"),
        (
            "title.html",
            "<html><head><title>" + "Long title " * 100_000 + "</title></head>"
            "<body><p>Text of the page.</p></body></html>",
        ),
        ("title.txt", "Long title " * 100_000 + "\n\nText.\n"),
    ],
)
def test_titles_are_capped(tmp_path: Path, name: str, content: str) -> None:
    """A 1 MB title was copied into every chunk (a 30 MB chunks.jsonl, 20 MB answers); front
    matter that large is refused (above), a 55 KB one is cut to 500 characters."""
    path = tmp_path / name
    path.write_text(content)
    doc = read_document(path)
    assert len(doc.title) <= MAX_TITLE_CHARS and doc.title.startswith("Long title")
    assert all(len(c.title) <= MAX_TITLE_CHARS for c in chunk_document(doc))


def test_pdf_metadata_title_is_capped(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.set_title("Long title " * 10_000)
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.cell(0, 8, "Article 1 Some text.")
    pdf.output(str(tmp_path / "meta.pdf"))
    assert len(read_document(tmp_path / "meta.pdf").title) <= MAX_TITLE_CHARS


def test_only_http_urls_are_kept(tmp_path: Path) -> None:
    for url in ("javascript:alert(document.cookie)", "data:text/html,<b>x</b>", "file:///etc"):
        path = tmp_path / "link.md"
        path.write_text(f"---\ntitle: T\nsource: '{url}'\n---\n# T\n\nText.\n")
        assert read_document(path).url is None, url
    path.write_text("---\ntitle: T\nsource: 'https://example.org/t'\n---\n# T\n\nText.\n")
    assert read_document(path).url == "https://example.org/t"


# -- PDFs ---------------------------------------------------------------------------------------


def nested_arrays_pdf() -> bytes:
    """A page whose content stream holds 20,000 nested arrays (a RecursionError on main)."""
    content = b"BT /F1 12 Tf 72 720 Td (Article 1 Text) Tj ET\n" + b"[" * 20_000 + b"]" * 20_000
    return pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            flate(content),
            FONT,
        ]
    )


def aes_pdf(path: Path) -> Path:
    """AES-256 encrypted with an empty user password (pypdf needs `cryptography` for it)."""
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="", encryption_method="AES_256")
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.cell(0, 8, "Article 1 Encrypted but readable text.")
    pdf.output(str(path))
    return path


def test_a_pdf_of_nested_arrays_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nested.pdf"
    path.write_bytes(nested_arrays_pdf())
    assert path.stat().st_size < 2_000
    with pytest.raises(ReadError, match="nests") as refused:
        read_document(path)
    assert "\n" not in str(refused.value)


def test_an_aes_encrypted_pdf_with_an_empty_password_is_read(tmp_path: Path) -> None:
    assert "Encrypted but readable text" in read_document(aes_pdf(tmp_path / "aes.pdf")).text


# -- isolation: one bad file never aborts an ingest ---------------------------------------------


def hostile_corpus(corpus: Path) -> dict[str, str]:
    """The files that aborted a whole ingest on main, beside the mini corpus; returns each
    bad file's name and what its reason must say."""
    (corpus / "nested-title.md").write_text(
        "---\ntitle: " + "[" * 1000 + "]" * 1000 + "\n---\n# X\n\nText.\n"
    )
    (corpus / "alias-bomb.md").write_text(f"---\n{ALIAS_BOMB}title: *a8\n---\n# X\n\nText.\n")
    (corpus / "nested-arrays.pdf").write_bytes(nested_arrays_pdf())
    aes_pdf(corpus / "aes.pdf")  # readable now: it is indexed
    return {
        "nested-title.md": "nests deeper than",
        "alias-bomb.md": "aliases",
        "nested-arrays.pdf": "nests",
    }


def test_bad_files_are_skipped_by_name_and_the_rest_indexed(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path)
    shutil.copytree(DATA / "mini", settings.corpus_dir)
    bad = hostile_corpus(settings.corpus_dir)
    report = ingest(settings, embedder=embedder)
    assert sorted(report.added) == ["aes", "guideline-demo", "reg-demo", "si-demo"]
    reasons = {Path(file).name: reason for file, reason in report.failed}
    assert set(reasons) == set(bad)
    for name, phrase in bad.items():
        assert reasons[name].startswith(f"{name}: ") and phrase in reasons[name]
        assert "\n" not in reasons[name]
    assert {c.doc_id for c in Index.load(settings.index_dir).chunks} == set(report.added)


def test_the_cli_names_each_skipped_file_without_a_traceback(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    shutil.copytree(DATA / "mini", settings.corpus_dir)
    bad = hostile_corpus(settings.corpus_dir)
    env = {
        "QA_CORPUS_DIR": str(settings.corpus_dir),
        "QA_INDEX_DIR": str(settings.index_dir),
        "QA_SOURCES_FILE": str(settings.resolved_sources_file),
    }
    result = CliRunner().invoke(cli, ["ingest", "--quiet"], env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    for name, phrase in bad.items():
        line = next(x for x in result.output.splitlines() if x.startswith(f"skipped  {name}:"))
        assert phrase in line
    assert "4 added" in result.output and "3 failed documents" in result.output


def test_a_broken_sources_manifest_is_an_error_not_ignored(
    tmp_path: Path, embedder: Embedder
) -> None:
    broken = tmp_path / "sources.toml"
    broken.write_text("[[source]]\nid = '32007R1394'\ntitle = \n")
    settings = make_settings(tmp_path, sources_file=broken)
    shutil.copytree(DATA / "mini", settings.corpus_dir)
    with pytest.raises(SourceError, match="not valid TOML"):
        ingest(settings, embedder=embedder)
    assert not (settings.index_dir / "current").exists()


# -- the worker process's limits ----------------------------------------------------------------


def job(path: Path) -> ParseJob:
    return ParseJob(path, LOCAL, None, 1000, 150)


def test_a_document_over_its_time_limit_is_skipped_and_the_next_read(tmp_path: Path) -> None:
    slow = tmp_path / "slow.md"
    slow.write_text("# T\n\n" + "[a](**b " * 1_000_000)  # ~8 MB of markup: seconds to parse
    good = tmp_path / "good.md"
    good.write_text("# Good\n\n#### Article 1\n\nFine text.\n")
    with Parser(ParseLimits(seconds=0.5)) as parser:
        started = time.perf_counter()
        with pytest.raises(ReadError, match=r"took longer than 0\.5 s"):
            parser.parse(job(slow))
        assert time.perf_counter() - started < 30  # killed, not waited for
        assert parser.parse(job(good)).chunks[0].text == "Fine text."


def test_a_document_over_its_memory_limit_is_skipped(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Article 1\n\n" + "x" * 150_000_000)  # 150 MB: with the interpreter, > 300
    good = tmp_path / "good.txt"
    good.write_text("Article 1\n\nFine text.\n")
    with Parser(ParseLimits(seconds=120, memory_bytes=300 * 1024**2)) as parser:
        with pytest.raises(ReadError, match="memory") as refused:
            parser.parse(job(big))
        assert "\n" not in str(refused.value)
        assert "Fine text." in parser.parse(job(good)).chunks[0].text


def test_settings_set_the_worker_limits(tmp_path: Path) -> None:
    from qa.pipeline import parse_limits

    settings = Settings(_env_file=None, ingest_doc_timeout_s=3, ingest_doc_memory_mb=512)
    assert parse_limits(settings) == ParseLimits(3.0, 512 * 1024**2)
