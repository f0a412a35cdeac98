"""Extractive answers: whole legal units of the best passages (a full sentence, a numbered
paragraph with its points, a definition with its limbs), each followed by a `[n]` marker, or an
honest refusal.

Nothing is generated: every quote is a verbatim span of its passage, and `check_citations`
enforces that every marker names a returned citation. Citations are numbered in the order the
answer quotes them; passages it does not quote follow as "see also". A question naming no
jurisdiction, where both have a provision on point, gets one quote from each ("EU:", "UK:").
"""

import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from qa.lexical import tokenize, word_pairs, word_set
from qa.provision_links import provision_url
from qa.retrieval.query import Query, defined_terms, finds_answer_type, names_term
from qa.retrieval.search import Passage, is_context
from qa.units import Unit, paragraph_label, units

CANNOT_ANSWER = (
    "The indexed documents do not answer this question. The closest passages are listed "
    "below; they may help you rephrase it or show where the topic is covered."
)
MARKER = re.compile(r"\[(\d+)\]")
LIST_PREFIX = re.compile(r"^\s*-\s+")
MAX_UNIT_CHARS = 400  # a "see also" citation's quote when nothing better is found
ANSWER_PASSAGES = 3  # units are chosen from the best few passages
BOTH_JURISDICTIONS_MARGIN = 0.15  # the other jurisdiction's best passage, within this score
SECOND_UNIT_MARGIN = 0.25
MAX_ANSWER_CHARS = 1600
RESTATES = 0.85  # word overlap (Jaccard) from which a second unit only repeats the first
ANSWER_TYPE_BONUS = 0.3  # "how long" → the unit stating a duration
PASSAGE_PRIOR = 1.0  # a unit's score falls with its passage's distance from the best
CONTEXT_PENALTY = 0.2
NAMED_PROVISION_BONUS = 0.15
SUMMARY_BONUS = 0.6
SUMMARY_POSITION = 0.0002  # per character into the note: an overview is read from the top
SUMS_UP = re.compile(
    r"(?:These|This) (?:Regulations?|Order|Directive) (?:amend|make|implement|revoke)"
)
PHRASE_BONUS = 0.3  # the share of the question's word pairs the unit has as pairs
BREVITY = 0.0001  # per character: of two units as good, the shorter
TIE = 1e-9  # scores this close are equal (floating-point rounding)
# An answer unit never ends on a lead-in or a dangling conjunction (the units module avoids
# them; this is the last guard, the same test the evaluation's fragment rate applies).
DANGLING_END = re.compile(r"(?:[:;,—–-]|\b(?:and|or))\s*$", re.I)
MIN_UNIT_CHARS = 40  # "Made: 23rd January 2025", "A. TAJANI": signatures and dates, not answers


@dataclass(frozen=True)
class Citation:
    """A passage behind the answer, with the verbatim sentence(s) it contributed."""

    n: int
    chunk_id: str
    doc_id: str
    title: str
    short_title: str
    section: str
    page: int | None
    url: str | None
    quote: str
    text: str
    score: float
    used: bool = True  # quoted in the answer; False: "see also"
    jurisdiction: str | None = None
    origin: str = "local file"  # "official mirror", "uploaded" or "local file"
    provision_url: str | None = None  # the cited provision's own page, else `url`


@dataclass(frozen=True)
class Answer:
    """An answer with `[n]` markers, its citations (1 = best passage) or an abstention."""

    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    related: tuple[Citation, ...] = ()
    took_ms: float = 0.0
    evidence: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()  # how current the quoted texts are, one line each
    index_build: str = ""  # the published index build it was drawn from


def unit_texts(answer_text: str) -> list[str]:
    """The units of an answer as the user reads them: the text before each `[n]` marker."""
    return [u.strip() for u in re.split(r"\s*\[\d+\]", answer_text) if u.strip()]


def clean_quote(quote: str) -> str:
    """The quote as answer prose: list dashes dropped, whitespace collapsed."""
    lines = [LIST_PREFIX.sub("", line).strip() for line in quote.splitlines()]
    return " ".join(" ".join(line for line in lines if line).split())


def _overlap(question_terms: set[str], text: str, idf: Callable[[str], float]) -> float:
    found = question_terms & word_set(text)
    total = math.fsum(idf(t) for t in question_terms) or 1.0
    return math.fsum(idf(t) for t in found) / total


