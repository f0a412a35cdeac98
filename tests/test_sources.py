"""Tests for qa.sources: the sources manifest and fetching the corpus (no network)."""

from __future__ import annotations

import csv
import hashlib
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from qa.errors import SourceError
from qa.sources import (
    CAVEAT_REQUIRED,
    STATUSES,
    FetchStatus,
    Source,
    fetch_corpus,
    load_sources,
    sources_by_id,
)

ROOT = Path(__file__).resolve().parents[1]
REAL_SOURCES = ROOT / "corpus" / "sources.toml"
SHARED_MANIFEST = Path("/work/shared/corpus/MANIFEST.tsv")
NOT_MIRRORED = {
    "32001L0083",
    "32009L0120",
    "eudralex-vol4-part4-atmp-gmp",
    "ec-2019-atmp-gcp-guidelines",
    "ema-cat-atmp-classification-reflection-paper",
}

ALPHA = b"# Alpha\n\nArticle 1. Alpha text.\n"
BETA = b"# Beta\n\nArticle 2. Beta text.\n"
GAMMA = b"%PDF-1.4 gamma (not pinned)\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(
    sid: str,
    file: str,
    *,
    sha: str | None,
    mirrored: bool = True,
    url: str = "https://example.invalid/doc",
    download_url: str | None = None,
) -> str:
    lines = [
        "[[source]]",
        f'id = "{sid}"',
        f'title = "Title of {sid}"',
        f'short_title = "Short {sid}"',
        'jurisdiction = "EU"',
        'kind = "regulation"',
        'version_date = "2020-01-31"',
        f'url = "{url}"',
        'licence = "CC-BY-4.0"',
        'attribution = "© European Union"',
        f'file = "{file}"',
        f"mirrored = {'true' if mirrored else 'false'}",
    ]
    if sha is not None:
        lines.append(f'sha256 = "{sha}"')
    if download_url is not None:
        lines.append(f'download_url = "{download_url}"')
    return "\n".join(lines) + "\n\n"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    _write(root / "eu" / "alpha.md", ALPHA)
    _write(root / "uk" / "beta.md", BETA)
    _write(root / "eu" / "gamma.pdf", GAMMA)
    return root


