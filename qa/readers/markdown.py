"""Markdown reader: YAML front matter (title, source/ELI, country, …) plus a Markdown body."""

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from qa.errors import ReadError
from qa.readers.document import Document, doc_id_for, file_sha256
from qa.readers.text import decode_text, first_line

JURISDICTIONS = {"eu": "EU", "uk": "UK", "gb": "UK"}
MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_FRONT_MATTER_DEPTH = 10  # a mapping of lists of mappings… deeper than metadata ever is


class _FrontMatterError(Exception):
    """Front matter that is well-formed YAML but not allowed (aliases, deep nesting)."""


class FrontMatterLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` without aliases (a few hundred bytes of `*a` references can expand
    to gigabytes) and with a nesting limit (the composer recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _FrontMatterError("YAML aliases (*name) are not allowed")
        if self._depth >= MAX_FRONT_MATTER_DEPTH:
            raise _FrontMatterError(f"it nests deeper than {MAX_FRONT_MATTER_DEPTH} levels")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _scalar(value: Any) -> str | None:
    """A front-matter value usable as text (a string, number or date), else None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | dt.date):
        return None
    return str(value).strip() or None


def split_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    """Split `---`-delimited YAML front matter from the body; no front matter gives `{}`."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4, MAX_FRONT_MATTER_BYTES + 4)
    if end == -1:
        if text.find("\n---", 4) != -1:
            raise ReadError(
                f"{path.name}: the YAML front matter is larger than "
                f"{MAX_FRONT_MATTER_BYTES // 1024} KB; keep it to a few metadata fields"
            )
        raise ReadError(f"{path.name}: the YAML front matter opened with '---' is never closed")
    try:
        meta = yaml.load(text[4:end], Loader=FrontMatterLoader) or {}  # noqa: S506 (safe)
    except _FrontMatterError as ex:
        raise ReadError(f"{path.name}: the YAML front matter is refused ({ex})") from None
    except RecursionError:
        raise ReadError(f"{path.name}: the YAML front matter nests too deeply") from None
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
    country = (_scalar(meta.get("country")) or "").lower()
    return Document(
        doc_id=doc_id,
        title=_scalar(meta.get("title")) or first_line(body, doc_id),
        text=body,
        source_path=path,
        sha256=file_sha256(data),
        url=_scalar(meta.get("source")) or _scalar(meta.get("eli")),
        jurisdiction=JURISDICTIONS.get(country),
        kind=_scalar(meta.get("rank")),
        version_date=_scalar(meta.get("last_updated")),
        metadata={str(k): v for k, raw in meta.items() if (v := _scalar(raw)) is not None},
    )
