"""Pack provisions into chunks that fit the embedding model and never straddle two provisions."""

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qa.errors import ReadError
from qa.readers import Document
from qa.readers.document import LOCAL
from qa.structure import Block, Provision, parse_provisions

# 3: identical passages of a document stored once, ids without "+" suffixes, `origin`.
CHUNKER_VERSION = "3"
# A document is refused beyond this many passages (20 MB of text at 1,000 characters each).
MAX_CHUNKS_PER_DOCUMENT = 20_000
PARENTHESISED_TAIL = re.compile(r"\s+\(.*\)$")
SENTENCE_BREAK = re.compile(r"(?<=[.;:])\s+(?=[A-Z(“‘\"\-])|\n")
SHORT_TITLE = re.compile(
    r"^(?:Commission\s+(?:Delegated\s+|Implementing\s+)?)?(?:Regulation|Directive|Decision)\s*"
    r"\((?:EC|EU|EEC|Euratom)\)\s*(?:No\.?\s*)?\d+/\d+",
    re.I,
)


@dataclass(frozen=True)
class Chunk:
    """A passage: one provision or a piece of one, with everything needed to cite it."""

    chunk_id: str
    doc_id: str
    title: str
    short_title: str
    jurisdiction: str | None
    url: str | None
    section: str
    provision: str
    heading: str
    heading_path: tuple[str, ...]
    text: str
    start: int
    end: int
    page: int | None
    page_end: int | None
    ordinal: int
    origin: str = LOCAL  # "official mirror", "uploaded" or "local file" (qa.readers.document)

    @property
    def label(self) -> str:
        """Citation label: "Regulation (EC) No 1394/2007, Article 15(4)"."""
        return f"{self.short_title}, {self.section}"

    @property
    def context(self) -> str:
        """Where the passage sits: container, provision and its heading."""
        head = self.section + (f" — {self.heading}" if self.heading else "")
        return " > ".join([*self.heading_path[-1:], head])

    @property
    def embed_text(self) -> str:
        """What is embedded: the document's number, where the passage sits, the passage."""
        document = PARENTHESISED_TAIL.sub(
            "", self.short_title
        )  # "SI 2010/1882 (…)" → "SI 2010/1882"
        return f"{document} > {self.context}\n{self.text}"

    @property
    def lexical_text(self) -> str:
        """What BM25 sees: headings count as evidence, document titles do not."""
        return f"{self.context}\n{self.text}"


def short_title_of(title: str) -> str:
    """How a lawyer names a document: "Regulation (EC) No 1394/2007", else a trimmed title."""
    if m := SHORT_TITLE.match(title.strip()):
        return " ".join(m.group(0).split())
    title = " ".join(title.split())
    return title if len(title) <= 90 else title[:87].rsplit(" ", 1)[0] + "…"


