"""Question analysis, done once per question: a `Query` says what the question asks for (a
definition, a duration, a date, an amount), which documents, provisions and jurisdictions it
names, what the glossary added, which acts it names that the index does not hold, and which of
its words the corpus never uses. Retrieval, answering and refusal all read the `Query`.
"""

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

from qa.lexical import tokenize
from qa.retrieval.glossary import (
    ABBREVIATIONS,
    CITATION_FORMS,
    FIELD_TERMS,
    INSTRUCTION_WORDS,
    PLACES,
    expand,
)
from qa.retrieval.references import (
    DocumentName,
    NamedAct,
    References,
    amendments_named,
    foreign_jurisdictions,
    jurisdictions_named,
    parse_references,
    unindexed_acts,
)

WORD = re.compile(r"\b[A-Za-z][\w-]*\b")
CLAUSE_BREAK = re.compile(r"\s[-–—]\s|:\s")
NEGATING_PREFIXES = ("non", "un", "in", "im", "dis", "re", "pre", "sub", "co")
# The endings of medicines' international non-proprietary names ("tocilizumab", "metformin",
# "tisagenlecleucel"): a lower-case word ending so names a product, like a capitalised one.
MEDICINE_NAME = re.compile(
    r"(?:mab|cept|tinib|ciclib|parib|stat|pril|sartan|olol|dipine|azole|cillin|cycline|mycin|"
    r"floxacin|vir|prazole|tidine|setron|triptan|gliptin|gliflozin|formin|glitazone|parin|"
    r"xaban|gatran|caine|profen|coxib|oxetine|azepam|azolam|barbital|semide|thiazide|sone|"
    r"olone|lukast|glutide|relin|leucel|vec|amol)s?$",
    re.I,
)