def pinpoint(passage: Passage, unit: Unit | None) -> tuple[str, str]:
    """The chunk id and section a quote comes from: "Article 15(4)", "regulation 171(2)"."""
    if unit is None:
        return passage.chunk.chunk_id, passage.section
    piece = passage.piece_at(unit.start)
    provision = piece.provision
    paragraph, point = paragraph_label(passage.text, unit)
    section = piece.section
    if paragraph and provision.split(" ")[0] in ("Article", "regulation"):
        section = f"{provision}({paragraph})" + (f"({point})" if point else "")
    return piece.chunk_id, section


def citation_for(
    n: int, passage: Passage, quote: str, unit: Unit | None = None, *, used: bool = True
) -> Citation:
    """The public form of a cited passage, pinpointed to the piece the quote comes from."""
    c = passage.chunk
    chunk_id, section = pinpoint(passage, unit)
    return Citation(
        n=n,
        chunk_id=chunk_id,
        doc_id=c.doc_id,
        title=c.title,
        short_title=c.short_title,
        section=section,
        page=min((p.page for p in passage.pieces if p.page is not None), default=None),
        url=c.url,
        quote=quote,
        text=passage.text,
        score=round(passage.score, 4),
        used=used,
        jurisdiction=c.jurisdiction,
        origin=c.origin,
        provision_url=provision_url(c.url, section),
    )


def abstain(
    question: str, passages: Sequence[Passage], evidence: float, reason: str = ""
) -> Answer:
    """The "not in these documents" answer (with the reason, when there is a specific one),
    listing the closest passages as related."""
    related = tuple(citation_for(i + 1, p, "", used=False) for i, p in enumerate(passages))
    text = CANNOT_ANSWER
    if reason and reason != CANNOT_ANSWER.split(". ", 1)[0] + ".":
        text = f"{reason} {CANNOT_ANSWER.split('. ', 1)[1]}"
    return Answer(question, text, True, (), related, evidence=evidence)


def evidence_strength(
    question: str, passages: Sequence[Passage], idf: Callable[[str], float]
) -> float:
    """How well the best of the first three passages supports an answer: its cosine
    similarity to the question plus the (IDF-weighted) share of the question's words it holds."""
    terms = set(tokenize(question))
    return max(
        (
            p.dense + 0.5 * _overlap(terms, p.chunk.context + "\n" + p.text, idf)
            for p in passages[:3]
        ),
        default=0.0,
    )


@dataclass(frozen=True)
class _Candidate:
    score: float
    passage: int
    unit: Unit


@dataclass(frozen=True)
class _Words:
    """The question's words with their weights (IDF; a glossary addition counts half), worked
    out once per answer rather than once per unit."""

    weight: dict[str, float]
    total: float

    @classmethod
    def of(cls, query: Query, idf: Callable[[str], float]) -> "_Words":
        weight = {t: 0.5 * idf(t) for t in set(query.stems) - query.asked}
        weight.update({t: idf(t) for t in query.asked})
        # fsum: the same total whatever order the sets are iterated in (it varies between
        # processes), so two workers give the same answer and ties break the same way
        return cls(weight, math.fsum(weight.values()) or 1.0)

    def share(self, words: Collection[str]) -> float:
        """The weighted share of the question's words among `words`."""
        return math.fsum(self.weight[t] for t in words if t in self.weight) / self.total


