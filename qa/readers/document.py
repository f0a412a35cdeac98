"""The `Document` every reader produces: normalised text plus where it came from."""

import bisect
import hashlib
from dataclasses import dataclass, field
from pathlib import Path


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


def file_sha256(data: bytes) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def doc_id_for(path: Path) -> str:
    """A document's id is its file stem (`32007R1394`, `uksi-2025-87`)."""
    return path.stem
