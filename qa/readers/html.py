"""HTML reader: EUR-Lex, legislation.gov.uk or any page, in the Markdown corpus' conventions
(`## CHAPTER 2 …`, `#### Article 15`, `##### Traceability`, `###### 4`, `- (a) …`).
"""

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from qa.errors import ReadError
from qa.readers.document import Document, doc_id_for, file_sha256
from qa.readers.text import decode_text

Item = PageElement | tuple[str, str, bool]  # an element, or ("open"/"close", label, item)
Block = tuple[str, str]  # (kind, text); kind: p, li, quote, h1..h6, div1/div2 (EU containers)

MARK = "\ue000"  # stands in for a removed footnote marker until the text is cleaned
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_INLINE_TAGS = "a abbr b bdi bdo cite code data del dfn em font i img ins kbd label mark nobr q s"
INLINE = set(f"{_INLINE_TAGS} samp small span strong sub sup time u var wbr".split())
BLOCKISH = ["p", "div", "table", "ul", "ol", "li", "section", "blockquote", *HEADINGS]
DROP_TAGS = {"script", "style", "nav", "header", "footer", "noscript", "head", "title", "template"}
DROP_ROLES = {"navigation", "banner", "contentinfo", "doc-endnotes", "doc-footnote"}
DROP_CLASS = re.compile(  # footnote texts, annotations, consolidation markers, page headers
    r"^(?:oj-note|footnotes?|modref|arrow|disclaimer|(?:oj-)?hd-.*|"
    r"Leg(?:Annotation|Commentary|Footnote|ExtentRestriction|ChangeDelimiter|ArticleRef).*)$"
)
MARKER_CLASSES = {"oj-note-tag", "LegFootnoteRef", "LegCommentaryLink"}
ROOT_IDS = ("viewLegSnippet", "viewLegContents", "document1", "TexteOnly", "textTabContent")
EU_CLASSES = {
    "h4": "ti-art oj-ti-art title-article-norm",
    "h5": "sti-art oj-sti-art stitle-article-norm",
    "div1": "ti-section-1 oj-ti-section-1 title-division-1",
    "div2": "ti-section-2 oj-ti-section-2 title-division-2",
    "doc": "doc-ti oj-doc-ti title-doc-first title-doc-last title-annex-1",
}
EU_KINDS = {name: kind for kind, names in EU_CLASSES.items() for name in names.split()}
EU_MARKUP = {"oj-normal", "eli-container", "eli-subdivision", "eli-title", "eli-main-title"}
TITLE_CLASSES = {"doc-ti", "oj-doc-ti", "title-doc-first", "title-doc-last"}
LABEL = re.compile(
    r"^(?:\(?\d{1,3}[a-z]{0,2}\)|\(?[a-zA-Z]{1,6}\)|\d{1,3}[a-z]?(?:\.\d{1,3})*\.|[a-zA-Z]\.|[—–\-•·*])$"
)
NOTE_HREF = re.compile(r"^#(?:ntr|ntc|E\d|f\d|fn|footnote|note)", re.I)
NOTE_TEXT = re.compile(r"^[(\[]\*?\d{1,4}[)\]]$")
UK_PARA = re.compile(r"^LegS?P\d+(?:ParaText|Container|Text)$")
UK_NUMBER = re.compile(r"^LegS?P1No$")
UK_LABEL = re.compile(r"^LegS?P(?:[2-9]|\d\d)No$")
BARE_HEADING = re.compile(r"^(?:(Article \d+\w*)|(ANNEX [IVXLC\d]+))$")  # class-less old EUR-Lex
ANNEX = re.compile(r"^(?:ANNEX|APPENDIX)\b", re.I)
SMALL_WORDS = {"OF", "THE", "AND", "ON", "FOR", "IN", "TO", "AS", "BY", "WITH"}
VOID_TAG = re.compile(
    r"<(area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr)\b([^<>]*?)/?>", re.I
)
# Deeper trees are rebuilt with the elements beyond this depth left out (their text kept):
# BeautifulSoup's searches walk a nested element's whole subtree, so 8,000 nested elements
# (unclosed <p>, <div><span>… chains) took a minute. Real pages nest a few dozen deep.
MAX_DEPTH = 400
RANKS = {"PART": 0, "TITLE": 1, "CHAPTER": 2, "SECTION": 3, "SUB-SECTION": 4, "SUBSECTION": 4}