WHAT_IS = re.compile(r"^\s*(?:what\s+(?:is|are)\b|what's|who\s+is)", re.I)
DEFINITIONAL = re.compile(
    r"^\s*(?:define|definition|meaning)|"
    r"\b(?:count|counts|qualif\w*|considered|regarded)\s+as\b|\bdefined\b|\bmeaning of\b"
    # "what does the SoHO Regulation mean by …", "what does 'the 2004 Act' refer to?"
    r"|\bmean(?:s|t)?\s+by\b|\bwhat (?:does|do)\b.*\b(?:mean|refer to|stand for)\W*$",
    re.I,
)
DEFINED_TERM = re.compile(
    r"[‘“'\"]([^’”'\"\n]{2,120})[’”'\"]\s*"
    r"(means|shall mean|includes|has the (?:same )?meaning)\b"
)
NUMBER = (
    r"(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|"
    r"thirty|sixty|ninety)"
)
MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
)
# "Summarise X", "what does SI 2025/87 change": an overview of an act, not one of its rules.
OVERVIEW = re.compile(
    r"\b(?:summar\w+|overview|outline|what does .* (?:change|amend|do|cover)|purpose)\b", re.I
)
# name: (how a question asks for it, how a passage states it)
ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "duration": (
        re.compile(
            r"\bhow (?:long|soon|quickly|fast|promptly|often)\b|\bhow much (?:notice|time)\b"
            r"|\bhow far in advance\b|\bhow many (?:\w+ )?(?:days|weeks|months|years)\b"
            r"|\bwithin (?:what|which|how)\b|\bdeadline\b|\btime ?limit\b|\bperiod\b"
            r"|\bwhen (?:must|should|do|does|has|have|is|are)\b",
            re.I,
        ),
        re.compile(
            rf"\b{NUMBER}(?:\s*\(\d+\))?[\s-]+(?:working |calendar |clear )?"
            r"(?:days?|weeks?|months?|years?|hours?)\b",
            re.I,
        ),
    ),
    "date": (
        re.compile(
            r"\bby when\b|\bwhen (?:did|does|do|will|must|was|were)\b|\bwhat date\b"
            r"|\bsince when\b|\bfrom when\b|\buntil when\b|\btill when\b",
            re.I,
        ),
        re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)? {MONTHS},? \d{{4}}\b"),
    ),
    "quantity": (
        re.compile(
            r"\bhow (?:much|many)\b|\bthreshold\b|\bmaximum\b|\bminimum\b"
            r"|\bwhat (?:reduction|percentage|proportion|fee|amount|number)\b",
            re.I,
        ),
        re.compile(rf"\b{NUMBER}\s*(?:%|per ?cent|in \d|thousand|million|EUR|euro)|\b\d+\b", re.I),
    ),
    # who sits on a committee, how a body is made up
    "composition": (
        re.compile(
            r"\bwho (?:sits|serves|are the members)\b|\bmade up\b|\bcomposition\b"
            r"|\bcompos(?:ed|e)\b|\bmembership\b|\bwho (?:is|are) on\b",
            re.I,
        ),
        re.compile(r"\b(?:consists? of|consisting of|composed of|comprises?|comprising)\b", re.I),
    ),
}
ANSWER_TYPE_NAMES = tuple(ANSWER_TYPES)
# Facts no legal text states, or states only as a figure: a fee in money, a count of products.
MONEY_ASKED = re.compile(
    r"\b(?:fees?|costs?|price[sd]?|charges?|how much (?:does|do|is|will|would)\b.*\b(?:cost|pay|"
    r"charge))\b.*|\bin (?:pounds|euros?|sterling|dollars)\b|[£€$]|\b(?:GBP|EUR|USD)\b",
    re.I,
)
MONEY_STATED = re.compile(
    r"[£€$]\s?\d|\b\d[\d,.]*\s*(?:EUR|euros?|pounds?|GBP|%|per ?cent)|\b(?:EUR|GBP)\s?\d",
    re.I,
)
# "the fee in euros": a reduction in per cent does not answer it
CURRENCY_ASKED = re.compile(
    r"\bin (?:pounds|euros?|sterling|dollars)\b|[£€$]|\b(?:GBP|EUR|USD)\b", re.I
)
CURRENCY_STATED = re.compile(
    r"[£€$]\s?\d|\b\d[\d,.]*\s*(?:EUR|euros?|pounds?|GBP)\b|\b(?:EUR|GBP)\s?\d", re.I
)
# Proposals and drafts are not law: the index holds adopted acts.
DRAFT_ASKED = re.compile(
    r"\b(?:proposals?|draft (?:regulation|directive|guideline|guidance|bill|law)s?|"
    r"pharma(?:ceutical)? (?:package|reform))\b",
    re.I,
)
STATISTIC_ASKED = re.compile(
    r"\bhow many\b.*\b(?:have|has|were|are)\s+(?:\w+\s+){0,3}(?:been\s+)?(?:approved|"
    r"authorised|authorized|granted|marketed|licensed|refused|rejected|withdrawn|run|conducted)\b"
    # "how many CTAs did the MHRA approve in 2024", not "how many days does it have to approve"
    r"|\bhow many\b(?!\s+(?:\w+\s+)?(?:days|weeks|months|years|hours)\b)"
    r"(?:.*\bdid\b.*\b(?:approve|authori[sz]e|grant|licen[sc]e|refuse|reject|receive|issue"
    r"|inspect)\b|.*\b(?:currently|at present|right now|nowadays)\b)"
    r"|\bstatistic|\bsuccess rate\b|\bso far\b|\bto date\b|\bper year\b"
    r"|\bannually\b.*\bhow many\b|\bon average\b"
    # how things go in practice: the law sets limits, not typical durations
    r"|\bhow long (?:does|do|will)\b.*\b(?:usually|typically|normally|generally) take\b"
    # who holds an office now: the law names offices, not the people in them
    r"|\b(?:name of|who is) the (?:current|present)\b|\bcurrently (?:holds|chairs|heads|leads)\b",
    re.I,
)
# Questions about when a law applies, or what happens to offenders, are answered by
# provisions with standard headings ("Entry into force and application", "Penalties").
HEADING_INTENTS: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (
        re.compile(
            r"\b(?:when|date|from|since|until)\b.*\b(?:appl(?:y|ies|ication)|in force|"
            r"commenc\w*|start\w*|begin\w*|take effect)\b",
            re.I,
        ),
        re.compile(r"entry into force|\bapplication\b|commencement|transitional", re.I),
    ),
    (
        re.compile(r"\b(?:penalt\w*|fines?|prison|imprison\w*|sanction\w*|offen[cs]e\w*)\b", re.I),
        re.compile(r"penalt|offen[cs]e|sanction|infringement", re.I),
    ),
    (  # what an act is about, or what an amending instrument changes
        OVERVIEW,
        re.compile(r"explanatory note|subject matter|\bscope\b|\bpurpose\b", re.I),
    ),
]


def answer_types(question: str) -> list[str]:
    """The kinds of answer the question asks for (duration, date, quantity)."""
    return [name for name, (asks, _) in ANSWER_TYPES.items() if asks.search(question)]