@pytest.fixture
def small_sources(tmp_path: Path) -> list[Source]:
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry("alpha", "eu/alpha.md", sha=_sha(ALPHA))
        + _entry("beta", "uk/beta.md", sha=_sha(BETA))
        + _entry("gamma", "eu/gamma.pdf", sha=None, mirrored=False),
        encoding="utf-8",
    )
    return load_sources(toml)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(_QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_real_sources_toml_lists_every_manifest_entry() -> None:
    sources = load_sources(REAL_SOURCES)
    by_id = sources_by_id(sources)
    assert len(by_id) == len(sources)
    with SHARED_MANIFEST.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert rows
    for row in rows:
        stem = Path(row["file"]).stem
        source = by_id[stem]
        assert source.file == row["file"]
        assert source.sha256 == row["sha256"]
        assert source.mirrored is True
        assert source.url == row["official_url"]
        assert source.jurisdiction == ("EU" if row["file"].startswith("eu/") else "UK")
        assert source.title == " ".join(source.title.split())
        assert source.notes
    mirrored = {s.id for s in sources if s.mirrored}
    assert mirrored == {Path(row["file"]).stem for row in rows}


def test_real_sources_toml_lists_the_texts_we_cannot_ship() -> None:
    by_id = sources_by_id(load_sources(REAL_SOURCES))
    for sid in NOT_MIRRORED:
        source = by_id[sid]
        assert source.mirrored is False
        assert source.sha256 is None
        assert source.url.startswith("http")
    assert by_id["32001L0083"].url == "http://data.europa.eu/eli/dir/2001/83/oj"
    assert by_id["32001L0083"].download_url == (
        "https://eur-lex.europa.eu/legal-content/EN/TXT/HTML/?uri=CELEX:32001L0083"
    )
    assert by_id["32001L0083"].file == "eu/32001L0083.html"
    assert by_id["eudralex-vol4-part4-atmp-gmp"].file == "eu/eudralex-vol4-part4-atmp-gmp.pdf"
    assert by_id["32007R1394"].short_title == "Regulation (EC) No 1394/2007"


def test_real_mirror_files_match_their_pinned_sha256() -> None:
    corpus = SHARED_MANIFEST.parent
    if not corpus.is_dir():
        pytest.skip(f"no shared corpus at {corpus}")
    mirrored = [s for s in load_sources(REAL_SOURCES) if s.mirrored]
    assert len(mirrored) == 19
    for source in mirrored:
        data = (corpus / source.file).read_bytes()
        assert _sha(data) == source.sha256, source.id


MIRRORED_FILES = {
    "eu/32000R0141.md",
    "eu/32004L0023.md",
    "eu/32004R0726.md",
    "eu/32006L0017.md",
    "eu/32006R0507.md",
    "eu/32006R1901.md",
    "eu/32007R1394.md",
    "eu/32008R1234.md",
    "eu/32009R0668.md",
    "eu/32014R0536.md",
    "eu/32017R1569.md",
    "eu/32019R0005.md",
    "eu/32024R1938.md",
    "uk/uksi-2004-1031.md",
    "uk/uksi-2007-1523.md",
    "uk/uksi-2010-1882.md",
    "uk/uksi-2012-1916.md",
    "uk/uksi-2025-538.md",
    "uk/uksi-2025-87.md",
}


def test_real_sources_toml_lists_all_19_mirrored_files() -> None:
    sources = load_sources(REAL_SOURCES)
    assert {s.file for s in sources if s.mirrored} == MIRRORED_FILES
    for source in sources:
        if source.mirrored and source.id != "uksi-2012-1916":  # the excerpt: mirror only
            assert source.download_url is not None, source.id
            assert source.download_url.startswith(
                "https://raw.githubusercontent.com/legalize-dev/"
            ), source.id
            assert source.download_url.endswith("/" + Path(source.file).name), source.id
    by_id = sources_by_id(sources)
    assert "EUTCD" in by_id["32004L0023"].aliases
    assert "Q&S Regulations" in by_id["uksi-2007-1523"].aliases
    assert by_id["32004L0023"].kind == "directive" and by_id["32006L0017"].kind == "directive"
    assert by_id["uksi-2025-538"].url == "https://www.legislation.gov.uk/uksi/2025/538"


def test_real_sources_version_status_and_caveats() -> None:
    sources = load_sources(REAL_SOURCES)
    by_id = sources_by_id(sources)
    for source in sources:
        assert source.status in STATUSES, source.id
        if source.status in CAVEAT_REQUIRED:
            assert source.caveat and "\n" not in source.caveat, source.id
            assert len(source.caveat) <= 160, source.id
        for amended in source.amends:
            assert amended != source.id
    assert by_id["uksi-2012-1916"].status == "excerpt"
    assert by_id["uksi-2012-1916"].caveat == (
        "HMR 2012: excerpts, as at 2013-11-11; later amendments not included"
    )
    for sid in ("32004R0726", "32007R1394", "32008R1234", "32014R0536", "uksi-2004-1031"):
        assert by_id[sid].status == "not-current", sid
    assert "2012-07-02" in by_id["32007R1394"].caveat
    assert by_id["uksi-2010-1882"].status == "superseded"
    assert by_id["32004L0023"].status == "to-be-repealed"
    assert by_id["32024R1938"].status == "not-yet-applicable"
    # A text whose caveat says it is not current is not marked current, and vice versa.
    for source in sources:
        if "NOT current" in source.notes or "EXCERPTS" in source.notes:
            assert source.status != "current", source.id
    amending = {s.id: s.amends for s in sources if s.status == "as-made-amending"}
    assert amending == {
        "32019R0005": ("32004R0726", "32006R1901", "32001L0083"),
        "32009L0120": ("32001L0083",),
        "uksi-2025-87": ("uksi-2012-1916", "uksi-2004-1031"),
        "uksi-2025-538": ("uksi-2004-1031",),
    }
    assert "uksi-2004-1031" in by_id["uksi-2010-1882"].amends


def _names_in(text: str, name: str) -> bool:
    words = r"\s+".join(re.escape(w) for w in name.split())
    return re.search(rf"(?<![\w/]){words}(?![\w/])", text, re.I) is not None


def test_real_aliases_do_not_collide_across_documents() -> None:
    sources = load_sources(REAL_SOURCES)
    for source in sources:
        for alias in source.aliases:
            for other in sources:
                if other.id == source.id:
                    continue
                for name in (*other.aliases, other.short_title):
                    assert not _names_in(name, alias), (source.id, alias, other.id, name)


def test_copy_from_mirror(tmp_path: Path, mirror: Path, small_sources: list[Source]) -> None:
    corpus = tmp_path / "corpus"
    seen: list[FetchStatus] = []
    statuses = fetch_corpus(
        small_sources, corpus, mirror=mirror, timeout_s=2, on_status=seen.append
    )
    assert seen == statuses
    assert [s.state for s in statuses] == ["copied", "copied", "copied"]
    assert (corpus / "eu" / "alpha.md").read_bytes() == ALPHA
    assert (corpus / "uk" / "beta.md").read_bytes() == BETA
    assert (corpus / "eu" / "gamma.pdf").read_bytes() == GAMMA
    line = statuses[0].line()
    assert line.startswith("copied      alpha  Short alpha  (from ")
    assert str(mirror) in line
    assert not list(corpus.rglob("*.part"))


def test_second_run_is_all_present(
    tmp_path: Path, mirror: Path, small_sources: list[Source]
) -> None:
    corpus = tmp_path / "corpus"
    fetch_corpus(small_sources, corpus, mirror=mirror, timeout_s=2)
    again = fetch_corpus(small_sources, corpus, mirror=mirror, timeout_s=2)
    assert [s.state for s in again] == ["present", "present", "present"]
    again_without_mirror = fetch_corpus(small_sources, corpus, mirror=None, timeout_s=2)
    assert all(s.state == "present" for s in again_without_mirror)


def test_sha_mismatch_fails_and_leaves_nothing(tmp_path: Path, mirror: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(_entry("alpha", "eu/alpha.md", sha=_sha(b"something else")), encoding="utf-8")
    corpus = tmp_path / "corpus"
    [status] = fetch_corpus(load_sources(toml), corpus, mirror=mirror, timeout_s=2)
    assert status.state == "failed"
    assert status.required is True
    assert "sha256 mismatch" in status.detail
    assert "\n" not in status.detail
    assert not (corpus / "eu" / "alpha.md").exists()
    assert not [p for p in corpus.rglob("*") if p.is_file()]


def test_existing_file_with_wrong_sha_is_replaced_from_mirror(
    tmp_path: Path, mirror: Path, small_sources: list[Source]
) -> None:
    corpus = tmp_path / "corpus"
    _write(corpus / "eu" / "alpha.md", b"stale text\n")
    statuses = fetch_corpus(small_sources[:1], corpus, mirror=mirror, timeout_s=2)
    assert statuses[0].state == "copied"
    assert (corpus / "eu" / "alpha.md").read_bytes() == ALPHA


def test_download_from_local_server(tmp_path: Path, http_root: tuple[str, Path]) -> None:
    base, served = http_root
    _write(served / "alpha.md", ALPHA)
    _write(served / "gamma.pdf", GAMMA)
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry("alpha", "eu/alpha.md", sha=_sha(ALPHA), download_url=f"{base}/alpha.md")
        + _entry("gamma", "eu/gamma.pdf", sha=None, mirrored=False, url=f"{base}/gamma.pdf"),
        encoding="utf-8",
    )
    corpus = tmp_path / "corpus"
    statuses = fetch_corpus(load_sources(toml), corpus, mirror=tmp_path / "none", timeout_s=5)
    assert [s.state for s in statuses] == ["downloaded", "downloaded"]
    assert (corpus / "eu" / "alpha.md").read_bytes() == ALPHA
    assert (corpus / "eu" / "gamma.pdf").read_bytes() == GAMMA
    assert statuses[0].line().startswith("downloaded  alpha  Short alpha  (from http://127.0.0.1:")


def test_download_with_wrong_sha_leaves_nothing(
    tmp_path: Path, http_root: tuple[str, Path]
) -> None:
    base, served = http_root
    _write(served / "alpha.md", b"tampered\n")
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry("alpha", "eu/alpha.md", sha=_sha(ALPHA), download_url=f"{base}/alpha.md"),
        encoding="utf-8",
    )
    corpus = tmp_path / "corpus"
    [status] = fetch_corpus(load_sources(toml), corpus, mirror=None, timeout_s=5)
    assert status.state == "failed"
    assert "download failed: sha256 mismatch" in status.detail
    assert not [p for p in corpus.rglob("*") if p.is_file()]