def _clean(text: str) -> str:
    """Drop footnote-marker placeholders (with the space before them) and collapse whitespace."""
    text = re.sub(rf"\s*(?:\({MARK}\)|{MARK})", "", text)
    return re.sub(r"\s+", " ", text).strip()


def _classes(el: Tag) -> list[str]:
    value = el.get("class")
    return [str(c) for c in value] if isinstance(value, list) else str(value or "").split()


def _is_marker(el: Tag) -> bool:
    """A footnote reference: `(1)` linking to a note, EUR-Lex `oj-note-tag`, `LegFootnoteRef`."""
    if MARKER_CLASSES.intersection(_classes(el)) or el.get("role") == "doc-noteref":
        return True
    href = el.get("href")
    if el.name != "a" or not isinstance(href, str) or not href.startswith("#"):
        return False
    text = el.get_text(strip=True)
    in_sup = el.find("sup") is not None or (el.parent is not None and el.parent.name == "sup")
    return bool(NOTE_HREF.match(href) or NOTE_TEXT.match(text) or in_sup and text.isdigit())


def _prepare(soup: BeautifulSoup) -> None:
    """Footnote markers → placeholders; drop chrome, notes and annotations; `<br>` → space."""
    for el in soup.find_all(["a", "span", "sup"]):
        if isinstance(el, Tag) and el.parent is not None and _is_marker(el):
            el.replace_with(MARK)
    stack: list[Tag] = [soup]
    while stack:  # no recursion: html.parser nests unclosed <p>/<li> arbitrarily deep
        for child in list(stack.pop().children):
            if not isinstance(child, Tag):
                continue
            classes = _classes(child)
            dropped_class = any(DROP_CLASS.match(c) for c in classes)
            footnote = "note" in classes and child.get_text().lstrip().startswith(MARK)  # EUR-Lex
            if (
                dropped_class
                or footnote
                or child.name in DROP_TAGS
                or child.get("role") in DROP_ROLES
            ):
                child.decompose()
            else:
                stack.append(child)
    for br in soup.find_all("br"):
        br.replace_with(" ")


def _body(label: str, item: bool, content: list[PageElement]) -> list[Item]:
    """Work items for a labelled body: `label` goes before its first paragraph."""
    return [("open", label, item), *content, ("close", "", item)]