def _split_long(block: Block, max_chars: int) -> Iterator[Block]:
    """Split a block longer than `max_chars` at sentence, then word boundaries."""
    if len(block.text) <= max_chars:
        yield block
        return
    pieces: list[str] = []
    current = ""
    for sentence in SENTENCE_BREAK.split(block.text):
        at = 0  # cut by position: re-slicing the rest after each cut was quadratic
        while len(sentence) - at > max_chars:  # a run-on "sentence": cut at a space
            space = sentence.rfind(" ", at, at + max_chars)
            cut = space if space != -1 and space - at > max_chars // 2 else at + max_chars
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[at:cut])
            at = cut
            while at < len(sentence) and sentence[at].isspace():
                at += 1
        sentence = sentence[at:] if at else sentence
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        pieces.append(current)
    span = max(block.end - block.start, 1)
    done = 0
    for piece in pieces:
        start = block.start + span * done // len(block.text)
        done += len(piece) + 1
        end = block.start + min(span, span * done // len(block.text))
        yield Block(text=piece, start=start, end=end, label=block.label)


def _pack(blocks: Sequence[Block], max_chars: int, min_chars: int) -> list[list[Block]]:
    """Pack blocks into pieces of at most `max_chars`.

    A provision that fits stays whole. Otherwise a piece ends at a numbered-paragraph
    boundary once it holds `min_chars`, so most pieces are one paragraph ("Article 15(4)")
    and a paragraph stays with its points when it fits.
    """
    if sum(len(b.text) + 1 for b in blocks) <= max_chars:
        return [list(blocks)]
    groups: list[list[Block]] = []
    for block in blocks:
        if groups and block.label == groups[-1][-1].label:
            groups[-1].append(block)
        else:
            groups.append([block])
    pieces: list[list[Block]] = []
    current: list[Block] = []
    size = 0
    for group in groups:
        group_size = sum(len(b.text) + 1 for b in group)
        if group_size > max_chars:  # too big to keep whole: its blocks one by one
            items = [[piece] for b in group for piece in _split_long(b, max_chars)]
        else:
            items = [group]
        for item in items:
            item_size = sum(len(b.text) + 1 for b in item)
            new_paragraph = item[0].label is not None and item is group
            if current and (size + item_size > max_chars or (new_paragraph and size >= min_chars)):
                pieces.append(current)
                current, size = [], 0
            current.extend(item)
            size += item_size
    if current:
        pieces.append(current)
    return pieces


def _group_recitals(provisions: list[Provision], max_chars: int) -> list[Provision]:
    """Merge runs of short recitals into one provision ("Recitals 3–5") up to `max_chars`."""
    merged: list[Provision] = []
    run: list[Provision] = []
    run_size = 0

    def flush() -> None:
        nonlocal run_size
        run_size = 0
        if len(run) == 1:
            merged.append(run[0])
        elif run:
            first, last = run[0].section.split()[-1], run[-1].section.split()[-1]
            blocks = [b for p in run for b in p.blocks]
            merged.append(Provision(f"Recitals {first}–{last}", "recital", "", run[0].path, blocks))
        run.clear()

    for provision in provisions:
        size = sum(len(b.text) + 1 for b in provision.blocks)
        if provision.kind == "recital" and size < max_chars:
            if run and run_size + size > max_chars:
                flush()
            run.append(provision)
            run_size += size
        else:
            flush()
            merged.append(provision)
    flush()
    return merged


def _section_label(provision: Provision, piece: list[Block], whole: bool) -> str:
    """ "Article 15(4)" for one paragraph, "Article 15(5)–(6)" for a run, else "Article 15"."""
    labels = list(dict.fromkeys(b.label for b in piece))
    if whole or None in labels:
        return provision.section
    if len(labels) == 1:
        return f"{provision.section}({labels[0]})"
    return f"{provision.section}({labels[0]})–({labels[-1]})"


def _chunk_id(doc_id: str, section: str, text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", section).strip("-").lower()
    digest = hashlib.sha1(f"{section}\n{text}".encode()).hexdigest()[:10]
    return f"{doc_id}:{slug}:{digest}"


def chunk_document(
    doc: Document,
    *,
    max_chars: int = 1000,
    min_chars: int = 150,
    short_title: str | None = None,
    origin: str = LOCAL,
) -> list[Chunk]:
    """Chunk a document along its provisions; each chunk stays inside one provision.

    A passage whose section and text repeat an earlier one of the document is stored once;
    more than `MAX_CHUNKS_PER_DOCUMENT` passages refuse the document (`ReadError`).
    """
    short = short_title or short_title_of(doc.title)
    chunks: list[Chunk] = []
    seen: dict[str, str] = {}  # chunk id → its text
    collisions = 0
    for provision in _group_recitals(parse_provisions(doc), max_chars):
        title = provision.title
        if not title and provision.kind in ("annex", "schedule") and len(provision.blocks) > 1:
            first = provision.blocks[0].text
            title = first if len(first) <= 200 and "\n" not in first else ""
        pieces = _pack(provision.blocks, max_chars, min_chars)
        for piece in pieces:
            section = _section_label(provision, piece, whole=len(pieces) == 1)
            text = "\n".join(b.text for b in piece)
            chunk_id = _chunk_id(doc.doc_id, section, text)
            if chunk_id in seen:
                if seen[chunk_id] == text:  # the same passage again: stored and embedded once
                    continue
                collisions += 1  # another text with the same digest prefix (astronomically rare)
                chunk_id = f"{chunk_id}-{collisions}"
            seen[chunk_id] = text
            if len(chunks) >= MAX_CHUNKS_PER_DOCUMENT:
                raise ReadError(
                    f"{doc.source_path.name}: the document has more than "
                    f"{MAX_CHUNKS_PER_DOCUMENT:,} passages; split it into smaller files"
                )
            start, end = piece[0].start, piece[-1].end
            chunks.append(
                Chunk(
                    chunk_id=chunk_id,
                    doc_id=doc.doc_id,
                    title=doc.title,
                    short_title=short,
                    jurisdiction=doc.jurisdiction,
                    url=doc.url,
                    section=section,
                    provision=provision.section,
                    heading=title,
                    heading_path=provision.path,
                    text=text,
                    start=start,
                    end=end,
                    page=doc.page_at(start),
                    page_end=doc.page_at(max(start, end - 1)),
                    ordinal=len(chunks),
                    origin=origin,
                )
            )
    return chunks
