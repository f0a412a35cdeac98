"""Markdown reader: YAML front matter (title, source/ELI, country, …) plus a Markdown body."""

from pathlib import Path
from typing import Any

import yaml

from qa.errors import ReadError
from qa.readers.document import Document, doc_id_for, file_sha256
from qa.readers.text import decode_text, first_line

JURISDICTIONS = {"eu": "EU", "uk": "UK", "gb": "UK"}


def split_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    """Split `---`-delimited YAML front matter from the body; no front matter gives `{}`."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end == -1:
        raise ReadError(f"{path.name}: the YAML front matter opened with '---' is never closed")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(ex, "problem", None) or "syntax error"
        reason = f"the YAML front matter is invalid ({problem}{where})"
        raise ReadError(f"{path.name}: {reason}") from None
    if not isinstance(meta, dict):
        raise ReadError(f"{path.name}: the YAML front matter is not a mapping")
    body_start = text.find("\n", end + 4)
    return meta, text[body_start + 1 :] if body_start != -1 else ""


def read_markdown(path: Path) -> Document:
    """Read a Markdown document, taking title, URL and jurisdiction from its front matter."""
    data = path.read_bytes()
    meta, body = split_front_matter(path, decode_text(path, data))
    if not body.strip():
        raise ReadError(f"{path.name}: the document has front matter but no text")
    doc_id = doc_id_for(path)
    country = str(meta.get("country", "")).lower()
    return Document(
        doc_id=doc_id,
        title=str(meta.get("title") or first_line(body, doc_id)).strip(),
        text=body,
        source_path=path,
        sha256=file_sha256(data),
        url=str(meta.get("source") or meta.get("eli") or "") or None,
        jurisdiction=JURISDICTIONS.get(country),
        kind=str(meta["rank"]) if meta.get("rank") else None,
        version_date=str(meta["last_updated"]) if meta.get("last_updated") else None,
        metadata={k: str(v) for k, v in meta.items() if isinstance(v, str | int | float)},
    )