class _Converter:
    """Walks a page into blocks, noting whose markup (EU, UK) it recognised."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.sites: set[str] = set()
        self.run: list[str] = []
        self.pending: tuple[str, bool] | None = None  # a label waiting for its paragraph

    def add(self, kind: str, raw: str) -> None:
        if not (text := _clean(raw)):
            return
        if self.pending is not None and kind in ("p", "li"):
            label, item = self.pending
            self.pending = None
            kind, text = "li" if item else "p", f"{label} {text}".strip()
        self.release()
        self.blocks.append((kind, text))

    def release(self) -> None:
        """A pending label that got no paragraph stands alone ("(a)" before nested points)."""
        if self.pending is not None:
            label, item = self.pending
            self.pending = None
            self.add("li" if item else "p", label)

    def flush(self) -> None:
        self.add("p", "".join(self.run))
        self.run = []

    def walk(self, root: Tag) -> None:
        """Emit the blocks under `root`; a run of inline content is one paragraph."""
        stack: list[Iterator[Item]] = [iter(list(root.children))]
        while stack:
            child = next(stack[-1], None)
            if child is None or isinstance(child, tuple):
                self.flush()
                if child is None:
                    stack.pop()
                else:
                    self.release()
                    self.pending = (child[1], child[2]) if child[0] == "open" else None
            elif isinstance(child, Tag) and (child.name not in INLINE or child.find(BLOCKISH)):
                self.flush()
                stack.append(iter(self.block(child)))
            elif isinstance(child, Tag):
                self.run.append(child.get_text())
            elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
                self.run.append(str(child))
        self.release()

    def block(self, el: Tag) -> list[Item]:
        """Handle `el`; returns what is left to walk (its content, for a generic block)."""
        classes = _classes(el)
        for handler in (self.uk, self.eu):
            if (items := handler(el, classes)) is not None:
                return items
        if el.name == "table":
            return self.table(el)
        if el.name in HEADINGS:
            self.add(el.name, el.get_text())
            return []
        return _body("", True, list(el.children)) if el.name == "li" else list(el.children)

    def table(self, el: Tag) -> list[Item]:
        """A label column ("(1)" | text, "(a)" | text) gives list items; other rows `a | b`."""
        rows = [tr.find_all(["td", "th"], recursive=False) for tr in el.find_all("tr")]
        rows = [r for r in rows if r and r[0].find_parent("table") is el]
        rows = [r for r in rows if any(_clean(c.get_text()) for c in r)]
        if rows and all(len(r) == 2 and LABEL.match(_clean(r[0].get_text())) for r in rows):
            return [
                i
                for label, body in rows
                for i in _body(_clean(label.get_text()), True, list(body.children))
            ]
        for row in rows:
            self.add("p", " | ".join(t for c in row if (t := _clean(c.get_text(" ")))))
        return []

    def uk(self, el: Tag, classes: list[str]) -> list[Item] | None:
        """legislation.gov.uk: parts, schedules, cross-headings, numbers, sub-paragraphs."""
        if not any(re.match(r"Leg[A-Z]", c) for c in classes):  # LegP1No, not "Legend"
            return None
        self.sites.add("UK")
        if any("Amend" in c for c in classes) and el.find(BLOCKISH) is None:  # quoted new text
            for lhs in el.find_all(class_="LegLHS"):
                lhs.append(" ")
            self.add("quote", el.get_text())
            return []
        if el.name in (*HEADINGS, "p"):
            for name, level in (("Part", "h2"), ("Chapter", "h3"), ("Schedule", "h2")):
                if isinstance(number := el.find(class_=f"Leg{name}No"), Tag):
                    title = el.find(class_=f"Leg{name}Title")
                    text = _clean(title.get_text()) if isinstance(title, Tag) else ""
                    self.add(level, _clean(number.get_text()) + (f" — {text}" if text else ""))
                    return []
            is_group = any(c.startswith("LegP1GroupTitle") for c in classes)
            group = el if is_group else el.find(class_=re.compile(r"^LegP1GroupTitle"))
            if isinstance(group, Tag):  # `#### Traceability`, then a number in it as `###### 14`
                number = el.find(class_=UK_NUMBER)
                number_text = _clean(number.extract().get_text()) if isinstance(number, Tag) else ""
                self.add("h4", group.get_text())
                self.add("h6", number_text.rstrip("."))
                return []
        if el.name in HEADINGS and any(c.startswith("LegPblock") for c in classes):
            self.add("h3", el.get_text())
            return []
        if "LegNo" in classes:
            self.add("p", el.get_text())
            return []
        if not any(UK_PARA.match(c) for c in classes) or el.name != "p" and el.find(BLOCKISH):
            return None
        if isinstance(number := el.find(class_=UK_NUMBER), Tag):  # "4.—(1) …": `###### 4`
            self.add("h6", _clean(number.extract().get_text()).rstrip("."))
        found = el.find(class_=UK_LABEL)
        label = _clean(found.extract().get_text()) if isinstance(found, Tag) else ""
        rest = _clean(el.get_text()).lstrip("—–- ")
        self.add("li" if label or re.match(r"\(\w{1,5}\)\s", rest) else "p", f"{label} {rest}")
        return []

    def eu(self, el: Tag, classes: list[str]) -> list[Item] | None:
        """EUR-Lex (OJ, legacy, consolidated): containers, articles, annexes, paragraphs, points."""
        kinds = [EU_KINDS[c] for c in classes if c in EU_KINDS]
        ident = str(el.get("id") or "")
        if kinds or EU_MARKUP.intersection(classes):
            self.sites.add("EU")
        if kinds:
            text = el.get_text(" ")
            kind = kinds[0] if kinds[0] != "doc" else "h2" if ANNEX.match(_clean(text)) else "p"
            self.add(kind, text)
            return []
        if el.name == "div" and "norm" in classes:  # consolidated "1." paragraph
            number = el.find("span", class_="no-parag", recursive=False)
            if isinstance(number, Tag):
                return _body(_clean(number.extract().get_text()), False, list(el.children))
        if "grid-container" in classes:  # consolidated "(a)" point
            label = el.find(class_="grid-list-column-1", recursive=False)
            body = el.find(class_="grid-list-column-2", recursive=False)
            if isinstance(label, Tag) and isinstance(body, Tag):
                return _body(_clean(label.get_text()), True, list(body.children))
        if ident.startswith("rct_") and el.find("table") is None:  # "(1) …" recital paragraphs
            return _body("", True, list(el.children))
        return None


def _render(blocks: list[Block]) -> str:
    """Blocks to text: EU containers get `##`–`####` by nesting; blocks split by blank lines."""
    lines: list[str] = []
    ranks: list[int] = []
    i = 0
    while i < len(blocks):
        kind, text = blocks[i]
        i += 1
        if kind == "div1":  # "CHAPTER 2" + its title "MARKETING AUTHORISATION REQUIREMENTS"
            if i < len(blocks) and blocks[i][0] == "div2":
                text, i = f"{text} {blocks[i][1]}", i + 1
            rank = RANKS.get(text.split(" ")[0].upper(), 5)
            ranks = [r for r in ranks if r < rank]
            kind = f"h{min(2 + len(ranks), 4)}"
            ranks.append(rank)
        elif kind == "p" and (bare := BARE_HEADING.match(text)):
            kind = "h4" if bare.group(1) else "h2"
        if kind == "h2" and ANNEX.match(text):
            ranks = []
        if kind.startswith("h"):
            lines.append("#" * int(kind[1]) + " " + text)
        else:
            lines.append({"li": "- ", "quote": "> "}.get(kind, "") + text)
    return "\n\n".join(lines) + "\n"


def _meta(head: Tag, *keys: str) -> str:
    for tag in head.find_all("meta"):
        key = str(tag.get("name") or tag.get("property") or "").lower()
        if key in keys and (value := _clean(str(tag.get("content") or ""))):
            return value
    return ""


def _url(head: Tag) -> str | None:
    """Canonical link, `og:url`, ELI or `DC.identifier`, whichever is an absolute URL first."""
    link = head.find("link", rel="canonical")
    about = head.find("meta", about=re.compile(r"^https?://data\.europa\.eu/eli/"))
    candidates = [
        str(link.get("href") or "") if isinstance(link, Tag) else "",
        _meta(head, "og:url"),
        _meta(head, "eli", "eli:uri") or (str(about["about"]) if isinstance(about, Tag) else ""),
        _meta(head, "dc.identifier", "dcterms.identifier"),
    ]
    return next((c.strip() for c in candidates if c.strip().startswith("http")), None)


def _title_case(line: str) -> str:
    """An all-capitals line in title case: "REGULATION (EC) … OF THE COUNCIL" → "Regulation …"."""
    words = line.split()
    caps = [w for w in words if w.isalpha() and w.isupper() and len(w) > 1]
    if len(caps) * 4 < sum(w.isalpha() for w in words) * 3:
        return line
    return " ".join(
        w if w not in caps else w.lower() if w in SMALL_WORDS else w.title() for w in words
    )


def _eu_title(soup: BeautifulSoup) -> str:
    """The act's title: EUR-Lex `eli-main-title`, else its run of `doc-ti` paragraphs."""
    if isinstance(main := soup.find(class_="eli-main-title"), Tag):
        parts = [p.get_text(" ") for p in main.find_all("p")] or [main.get_text(" ")]
    elif isinstance(first := soup.find(class_=list(TITLE_CLASSES)), Tag):
        parts = [first.get_text(" ")]
        for sibling in first.find_next_siblings():
            if not TITLE_CLASSES.intersection(_classes(sibling)):
                break
            parts.append(sibling.get_text(" "))
    else:
        return ""
    return "" if ANNEX.match(_clean(parts[0])) else " ".join(_title_case(_clean(p)) for p in parts)


TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^<>]*?(/?)>")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
VOID |= {"source", "track", "wbr"}


def _nesting(html: str) -> int:
    """How deep html.parser will nest the page's elements (unclosed ones stay open), from one
    pass over its tags, so a deep page is flattened before it is parsed, not after."""
    stack: list[str] = []
    open_counts: dict[str, int] = {}
    deepest = 0
    for m in TAG.finditer(html):
        closing, name, self_closing = m.group(1), m.group(2).lower(), m.group(3)
        if closing:
            if open_counts.get(name):
                while stack:
                    top = stack.pop()
                    open_counts[top] -= 1
                    if top == name:
                        break
        elif not self_closing and name not in VOID:
            stack.append(name)
            open_counts[name] = open_counts.get(name, 0) + 1
            deepest = max(deepest, len(stack))
    return deepest


def _depth(soup: BeautifulSoup) -> int:
    deepest = 0
    stack: list[tuple[Tag, int]] = [(soup, 0)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element.children if isinstance(child, Tag))
    return deepest


# In a page rebuilt for depth, these end where the next one of a kind begins (HTML's implied
# end tags), so a run of unclosed <li> or <p> stays a run of siblings instead of nesting.
IMPLIED_END = {
    "li": {"li"},
    "p": {"p"},
    "dt": {"dt", "dd"},
    "dd": {"dt", "dd"},
    "tr": {"tr", "td", "th"},
    "td": {"td", "th"},
    "th": {"td", "th"},
    "option": {"option"},
}
SCOPE_BOUNDARY = {"ul", "ol", "dl", "table", "select", "body", "html"}
CLOSES_P = {"div", "ul", "ol", "dl", "table", "section", "blockquote", "pre", *HEADINGS}


