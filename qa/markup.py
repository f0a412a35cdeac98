"""Markdown inline markup removed in time linear in the line's length.

Each function gives exactly what `re.sub` with the pattern in its docstring gives, but those
patterns backtrack: on a line such as `"**a " * 50_000`, `"[a](" * 50_000` or `"[^" * 50_000`
every start position scans to the end of the line, so a 200 KB line took a minute. Here each
position is looked at a bounded number of times (closing delimiters are found by bisection,
and the state of a link's URL scan is remembered per position).
"""

import bisect
import re

_STAR_RUN = re.compile(r"\*+")
_UNDERSCORE_RUN = re.compile(r"_+")
_DELIMITER = re.compile(r"[*_]")


def strip_footnote_refs(line: str) -> str:
    r"""`re.sub(r"\s*\(\[\^[^\]]+\]\)|\[\^[^\]]+\]", "", line)`: footnote markers."""
    if "[^" not in line:
        return line
    n = len(line)
    closes = [m.start() for m in re.finditer(r"\]", line)]
    out: list[str] = []
    pos = 0
    while True:
        q = line.find("[^", pos)
        if q == -1:
            break
        j = bisect.bisect_left(closes, q + 2)
        r = closes[j] if j < len(closes) else -1
        if r == -1:  # no "]" after this marker, so none after any later one either
            break
        start = -1
        if q - 1 >= pos and line[q - 1] == "(" and r > q + 2 and r + 1 < n and line[r + 1] == ")":
            start = q - 1  # "([^1])" with the whitespace before it
            while start > pos and line[start - 1].isspace():
                start -= 1
            out.append(line[pos:start])
            pos = r + 2
            continue
        if r > q + 2:
            out.append(line[pos:q])
            pos = r + 1
            continue
        out.append(line[pos : q + 1])
        pos = q + 1
    out.append(line[pos:])
    return "".join(out)


def strip_links(line: str) -> str:
    r"""`re.sub(r"\[([^\]]*)\]\((?:[^()\s]|\([^)\s]*\))*\)", r"\1", line)`: link text only."""
    if "](" not in line:
        return line
    n = len(line)
    closes = [m.start() for m in re.finditer(r"\]", line)]
    stops = [m.start() for m in re.finditer(r"[)\s]", line)]
    ends: dict[int, int] = {}  # URL scan from position x → index after its ")" or -1

    def url_end(x: int) -> int:
        visited: list[int] = []
        result = -1
        while x < n:
            if x in ends:
                result = ends[x]
                break
            visited.append(x)
            c = line[x]
            if c == ")":
                result = x + 1
                break
            if c.isspace():
                break
            if c == "(":  # a "(…)" group: the first ")" or whitespace after it decides
                k = bisect.bisect_left(stops, x + 1)
                if k == len(stops) or line[stops[k]] != ")":
                    break
                x = stops[k] + 1
            else:
                x += 1
        for v in visited:
            ends[v] = result
        return result

    out: list[str] = []
    pos = 0
    while True:
        p = line.find("[", pos)
        if p == -1:
            break
        j = bisect.bisect_left(closes, p + 1)
        if j == len(closes):
            break
        r = closes[j]
        end = url_end(r + 2) if r + 1 < n and line[r + 1] == "(" else -1
        if end == -1:
            out.append(line[pos : p + 1])
            pos = p + 1
            continue
        out.append(line[pos:p])
        out.append(line[p + 1 : r])
        pos = end
    out.append(line[pos:])
    return "".join(out)


class _Closers:
    """Where a delimiter of `width` characters can close: a run of at least `width` `char`s,
    preceded by a non-space character. Found by bisection over the runs."""

    def __init__(self, line: str, run: re.Pattern[str], width: int) -> None:
        self.width = width
        self.firsts: list[int] = []
        self.lasts: list[int] = []  # the last position in the run where the delimiter fits
        for m in run.finditer(line):
            a, b = m.start(), m.end()
            first = a if a > 0 and not line[a - 1].isspace() else a + 1
            if first <= b - width:
                self.firsts.append(first)
                self.lasts.append(b - width)

    def at_or_after(self, s: int) -> int:
        j = bisect.bisect_left(self.lasts, s)
        if j == len(self.lasts):
            return -1
        return max(self.firsts[j], s)


def _closing(line: str, delimiter: str, closers: _Closers, body: int) -> int:
    r"""Where the emphasis whose text starts at `body` closes: the pattern's optional
    `(?:.*?\S)?` is tried first, so a text of two or more characters wins over one."""
    q = closers.at_or_after(body + 2)
    if q != -1:
        return q
    return body + 1 if line.startswith(delimiter, body + 1) else -1


def strip_emphasis(line: str) -> str:
    r"""`re.sub(r"(\*{1,3}|_{2})(\S(?:.*?\S)?)\1", r"\2", line)` for a line without "\n"."""
    if "*" not in line and "__" not in line:
        return line
    n = len(line)
    stars = {k: _Closers(line, _STAR_RUN, k) for k in (1, 2, 3)}
    underscores = _Closers(line, _UNDERSCORE_RUN, 2)
    out: list[str] = []
    pos = 0
    while True:
        m = _DELIMITER.search(line, pos)
        if m is None:
            break
        p = m.start()
        match: tuple[int, int] | None = None  # (delimiter width, closing position)
        if line[p] == "*":
            run = 1
            while run < 3 and p + run < n and line[p + run] == "*":
                run += 1
            for k in range(run, 0, -1):
                if p + k < n and not line[p + k].isspace():
                    q = _closing(line, "*" * k, stars[k], p + k)
                    if q != -1:
                        match = (k, q)
                        break
        elif p + 2 < n and line[p + 1] == "_" and not line[p + 2].isspace():
            q = _closing(line, "__", underscores, p + 2)
            if q != -1:
                match = (2, q)
        if match is None:
            out.append(line[pos : p + 1])
            pos = p + 1
            continue
        k, q = match
        out.append(line[pos:p])
        out.append(line[p + k : q])
        pos = q + k
    out.append(line[pos:])
    return "".join(out)