def is_definitional(question: str) -> bool:
    """Whether the question asks what a term means: "define X", "does X count as …", and
    "what is X" unless it asks for a duration, date or amount ("what is the maximum fine")."""
    if DEFINITIONAL.search(question):
        return True
    return bool(WHAT_IS.search(question)) and not answer_types(question)


def heading_intents(question: str) -> list[re.Pattern[str]]:
    """Heading patterns of the provisions that typically answer this kind of question."""
    return [heading for asks, heading in HEADING_INTENTS if asks.search(question)]


def finds_answer_type(name: str, text: str) -> bool:
    """Whether a passage states an answer of that kind."""
    return bool(ANSWER_TYPES[name][1].search(text))


def defined_terms(text: str) -> list[tuple[tuple[str, ...], float]]:
    """Stems of the terms a passage defines, each with a weight: 1 for "‘X’ means …",
    0.5 for "“X” has the meaning given in …" (a pointer to the definition elsewhere)."""
    terms = []
    for m in DEFINED_TERM.finditer(text):
        stems = tuple(tokenize(m.group(1)))
        if stems:
            terms.append((stems, 0.5 if m.group(2).startswith("has") else 1.0))
    return terms


def names_term(question_stems: list[str], term: tuple[str, ...]) -> bool:
    """Whether the question names the term: its stems appear together, in order."""
    n = len(term)
    return any(tuple(question_stems[i : i + n]) == term for i in range(len(question_stems) - n + 1))


def unknown_terms(
    question: str,
    *,
    known: Collection[str],
    word_pieces: Callable[[str], int],
    names: Collection[str] = (),
) -> list[str]:
    """Names and rare words of the question the corpus never uses ("Kymriah", "FDA",
    "paracetamol"): a question about them cannot be answered from these documents.

    A word counts when none of its stems occurs in the corpus, it is not an abbreviation
    or document name we know, and it is either capitalised mid-sentence or rare enough for
    the embedding model's vocabulary to split it into three or more pieces.
    """
    found = []
    for m in WORD.finditer(question):
        word = m.group(0)
        stems = tokenize(word)
        if not stems or any(s in known for s in stems):
            continue
        known_name = word.lower() in names or word.lower() in FIELD_TERMS
        if word in ABBREVIATIONS or word.rstrip("s") in ABBREVIATIONS or known_name:
            continue
        if word.lower() in INSTRUCTION_WORDS or word.lower() in CITATION_FORMS:
            continue  # "Summarise", "Outline": what to do with the answer, not a name
        if word in PLACES:
            continue  # "our US site", "add Spain": other countries' law is judged apart
        lowered = word.lower()
        if any(
            lowered.startswith(p) and any(s in known for s in tokenize(lowered[len(p) :]))
            for p in NEGATING_PREFIXES
        ):
            continue  # "unlicensed": "licensed" is known
        capitalised = m.start() > 0 and word[0].isupper()
        if capitalised or word_pieces(lowered) >= 3:
            found.append(word)
    return found


def asked_clause(question: str) -> str:
    """The part of a question that asks: its last sentence, after its last dash or colon
    ("Our myeloma patient's harvest came back positive - can the lab still process it?" →
    "can the lab still process it?"). The rest sets the scene."""
    last = re.split(r"(?<=[.?!])\s+", question.strip())[-1]
    return CLAUSE_BREAK.split(last)[-1]


def is_name(word: str, question: str) -> bool:
    """Whether an unknown word of the question names something (a product, a body, a
    medicine) rather than being a rare everyday or technical word ("apheresis", "germline",
    "radiotracer"): capitalised other than as the question's first word, or a medicine's name."""
    first = WORD.search(question)
    capitalised = word[0].isupper() and not (first and first.group(0) == word)
    return capitalised or bool(MEDICINE_NAME.search(word))


@dataclass(frozen=True)
class Vocabulary:
    """What question analysis needs to know about the index: the documents and their names,
    the texts listed in sources.toml but not indexed, the corpus's word stems, and the
    embedding model's tokenizer (rare words split into many pieces)."""

    documents: Sequence[DocumentName]
    known: Collection[str]
    word_pieces: Callable[[str], int]
    unindexed: Sequence[NamedAct] = ()
    names: Collection[str] = frozenset()
    mentioned_acts: Collection[str] = frozenset()  # Acts of Parliament the texts cite, lower-cased


