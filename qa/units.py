"""Legal units of a passage: the spans an answer may quote whole.

A passage's lines form a tree: a lead-in ("… the following conditions:", "…—") owns the points
after it ("(a)", "(i)", "—"), a paragraph ("1.", "(1)") the points below it. A unit is a line
with everything below it — a full numbered paragraph with its points, a definition with all its
limbs — or one sentence of a paragraph without points. A unit never ends on a lead-in or a
dangling conjunction; one too long for an answer keeps its first points and says which it omits,
and each point it omits is also offered with the lead-in alone ("… the following: … (b) where
… a third country, …"), so the point that answers can be quoted whole.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

MAX_UNIT_CHARS = 1000
LABEL = re.compile(
    r"^\s*(?:-\s*)?(?:\((?P<paren>[0-9]+[A-Za-z]{0,2}|[a-z]{1,2}|[ivxl]{1,6}|[A-Z])\)"
    r"|(?P<number>\d+(?:\.\d+)*[a-z]?)\.(?!\d)|(?P<dash>[—–]|-(?=\s)))"
)
ROMAN = re.compile(r"[ivxl]+")
LIST_PREFIX = re.compile(r"\s*(?:-\s+)?")
LEAD_IN = re.compile(r"(?:[:—–-]|\bfollowing)\s*$")
OPEN_END = re.compile(r"(?:[;,]|[;,]?\s+(?:and|or))\s*$")
DEFINITION = re.compile(
    r"^\s*(?:-\s*)?(?:(?:\(\w{1,5}\)|\d+[a-z]?\.)\s*)?[‘“'\"][^’”'\"\n]{2,120}[’”'\"]\s*"
    r"(?:means|shall mean|includes|has the (?:same )?meaning)\b"
)
SENTENCE_END = re.compile(
    r"(?<!\bNo)(?<!\bArt)(?<!\be\.g)(?<!\bi\.e)(?<!\bpara)(?<!\bp)(?<!\bpp)(?<!\bvol)(?<!\bcf)"
    r"(?<=[.!?])\s+(?=[A-Z‘“(])"
)
HARD_BREAK = "[…]"
# UK drafting: "(1) … if the following conditions are met." then "(2) Condition A is that …".
ADOPTS = re.compile(r"\bfollowing conditions are (?:met|satisfied)\.?\s*$")
CONDITION = re.compile(r"^\s*(?:-\s*)?\(\w+\)\s*Condition [A-Z]\b")
# A sentence that only makes sense with the one before: "That notification shall be made
# within 15 days", "Those implementing acts shall …", "In that case, …" (not "This Regulation
# shall apply …" or "this regulation applies …", which name the act or provision).
CONTINUES = re.compile(
    r"(?:(?:That|This|Those|These|Such|The said)\s+(?!(?:regulations?|directive|article|"
    r"chapter|title|section|part|annex|schedule|order|decision)\b)[a-z]"
    r"|It\s+(?:shall|does|is|may|must)\b|In (?:that|this|such) cases?\b|Where such\b)"
)


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    level: int  # 0 body text, 1 "1.", 2 "(1)", 3 "(a)", 4 "(i)", 5 "—" or "- "
    label: str | None
    parent: int | None


@dataclass(frozen=True)
class Unit:
    """A quotable span of a passage: `text[start:end]`, plus a note on omitted points."""

    start: int
    end: int
    line: int  # the line the unit starts on
    definition: bool = False
    omitted: str = ""  # "points (c)–(f) omitted"
    skip: tuple[int, int] | None = None  # the points between a lead-in and the one quoted

    def text(self, passage: str) -> str:
        """The unit's words in `passage`: one span, or a lead-in " … " the point it quotes."""
        if self.skip is None:
            return passage[self.start : self.end]
        lead_in, point = passage[self.start : self.skip[0]], passage[self.skip[1] : self.end]
        return f"{lead_in.rstrip()} … {point.strip()}"

    @property
    def size(self) -> int:
        """Characters quoted (about: a skipped run counts as the ellipsis)."""
        if self.skip is None:
            return self.end - self.start
        return self.end - self.start - (self.skip[1] - self.skip[0]) + 3


def _level(text: str, previous_letter: str | None) -> tuple[int, str | None]:
    m = LABEL.match(text)
    if not m:
        return 0, None
    if m.group("number"):
        return 1, m.group("number")
    if m.group("dash"):
        return 5, None
    label = m.group("paren")
    if label[0].isdigit():
        return 2, label
    if ROMAN.fullmatch(label) and not (label == "i" and previous_letter == "h"):
        return 4, label
    return 3, label


