"""Recognise the structure of a legal or guideline text: which provision each paragraph belongs to.

`parse_provisions` walks a `Document`'s lines once and returns `Provision`s (an Article, a
recital, an Annex, a UK regulation, a Schedule paragraph, a numbered guideline section, …),
each holding its paragraphs as `Block`s with their character offsets. Chunking packs those.
"""

import re
from dataclasses import dataclass, field

from qa.markup import strip_emphasis, strip_footnote_refs, strip_links
from qa.readers import Document

# Headings, footnote markers, links and emphasis are parsed in linear time (qa.markup): the
# backtracking patterns they replace took minutes on a few hundred KB of hostile Markdown.
MD_HEADING_START = re.compile(r"(#{1,6})\s+")
MAX_HEADING_CHARS = 500  # a heading is copied into every chunk under it
FOOTNOTE_DEF = re.compile(r"^\[\^[^\]]+\]:")
QUOTE_MARKS = re.compile(r"^(?:\s*>)+\s?")

ARTICLE = re.compile(r"^article\s+(\d+(?:-?[a-z]{1,3})?)\b\.?\s*(?:[—–-]\s*)?(.*)$", re.I)
ANNEX = re.compile(r"^annex\b\s*([IVXLC]+|\d+[A-Z]?|[A-Z])?\b\.?\s*(?:[—–-]\s*)?(.*)$", re.I)
SCHEDULE = re.compile(r"^schedule\s+(\d+[A-Z]*)\b\.?\s*(?:[—–-]\s*)?(.*)$", re.I)
CONTAINER = re.compile(
    r"^(part|title|chapter|section|sub-section)\s+([IVXLC]+|\d+[A-Z]?)\b\.?\s*(?:[—–:-]\s*)?(.*)$",
    re.I,
)
CONTAINER_RANK = {"part": 0, "title": 1, "chapter": 2, "section": 3, "sub-section": 4}
BARE_NUMBER = re.compile(r"^(\d+[A-Z]{0,2})\.?$")
UK_REGULATION_START = re.compile(r"^(\d+[A-Z]{0,2})\.—\s*(.*)$")  # "4.—(1) A person …" in PDFs
NUMBERED_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?\s+([A-Z(“‘\"].{1,150})$")
SKIP_HEADINGS = {"footnotes", "editorial notes", "notes", "textual amendments"}
RECITAL = re.compile(r"^-?\s*\((\d+)\)\s*")
EU_PARAGRAPH = re.compile(r"^(\d+[a-z]?)\.\s*\S")
UK_PARAGRAPH = re.compile(r"^-?\s*\((\d+[A-Z]{0,2})\)")
BLOCK_START = re.compile(r"^(?:-\s|\d+[a-z]?\.\s|\(\w{1,5}\)\s)")


@dataclass
class Block:
    """A paragraph (or list item) of a provision: cleaned text and its span in the document."""

    text: str
    start: int
    end: int
    label: str | None = None  # the numbered paragraph it belongs to ("4" in Article 15(4))
    more: list[str] = field(default_factory=list, repr=False)  # continuation lines, see `seal`

    def seal(self) -> None:
        """Join the continuation lines into `text` (once: `+=` per line was quadratic)."""
        if self.more:
            self.text = "\n".join([self.text, *self.more])
            self.more = []


@dataclass
class Provision:
    """A citable unit: `section` is how a lawyer cites it ("Article 15", "regulation 17A")."""

    section: str
    kind: (
        str  # article|recital|annex|schedule|schedule_paragraph|regulation|section|heading|preamble
    )
    title: str = ""
    path: tuple[str, ...] = ()
    blocks: list[Block] = field(default_factory=list)


def md_heading(line: str) -> tuple[int, str] | None:
    """A Markdown ATX heading's level and text ("## Title ##" → (2, "Title")), else None."""
    m = MD_HEADING_START.match(line)
    if m is None:
        return None
    return len(m.group(1)), line[m.end() :].rstrip().rstrip("#").rstrip()


def clean_line(line: str) -> str:
    """Strip Markdown quoting, footnote markers, link targets and emphasis from one line."""
    line = QUOTE_MARKS.sub("", line)
    line = strip_footnote_refs(line)
    line = strip_links(line)
    line = strip_emphasis(line)
    return line.strip()


def _heading_text(text: str) -> str:
    text = " ".join(strip_emphasis(strip_links(text)).split())
    return text if len(text) <= MAX_HEADING_CHARS else text[: MAX_HEADING_CHARS - 1] + "…"


class _Parser:
    """Line-by-line state machine; see `parse_provisions`."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.markdown = any(md_heading(line) for line in doc.text.splitlines()[:2000])
        self.legal = bool(
            re.search(r"^(?:#+\s*)?(article\s+\d|schedule\s+\d|#{6}\s*\d)", doc.text, re.I | re.M)
        )
        self.provisions: list[Provision] = []
        self.current: Provision | None = None
        self.block: Block | None = None
        self.containers: list[tuple[int, str]] = []
        self.annex: tuple[str, str, str] | None = None  # (kind, label, heading text)
        self.annex_level = 0
        self.group_title = ""
        self.pending_heading = ""
        self.recitals = False
        self.skipping = False
        self.seen_title_heading = False

    # -- provisions -------------------------------------------------------------------------
    def path(self) -> tuple[str, ...]:
        outer = [text for _, text in self.containers]
        return (self.annex[2], *outer) if self.annex else tuple(outer)

    def end_block(self) -> None:
        if self.block is not None:
            self.block.seal()
        self.block = None

    def close(self) -> None:
        self.end_block()
        if self.current is not None and self.current.blocks:
            self.provisions.append(self.current)
        self.current = None

    def open(self, section: str, kind: str, title: str = "") -> None:
        self.close()
        self.current = Provision(section=section, kind=kind, title=title, path=self.path())

    def ensure_open(self) -> Provision:
        if self.current is None:
            if self.pending_heading and not self.annex:
                self.open(self.pending_heading[:80], "heading")
            elif self.annex:
                self.open(self.annex[1], self.annex[0], self.pending_heading)
            elif self.containers:
                self.open(
                    self.containers[-1][1].split(" ")[0].title()
                    + " "
                    + self.containers[-1][1].split(" ")[1],
                    "heading",
                )
            else:
                self.open("Preamble", "preamble")
        assert self.current is not None
        return self.current

    # -- headings ---------------------------------------------------------------------------
    def heading(self, text: str, level: int) -> None:
        text = _heading_text(text)
        if not text:
            return
        self.end_block()
        if m := ARTICLE.match(text):
            self.skipping = self.recitals = False
            self.annex = None if self.annex and self.annex[0] == "annex" else self.annex
            self.open(f"Article {m.group(1)}", "article", m.group(2))
        elif (m := ANNEX.match(text)) and (m.group(1) or text.lower().strip(" .") == "annex"):
            self.skipping = self.recitals = False
            self.containers = []
            label = f"Annex {m.group(1)}" if m.group(1) else "Annex"
            self.annex, self.annex_level = ("annex", label, text), level
            self.group_title = self.pending_heading = ""
            self.open(label, "annex", m.group(2))
        elif m := SCHEDULE.match(text):
            self.skipping = self.recitals = False
            self.containers = []
            label = f"Schedule {m.group(1)}"
            self.annex, self.annex_level = ("schedule", label, text), level
            self.group_title = self.pending_heading = ""
            self.open(label, "schedule", m.group(2))
        elif m := CONTAINER.match(text):
            self.skipping = self.recitals = False
            rank = CONTAINER_RANK[m.group(1).lower()]
            self.containers = [c for c in self.containers if c[0] < rank] + [(rank, text)]
            self.close()
            self.group_title = self.pending_heading = ""
        elif (m := BARE_NUMBER.match(text)) and self.markdown:
            self.skipping = False
            if self.annex:
                label = f"{self.annex[1]}, paragraph {m.group(1)}"
                self.open(label, "schedule_paragraph", self.group_title)
            else:
                self.open(f"regulation {m.group(1)}", "regulation", self.group_title)
            self.pending_heading = ""
        elif text.lower().strip(" :") in SKIP_HEADINGS:
            self.close()
            self.skipping, self.containers, self.annex = True, [], None
        elif (m := NUMBERED_HEADING.match(text)) and not self.legal:
            self.skipping = False
            self.open(f"Section {m.group(1)}", "section", m.group(2))
        else:
            self.skipping = False
            current = self.current
            if current is not None and not current.blocks and not current.title:
                current.title = text  # "##### Traceability" under "#### Article 15"
            elif level == 1 and not self.seen_title_heading:
                self.seen_title_heading = True
            else:
                self.close()
                if self.annex and level <= self.annex_level:  # "## Signed" after the Schedules
                    self.annex = None
                self.group_title = self.pending_heading = text
                if self.annex:
                    self.open(self.annex[1], self.annex[0], text)

    # -- text -------------------------------------------------------------------------------
    def text_line(self, raw: str, start: int, end: int) -> None:
        if self.skipping:
            return
        line = clean_line(raw)
        if not line:
            return
        if self.current is None or self.current.kind in ("preamble", "recital"):
            if self.recitals and (m := RECITAL.match(line)) and self.block is None:
                self.open(f"Recital {m.group(1)}", "recital")
            elif (
                self.recitals
                and self.block is None
                and self.current is not None
                and self.current.kind == "recital"
                and not RECITAL.match(line)
            ):
                self.open("Preamble", "preamble")
        if not self.markdown and (m := UK_REGULATION_START.match(line)) and self.legal:
            self.open(f"regulation {m.group(1)}", "regulation", self.group_title)
        provision = self.ensure_open()
        if self.block is None or BLOCK_START.match(line):
            label = self._label(provision, line, quoted=raw.lstrip().startswith(">"))
            self.end_block()
            self.block = Block(text=line, start=start, end=end, label=label)
            provision.blocks.append(self.block)
        else:
            self.block.more.append(line)
            self.block.end = end
        if provision.kind == "preamble" and line.lower().startswith("whereas"):
            self.recitals = True
            self.end_block()

    def _label(self, provision: Provision, line: str, *, quoted: bool) -> str | None:
        """The numbered paragraph a new block opens, else the one it continues."""
        previous = provision.blocks[-1].label if provision.blocks else None
        if quoted:  # quoted amending text: its numbers are not this provision's paragraphs
            return previous
        if provision.kind == "article":
            m = EU_PARAGRAPH.match(line)
        elif provision.kind in ("regulation", "schedule", "schedule_paragraph"):
            m = UK_PARAGRAPH.match(line)
        else:
            return None
        return m.group(1) if m else previous

    def plain_heading(self, line: str) -> bool:
        """Recognise a provision heading on a plain (PDF/text) line; True when handled."""
        text = line.strip()
        if (
            len(text) > 120
            or text.endswith((".", ",", ";"))
            and not text.lower().startswith("article")
        ):
            return False
        if re.fullmatch(r"Article\s+\d+[a-z]*", text, re.I):
            self.heading(text, 4)
            return True
        upper = text.split(" ")[0].isupper()
        if upper and (ANNEX.match(text) or SCHEDULE.match(text) or CONTAINER.match(text)):
            self.heading(text, 2)
            return True
        if not self.legal and NUMBERED_HEADING.match(text) and len(text) <= 90:
            self.heading(text, 3)
            return True
        if (
            self.current is not None
            and self.current.kind == "article"
            and not self.current.blocks
            and not self.current.title
        ):
            self.current.title = text
            return True
        return False

    def run(self) -> list[Provision]:
        offset = 0
        for raw in self.doc.text.splitlines(keepends=True):
            start, offset = offset, offset + len(raw)
            line = raw.rstrip("\r\n")
            stripped = QUOTE_MARKS.sub("", line).strip()
            if not stripped or FOOTNOTE_DEF.match(stripped):
                self.end_block()
            elif self.markdown and (heading := md_heading(line)):
                self.heading(heading[1], heading[0])
            elif self.markdown or not self.plain_heading(stripped):
                self.text_line(line, start, start + len(line))
        self.close()
        return self.provisions


def parse_provisions(doc: Document) -> list[Provision]:
    """Split a document into provisions (Articles, recitals, Annexes, regulations, sections…)."""
    return _Parser(doc).run()