@dataclass(frozen=True)
class Query:
    """A question analysed once: everything retrieval, answering and refusal read."""

    text: str
    expanded: str  # the question plus the glossary's additions, for BM25 and headings
    expansions: tuple[str, ...]  # the glossary entries that fired, "ATMP → advanced …"
    asked: frozenset[str]  # word stems of the question as asked
    stems: tuple[str, ...]  # word stems of `expanded`
    term_stems: tuple[str, ...]  # stems with abbreviations spelt out in place, for term matches
    references: References
    jurisdictions: frozenset[str]  # EU / UK named, directly or through a named document
    answer_types: tuple[str, ...]  # duration, date, quantity
    definitional: bool  # "what is X", "define X", "does X count as"
    overview: bool = False  # "summarise X", "what does SI 2025/87 change"
    headings: tuple[re.Pattern[str], ...] = ()
    unknown: tuple[str, ...] = ()  # names the corpus never uses ("Kymriah", "tocilizumab")
    rare: tuple[str, ...] = ()  # other words it never uses ("apheresis"), names setting the scene
    unindexed: tuple[NamedAct, ...] = ()  # acts named that the index does not hold
    foreign: tuple[str, ...] = ()  # "the FDA", "in Japan": law the index does not hold
    asks_money: bool = False
    asks_currency: bool = False  # "in euros", "£": an amount in money, not a percentage
    asks_statistic: bool = False
    asks_draft: bool = False  # "the 2023 pharmaceutical package proposal"
    notes: dict[str, str] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, object]:
        """The analysis as shown by `search --explain` and the API."""
        return {
            "expanded": self.expanded,
            "expansions": list(self.expansions),
            "documents": sorted(self.references.doc_ids),
            "provisions": list(self.references.provisions),
            "jurisdictions": sorted(self.jurisdictions),
            "answer_types": list(self.answer_types),
            "definitional": self.definitional,
            "overview": self.overview,
            "unknown_terms": list(self.unknown),
            "rare_words": list(self.rare),
            "unindexed_acts": [a.name for a in self.unindexed],
            "foreign": list(self.foreign),
        }


def _spelt_out(question: str, expansions: Sequence[str]) -> str:
    """The question with each abbreviation replaced by its long form ("combined ATMP" →
    "combined advanced therapy medicinal product")."""
    for expansion in expansions:
        source, _, long_form = expansion.partition(" → ")
        question = re.sub(rf"\b{re.escape(source)}\b", long_form, question)
    return question


def analyse(question: str, vocabulary: Vocabulary) -> Query:
    """Analyse a question against an index's vocabulary."""
    expanded, expansions = expand(question)
    references = parse_references(question, vocabulary.documents)
    # "the 2019 amendments to Regulation 726/2004": the amending instrument is named too
    if amending := amendments_named(question, vocabulary.documents, references.doc_ids):
        references = replace(references, doc_ids=references.doc_ids | amending)
    by_id = {d.doc_id: d for d in vocabulary.documents}
    named_documents = {by_id[i].jurisdiction for i in references.doc_ids if i in by_id}
    jurisdictions = jurisdictions_named(question) | {j for j in named_documents if j}
    unindexed = (
        ()
        if references.doc_ids
        else unindexed_acts(
            question, vocabulary.documents, vocabulary.unindexed, vocabulary.mentioned_acts
        )
    )
    unknown = unknown_terms(
        question, known=vocabulary.known, word_pieces=vocabulary.word_pieces, names=vocabulary.names
    )
    # A name refuses where the question asks about it ("What is the dose of Kymriah?"), not
    # where it only sets the scene ("We make a one-off MSC product for a GvHD patient - who …").
    asked = set(WORD.findall(asked_clause(question)))
    names = {w for w in unknown if is_name(w, question) and w in asked}
    return Query(
        text=question,
        expanded=expanded,
        expansions=tuple(expansions),
        asked=frozenset(tokenize(question)),
        stems=tuple(tokenize(expanded)),
        term_stems=tuple(tokenize(_spelt_out(question, expansions)) + tokenize(expanded)),
        references=references,
        jurisdictions=frozenset(jurisdictions),
        answer_types=tuple(answer_types(question)),
        definitional=is_definitional(question),
        overview=bool(OVERVIEW.search(question)),
        headings=tuple(heading_intents(question)),
        unknown=tuple(w for w in unknown if w in names),
        rare=tuple(w for w in unknown if w not in names),
        unindexed=tuple(unindexed),
        foreign=tuple(foreign_jurisdictions(question)),
        asks_money=bool(MONEY_ASKED.search(question)),
        asks_currency=bool(CURRENCY_ASKED.search(question)),
        asks_statistic=bool(STATISTIC_ASKED.search(question)),
        asks_draft=bool(DRAFT_ASKED.search(question)),
    )