def _unit_score(
    query: Query,
    passage: Passage,
    top_score: float,
    unit: Unit,
    question: _Words,
) -> float:
    """How well a unit answers: the question's words in it (glossary additions count half)
    and its word pairs, its passage's score, a stated duration/date/number when asked for, the
    definition of the term asked about (and not of another term), and brevity."""
    text = unit.text(passage.text)
    # The provision's heading and the act's title say what the unit is about ("Traceability",
    # "… on advanced therapy medicinal products").
    words = word_set(text) | word_set(passage.chunk.context) | word_set(passage.chunk.title)
    for expansion in query.expansions:  # "ATMP" is found where "advanced therapy …" is
        source, _, long_form = expansion.partition(" → ")
        if word_set(long_form) <= words:
            words |= word_set(source)
    score = question.share(words) + PASSAGE_PRIOR * (passage.score - top_score)
    # The question's phrases as phrases ("give … a written assurance" → "assurance in
    # writing" is not one, "give an assurance" is): of two units with the same words, the one
    # that says it the way the question does.
    if pairs := word_pairs(query.text):
        score += PHRASE_BONUS * len(pairs & word_pairs(text)) / len(pairs)
    provision = passage.chunk.provision
    # the note's opening ("These Regulations amend …"), not its remarks on impact assessments
    summary = provision.startswith("Explanatory note") and query.overview and unit.start < 600
    if summary:
        # "what does SI 2025/87 change": its explanatory note says, from its first sentence
        score += SUMMARY_BONUS - SUMMARY_POSITION * unit.start
    elif is_context(passage.chunk):
        score -= CONTEXT_PENALTY  # recitals explain the rules
    if unit.start == 0 and query.references.names_provision(passage.chunk.provision):
        score += NAMED_PROVISION_BONUS  # "what does regulation 171 say": from its beginning
    if any(finds_answer_type(name, text) for name in query.answer_types):
        score += ANSWER_TYPE_BONUS
    if unit.definition:
        terms = [t for t, _ in defined_terms(text)[:1]]
        named = max((len(t) for t in terms if names_term(list(query.term_stems), t)), default=0)
        pointer = "has the meaning" in text[:200] or "have the meaning" in text[:200]
        if query.definitional and named and pointer:
            score += 0.05  # "“ATMP” has the meaning given in …": where the definition is
        elif query.definitional:  # the longer the term named, the more specific the match
            score += min(0.1 + 0.1 * named, 0.4) if named else -0.2
        elif not named:
            score -= 0.1
    return score - BREVITY * unit.size


def _text(passages: Sequence[Passage], candidate: _Candidate) -> str:
    return candidate.unit.text(passages[candidate.passage].text)


def restates(first: str, second: str) -> bool:
    """Whether a unit says nearly what another says in the same words (the same rule for
    human and for veterinary medicines): quoting both tells the reader nothing more. Parallel
    rules that differ in a word or two of substance (MM and POC products) stay apart."""
    a, b = word_set(first), word_set(second)
    return len(a & b) >= RESTATES * len(a | b)


def _label(citation_jurisdiction: str | None, both: bool) -> str:
    return f"{citation_jurisdiction}: " if both and citation_jurisdiction else ""