def test_http_404_is_a_clear_failure(tmp_path: Path, http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry("gone", "eu/gone.pdf", sha=None, mirrored=False, url=f"{base}/gone.pdf"),
        encoding="utf-8",
    )
    [status] = fetch_corpus(load_sources(toml), tmp_path / "corpus", mirror=None, timeout_s=5)
    assert status.state == "failed"
    assert status.detail == "not mirrored; download failed: HTTP Error 404: File not found"


def test_unreachable_url_fails_quickly_with_clear_detail(tmp_path: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry(
            "32001L0083", "eu/32001L0083.html", sha=None, mirrored=False, url="http://127.0.0.1:9/x"
        ),
        encoding="utf-8",
    )
    started = time.monotonic()
    [status] = fetch_corpus(load_sources(toml), tmp_path / "corpus", mirror=None, timeout_s=3)
    assert time.monotonic() - started < 3
    assert status.state == "failed"
    assert status.required is False
    assert status.detail.startswith("not mirrored; download failed: <urlopen error")
    assert "\n" not in status.detail
    assert status.line().startswith("failed      32001L0083  Short 32001L0083  not mirrored;")


def test_mirrored_source_without_mirror_or_download_url_fails_without_network(
    tmp_path: Path, small_sources: list[Source]
) -> None:
    [status] = fetch_corpus(small_sources[:1], tmp_path / "corpus", mirror=None, timeout_s=2)
    assert status.state == "failed"
    assert status.required is True
    assert "no mirror copy and no download_url" in status.detail