@lru_cache(maxsize=4096)
def lines(text: str) -> tuple[Line, ...]:
    """The passage's lines with their level and the line they belong to (remembered: the same
    passages are read question after question)."""
    return tuple(_lines(text))


def _lines(text: str) -> list[Line]:
    out: list[Line] = []
    stack: list[int] = []  # open ancestors, outermost first
    letter: str | None = None
    position = 0
    for raw in text.split("\n"):
        start, end = position, position + len(raw)
        position = end + 1
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped == HARD_BREAK:
            stack.clear()
            out.append(Line(start, end, 0, HARD_BREAK, None))
            continue
        level, label = _level(raw, letter)
        if level == 3 and label:
            letter = label
        previous = out[-1] if out else None
        if level == 0:
            # Body text continues an open line (a lead-in or a point ending "; and"), else
            # it is a sentence of its own, which may introduce points (an annex's list).
            before = text[previous.start : previous.end] if previous else ""
            lead_in = previous is not None and bool(LEAD_IN.search(before))
            if lead_in:
                parent: int | None = len(out) - 1
            elif previous is not None and OPEN_END.search(before):
                parent = previous.parent
            elif (root := _continued(out, stripped, end)) is not None:
                parent = root  # quoted with the paragraph it continues
                stack[:] = [root]
            else:
                stack.clear()
                parent = None
            depth = max(out[parent].level + 1, 1) if parent is not None else 0
            out.append(Line(start, end, depth, label, parent))
            stack.append(len(out) - 1)
            continue
        condition = CONDITION.match(raw)
        while stack:
            top = out[stack[-1]]
            deeper = top.level > 0 and top.level >= level
            if deeper and condition and top.level == level:
                # "(1) … if the following conditions are met." owns "(2) Condition A is …"
                owner = next(
                    (k for k in reversed(stack) if ADOPTS.search(text[out[k].start : out[k].end])),
                    None,
                )
                if owner is not None and out[owner].level == level:
                    while stack[-1] != owner:
                        stack.pop()
                    break
            # a numbered paragraph ends what body text introduced, unless that is a lead-in
            introduces = bool(LEAD_IN.search(text[top.start : top.end])) and bool(
                stack[-1] == len(out) - 1
                or (previous is not None and previous.parent == stack[-1] and previous.label)
            )
            body = top.level == 0 and level <= 2 and not introduces
            if not (deeper or body):
                break
            stack.pop()
        introduced = stack and out[stack[-1]].level == 0 and stack[-1] != len(out) - 1
        if introduced and not (previous and previous.parent == stack[-1]):
            stack.pop()  # body text introduces points only directly after it or its siblings
        parent = stack[-1] if stack else None
        out.append(Line(start, end, level, label, parent))
        stack.append(len(out) - 1)
    return out


def _continued(out: Sequence[Line], line: str, end: int) -> int | None:
    """The paragraph a sentence continues ("That notification shall be made within 15 days"
    after "… shall be notified to the Member States"), if it fits in one unit with it."""
    if not out or not CONTINUES.match(line):
        return None
    root = len(out) - 1
    while (parent := out[root].parent) is not None:
        root = parent
    if out[root].label == HARD_BREAK or end - out[root].start > MAX_UNIT_CHARS:
        return None
    return root


def _descendants(tree: Sequence[Line], i: int) -> int:
    """Index of the last line below line i (i itself when none)."""
    last = i
    for j in range(i + 1, len(tree)):
        k: int | None = tree[j].parent
        while k is not None and k != i:
            k = tree[k].parent
        if k != i:
            break
        last = j
    return last


def _trim(text: str, start: int, end: int) -> int:
    """End of the span without a trailing ";", ",", "; and", "; or"."""
    m = OPEN_END.search(text, start, end)
    while m and m.end() >= end - 1 and m.start() > start:
        end = m.start()
        m = OPEN_END.search(text, start, end)
    return end


@lru_cache(maxsize=4096)
def units(text: str, *, max_chars: int = MAX_UNIT_CHARS) -> tuple[Unit, ...]:
    """The quotable units of a passage, in reading order (remembered, as `lines`)."""
    return tuple(_units(text, max_chars))