def compose_answer(
    query: Query,
    passages: Sequence[Passage],
    *,
    idf: Callable[[str], float],
    caveat_of: Callable[[str], str] = lambda doc_id: "",
) -> Answer:
    """Quote the best legal units of the top passages; cite what is quoted first, in order."""
    if not passages:
        raise ValueError("compose_answer needs at least one passage")
    top = passages[0].score
    question = _Words.of(query, idf)
    candidates: list[_Candidate] = []
    best_of: dict[int, _Candidate] = {}
    for i, passage in enumerate(passages):
        whole: dict[int, float] = {}  # by start: the list an abridged unit is cut from
        for unit in units(passage.text):
            span = unit.text(passage.text)
            short = len(span) < MIN_UNIT_CHARS and not unit.definition
            if short or (span.startswith("(") and span.endswith(")")) or span.isupper():
                # a signature, a date, "(This note is not part of the Regulations)", a heading
                # in capitals ("LABELLING OF INVESTIGATIONAL MEDICINAL PRODUCTS")
                continue
            if DANGLING_END.search(span[-12:]):  # (the end is all it looks at)
                continue  # "… the data to be registered include:" with its points elsewhere
            candidate = _Candidate(_unit_score(query, passage, top, unit, question), i, unit)
            # One point of a long list (lead-in … point) only where it answers better than the
            # list's first points, brevity aside: not "(i) Special storage precautions" alone.
            merit = candidate.score + BREVITY * unit.size
            if unit.skip is None:
                whole[unit.start] = merit
            elif merit <= whole.get(unit.start, -math.inf) + TIE:
                continue  # (a tie, up to rounding: adding back the brevity is not exact)
            if i not in best_of or candidate.score > best_of[i].score:
                best_of[i] = candidate
            summary = query.overview and passage.chunk.provision.startswith("Explanatory note")
            if i < ANSWER_PASSAGES or summary:
                candidates.append(candidate)
    if not candidates:  # no whole unit anywhere (a passage of headings): its opening, whole
        text = passages[0].text
        end = len(text)
        if end > MAX_UNIT_CHARS:
            end = text.rfind(". ", 0, MAX_UNIT_CHARS) + 1 or MAX_UNIT_CHARS
        candidates = [_Candidate(0.0, 0, Unit(0, end, 0))]
        best_of.setdefault(0, candidates[0])
    candidates.sort(key=lambda c: -c.score)
    chosen: list[_Candidate] = candidates[:1]
    both = False
    if chosen and not query.jurisdictions:
        first = passages[chosen[0].passage].chunk.jurisdiction
        on_point = [
            i
            for i, p in enumerate(passages)
            if p.chunk.jurisdiction not in (None, first)
            and p.score >= top - BOTH_JURISDICTIONS_MARGIN
            and not p.signals.get("amending")
            and not p.signals.get("superseded")
            and i in best_of
        ]
        # The rule itself rather than the recital explaining it, when both are on point.
        rules = [i for i in on_point if not is_context(passages[i].chunk)]
        other = next(iter(rules or on_point), None)
        if other is not None:
            chosen.append(best_of[other])
            both = True
    if len(chosen) == 1 and len(candidates) > 1:
        best = chosen[0]
        for candidate in candidates[1:]:
            if candidate.score < best.score - SECOND_UNIT_MARGIN:
                break
            same = candidate.passage == best.passage
            overlaps = same and not (
                candidate.unit.end <= best.unit.start or candidate.unit.start >= best.unit.end
            )
            size = best.unit.size + candidate.unit.size
            if (
                not overlaps
                and size <= MAX_ANSWER_CHARS
                and not restates(_text(passages, best), _text(passages, candidate))
            ):
                chosen.append(candidate)
                break
    # Two units of one passage are quoted in the order the passage has them.
    if len(chosen) == 2 and chosen[0].passage == chosen[1].passage:
        chosen.sort(key=lambda c: c.unit.start)
    # Number citations in the order the answer quotes them, then the rest as "see also".
    order = list(dict.fromkeys(c.passage for c in chosen))
    order += [i for i in range(len(passages)) if i not in order]
    number = {passage: n for n, passage in enumerate(order, start=1)}
    quoted: dict[int, list[_Candidate]] = {}
    for candidate in chosen:
        quoted.setdefault(candidate.passage, []).append(candidate)
    citations = []
    for i in order:
        passage = passages[i]
        picks = quoted.get(i) or ([best_of[i]] if i in best_of else [])
        if picks:
            quote = " … ".join(c.unit.text(passage.text) for c in picks)
        else:
            quote = passage.text[:MAX_UNIT_CHARS]
        first_unit = picks[0].unit if picks else None
        citations.append(citation_for(number[i], passage, quote, first_unit, used=i in quoted))
    parts = []
    for candidate in chosen:
        passage = passages[candidate.passage]
        text = clean_quote(candidate.unit.text(passage.text))
        if candidate.unit.omitted:
            text += f" ({candidate.unit.omitted}; see the passage)"
        label = _label(passage.chunk.jurisdiction, both)
        parts.append(f"{label}{text} [{number[candidate.passage]}]")
    caveats = tuple(
        dict.fromkeys(caveat for c in citations if c.used and (caveat := caveat_of(c.doc_id)))
    )
    answer = Answer(query.text, " ".join(parts), False, tuple(citations), caveats=caveats)
    check_citations(answer)
    return answer


def check_citations(answer: Answer) -> None:
    """Enforce the citation contract: markers ⊆ citations, quotes verbatim in their passages."""
    numbers = {c.n for c in answer.citations}
    for marker in MARKER.findall(answer.text):
        if int(marker) not in numbers:
            raise ValueError(f"answer cites [{marker}] but no citation {marker} was returned")
    for citation in answer.citations:
        for part in citation.quote.split(" … "):
            if part not in citation.text:
                raise ValueError(f"quote of citation {citation.n} is not verbatim in its passage")
    if answer.abstained and MARKER.search(answer.text):
        raise ValueError("an abstention must not carry citation markers")