class _Flattener(HTMLParser):
    """Re-emits a page with bounded nesting, in one linear pass: unclosed <li>, <p>, table
    cells… are closed where the next one begins, and other start tags beyond `MAX_DEPTH`
    open elements (with their end tags) are left out; text is copied as it is."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropped: dict[str, int] = {}

    def _close_to(self, kinds: set[str]) -> None:
        """Close the nearest open element of `kinds` (and what is open inside it), unless a
        list or table boundary comes first."""
        for i in range(len(self.open) - 1, max(-1, len(self.open) - MAX_DEPTH - 2), -1):
            if self.open[i] in kinds:
                while len(self.open) > i:
                    self.out.append(f"</{self.open.pop()}>")
                return
            if self.open[i] in SCOPE_BOUNDARY:
                return

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in IMPLIED_END:
            self._close_to(IMPLIED_END[tag])
        if tag in CLOSES_P and self.open and self.open[-1] == "p":
            self.out.append(f"</{self.open.pop()}>")
        if len(self.open) < MAX_DEPTH or tag in IMPLIED_END:
            self.open.append(tag)
            self.out.append(self.get_starttag_text() or "")
        else:
            self.dropped[tag] = self.dropped.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open:
                name = self.open.pop()
                self.out.append(f"</{name}>")
                if name == tag:
                    return
        elif self.dropped.get(tag):
            self.dropped[tag] -= 1
        # an end tag without its start tag is left out

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")


def _flatten(html: str) -> str:
    flattener = _Flattener()
    flattener.feed(html)
    flattener.close()
    return "".join(flattener.out)


def read_html(path: Path) -> Document:
    """Read an HTML page (EUR-Lex, legislation.gov.uk or generic) as Markdown-flavoured text."""
    data = path.read_bytes()
    html = decode_text(path, data)  # refuses empty files and ones with NUL bytes
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:  # an old page: Windows-1252 far more often than Latin-1
        html = data.decode("cp1252", errors="replace").replace("\r\n", "\n")
    sample = html[:4096]
    controls = sum(ord(c) < 32 and c not in "\t\n\r\f" or c == "\ufffd" for c in sample)
    if controls > 8 + len(sample) // 20:
        raise ReadError(f"{path.name}: this is a binary file, not HTML")
    # `<col>` → `<col/>`: bs4's html.parser builder slows quadratically on unclosed void tags
    html = VOID_TAG.sub(r"<\1\2/>", html)
    if _nesting(html) > MAX_DEPTH:
        html = _flatten(html)
    soup = BeautifulSoup(html, "html.parser")
    if _depth(soup) > MAX_DEPTH:  # what the tag count missed (markup inside scripts…)
        soup = BeautifulSoup(_flatten(html), "html.parser")
    head = soup.head or soup
    meta_title = _meta(head, "dc.title", "dc:title", "dcterms.title")
    page_title = (
        _clean(title_tag.get_text()) if isinstance(title_tag := head.find("title"), Tag) else ""
    )
    url = _url(head)
    _prepare(soup)
    found = soup.find(id=list(ROOT_IDS))
    root = found if isinstance(found, Tag) else soup.body or soup
    converter = _Converter()
    converter.walk(root)
    if not converter.blocks:
        raise ReadError(f"{path.name}: the HTML page holds no text")
    doc_id = doc_id_for(path)
    h1 = _clean(h.get_text()) if isinstance(h := root.find("h1"), Tag) else ""
    title = meta_title or _eu_title(soup) or page_title or h1
    host, sites = url or "", converter.sites
    if "europa.eu" in host or "legislation.gov.uk" in host:
        sites = {"EU" if "europa.eu" in host else "UK"}
    return Document(
        doc_id=doc_id,
        title=title or doc_id,
        text=_render(converter.blocks),
        source_path=path,
        sha256=file_sha256(data),
        url=url,
        jurisdiction=next(iter(sites)) if len(sites) == 1 else None,
    )