def _units(text: str, max_chars: int) -> list[Unit]:
    tree = lines(text)
    out: list[Unit] = []
    for i, line in enumerate(tree):
        if line.label == HARD_BREAK:
            continue
        own = text[line.start : line.end]
        is_definition = bool(DEFINITION.match(own))
        if line.parent is not None and not is_definition:
            continue  # a point is quoted with the lead-in it completes
        last = _descendants(tree, i)
        if line.level >= 3 and last == i and not is_definition:
            continue  # a point whose lead-in is not in the passage ("(n) In the case of …")
        omitted = ""
        abridged: list[Unit] = []
        if tree[last].end - line.start > max_chars and last > i:
            keep = i
            for j in range(i + 1, last + 1):
                if tree[j].end - line.start > max_chars:
                    break
                keep = j
            points = [tree[j] for j in range(keep + 1, last + 1) if tree[j].parent == i]
            labels = [point.label for point in points if point.label]
            omitted = _omitted(labels, []) if labels else "the rest of the list omitted"
            abridged = _lead_in_with_each(text, tree, i, keep, last, max_chars)
            last = keep
        end = _trim(text, line.start, tree[last].end)
        if LEAD_IN.search(text[line.start : end]) and last == i:
            out.extend(abridged)  # its first point alone is past the cap
            continue  # a lead-in whose points are not in the passage
        if OPEN_END.search(text[line.start : tree[last].end]) and last == i and not is_definition:
            continue
        out.append(Unit(line.start, end, i, is_definition, omitted))
        out.extend(abridged)
        if last == i and not is_definition and len(own) > 200:
            out.extend(_sentences(text, line.start, end, i))
    return out


def _labels(labels: Sequence[str]) -> str:
    """ "(a)" or "(a)–(c)": a run of point labels."""
    return f"({labels[0]})" if len(labels) == 1 else f"({labels[0]})–({labels[-1]})"


def _omitted(before: Sequence[str], after: Sequence[str]) -> str:
    """ "point (a) omitted", "points (a)–(b) and (d)–(f) omitted"."""
    runs = [_labels(run) for run in (before, after) if run]
    many = len(before) + len(after) > 1
    return f"{'points' if many else 'point'} {' and '.join(runs)} omitted"


def _lead_in_with_each(
    text: str, tree: Sequence[Line], i: int, keep: int, last: int, max_chars: int
) -> list[Unit]:
    """For a list cut at `keep`: each point after the cut, quoted with its lead-in alone."""
    children = [j for j in range(i + 1, last + 1) if tree[j].parent == i]
    if not children or any(not tree[j].label for j in children):
        return []
    out = []
    head = tree[children[0]].start  # the lead-in (and any text of it) ends here
    for n, j in enumerate(children):
        if j <= keep or DEFINITION.match(text[tree[j].start : tree[j].end]):
            continue  # quoted with the list's first points, or a definition (a unit of its own)
        end = _trim(text, tree[j].start, tree[_descendants(tree, j)].end)
        if head - tree[i].start + end - tree[j].start > max_chars:
            continue
        prefix = LIST_PREFIX.match(text, tree[j].start)
        point = prefix.end() if prefix else tree[j].start
        omitted = _omitted(
            [tree[k].label or "" for k in children[:n]],
            [tree[k].label or "" for k in children[n + 1 :]],
        )
        out.append(Unit(tree[i].start, end, i, omitted=omitted, skip=(head, point)))
    return out


def _sentences(text: str, start: int, end: int, line: int) -> list[Unit]:
    """The sentences of one long paragraph, each a unit of its own, except that a sentence
    that points back ("It shall publish …") stays with the one before it."""
    out: list[Unit] = []

    def add(sentence_start: int, sentence_end: int) -> None:
        if out and CONTINUES.match(text, sentence_start):  # "It shall …": with its antecedent
            out[-1] = Unit(out[-1].start, sentence_end, line)
        else:
            out.append(Unit(sentence_start, sentence_end, line))

    position = start
    for m in SENTENCE_END.finditer(text, start, end):
        if m.start() - position > 30:
            add(position, m.start())
        position = m.end()
    if out and end - position > 30:
        add(position, end)
    if len(out) == 1 and (out[0].start, out[0].end) == (start, end):
        return []  # one sentence after all: the paragraph's own unit
    return out


def paragraph_label(text: str, unit: Unit) -> tuple[str | None, str | None]:
    """The numbered paragraph ("4", or "1)–(5" for a run) and point ("a") a unit sits in,
    where the text says."""
    tree = lines(text)
    numbered = [
        line.label
        for line in tree
        if line.level in (1, 2) and unit.start <= line.start < unit.end and line.label
    ]
    if len(set(numbered)) > 1:
        return f"{numbered[0]})–({numbered[-1]}", None
    paragraph = point = None
    k: int | None = unit.line
    while k is not None:
        line = tree[k]
        if line.level in (1, 2) and paragraph is None:
            paragraph = line.label
        if line.level == 3 and point is None and k == unit.line:
            point = line.label
        k = line.parent
    if paragraph is None:  # a sentence after its paragraph's first line
        for line in reversed(tree[: unit.line]):
            if line.level in (1, 2):
                paragraph = line.label
                break
            if line.label == HARD_BREAK:
                break
    return paragraph, point
