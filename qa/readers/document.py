"""The `Document` every reader produces: normalised text plus where it came from."""

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Caps on what a document's own metadata may put into every chunk and response.
MAX_TITLE_CHARS = 500
MAX_URL_CHARS = 2000
MAX_META_CHARS = 500

# Where a document came from, as every chunk, passage, citation and document says.
OFFICIAL = "official mirror"  # its sha256 matches sources.toml (or it is the fetched file)
UPLOADED = "uploaded"  # saved through POST /documents (corpus/uploads/)
LOCAL = "local file"  # any other file: the corpus folder or a path given to `ingest`
ORIGINS = (OFFICIAL, UPLOADED, LOCAL)
# Hosts whose links make a citation look like the official text; a document that is not
# the official mirror never links to them.
OFFICIAL_HOSTS = re.compile(r"(?:^|\.)(?:europa\.eu|legislation\.gov\.uk|gov\.uk)$", re.I)


@dataclass(frozen=True)
class Document:
    """A document's text and metadata, the input of chunking.

    `text` is Markdown-flavoured plain text: headings are lines starting with `#`
    (HTML and Markdown readers emit them; PDF and plain text have none and rely on the
    chunker's recognition of provision headings). `page_starts[i]` is the offset in
    `text` where page i+1 begins (PDF only).
    """

    doc_id: str
    title: str
    text: str
    source_path: Path
    sha256: str
    page_starts: tuple[int, ...] = ()
    url: str | None = None
    jurisdiction: str | None = None
    kind: str | None = None
    version_date: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding character `offset`, or None when not paginated."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))


def cap_text(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    """`text` on one line, cut to `limit` characters at a word boundary ("…" marks a cut)."""
    text = " ".join(text[: limit * 4].split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else text[: limit - 1]) + "…"


def safe_url(url: object) -> str | None:
    """An absolute http(s) URL with a host, else None (no `javascript:`, `data:`, `file:`)."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def is_official_host(url: str | None) -> bool:
    """Whether a URL points at EUR-Lex, the EU's ELI or legislation.gov.uk (and the like)."""
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:
        return False
    return bool(host and OFFICIAL_HOSTS.search(host))


def file_sha256(data: bytes) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def doc_id_for(path: Path) -> str:
    """A document's id is its file stem (`32007R1394`, `uksi-2025-87`)."""
    return path.stem