def test_one_failure_does_not_stop_the_rest(tmp_path: Path, mirror: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry("alpha", "eu/alpha.md", sha=_sha(ALPHA))
        + _entry("broken", "eu/broken.md", sha=_sha(b"x"), download_url="http://127.0.0.1:9/x")
        + _entry(
            "unreachable",
            "eu/unreachable.pdf",
            sha=None,
            mirrored=False,
            url="http://127.0.0.1:9/y",
        )
        + _entry("beta", "uk/beta.md", sha=_sha(BETA)),
        encoding="utf-8",
    )
    corpus = tmp_path / "corpus"
    statuses = fetch_corpus(load_sources(toml), corpus, mirror=mirror, timeout_s=3)
    assert [s.state for s in statuses] == ["copied", "failed", "failed", "copied"]
    assert (corpus / "uk" / "beta.md").read_bytes() == BETA


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text('[[source]]\nid = "unterminated\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"sources\.toml: not valid TOML") as info:
        load_sources(toml)
    assert str(toml) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        load_sources(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title = 'no sources'\n", r"no \[\[source\]\] tables"),
        (
            _entry("a", "eu/a.md", sha=_sha(b"a")) + _entry("a", "eu/b.md", sha=_sha(b"b")),
            "duplicate source id 'a'",
        ),
        (_entry("a", "eu/a.md", sha=None), "a mirrored source needs a sha256"),
        (_entry("a", "../a.md", sha=None, mirrored=False), "must be a relative path"),
        (_entry("a", "eu/a.md", sha="abc"), "sha256 must be 64"),
        (_entry("a", "eu/a.md", sha=None, mirrored=False, url="ftp://x"), "url must be"),
        (
            _entry("a", "eu/a.md", sha=None, mirrored=False).replace("2020-01-31", "31/01/2020"),
            "not an ISO date",
        ),
        (
            _entry("a", "eu/a.md", sha=None, mirrored=False).replace(
                'kind = "regulation"', 'kind = "treaty"'
            ),
            "kind must be one of",
        ),
        (_entry("a", "eu/a.md", sha=None, mirrored=False) + "colour = 'red'\n", "unknown key"),
        (
            _entry("a", "eu/a.md", sha=None, mirrored=False) + "status = 'stale'\n",
            "status must be one of",
        ),
        (
            _entry("a", "eu/a.md", sha=None, mirrored=False) + "status = 'excerpt'\n",
            "needs a one-line caveat",
        ),
        (
            _entry("a", "eu/a.md", sha=None, mirrored=False) + "amends = 'x'\n",
            "'amends' must be a list",
        ),
        ('[[source]]\nid = "a"\n', "missing key"),
    ],
)
def test_malformed_entries_are_source_errors(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(text, encoding="utf-8")
    with pytest.raises(SourceError, match=message) as info:
        load_sources(toml)
    assert str(info.value).startswith(f"{toml}: ")


def test_status_defaults_to_current_without_caveat(tmp_path: Path) -> None:
    toml = tmp_path / "sources.toml"
    toml.write_text(
        _entry("a", "eu/a.md", sha=None, mirrored=False)
        + _entry("b", "eu/b.md", sha=None, mirrored=False)
        + "status = 'as-made-amending'\ncaveat = ' B: as made. '\namends = ['a']\n",
        encoding="utf-8",
    )
    a, b = load_sources(toml)
    assert (a.status, a.caveat, a.amends) == ("current", "", ())
    assert (b.status, b.caveat, b.amends) == ("as-made-amending", "B: as made.", ("a",))
