"""What a question asks for: a definition, a duration, a date, a quantity.

Used as light evidence in ranking: a "how long" question prefers passages that state a
duration, a "what is X" question prefers the passage that defines X.
"""

import re
from collections.abc import Callable, Collection

from qa.glossary import ABBREVIATIONS, FIELD_TERMS
from qa.lexical import tokenize

WORD = re.compile(r"\b[A-Za-z][\w-]*\b")
NEGATING_PREFIXES = ("non", "un", "in", "im", "dis", "re", "pre", "sub", "co")

DEFINITIONAL = re.compile(
    r"^\s*(?:what\s+(?:is|are)\b|what's|define|definition|meaning|who\s+is)|"
    r"\b(?:count|counts|qualif\w*|considered|regarded)\s+as\b|\bdefined\b|\bmeaning of\b",
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
# name: (how a question asks for it, how a passage states it)
ANSWER_TYPES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "duration": (
        re.compile(
            r"\bhow (?:long|soon|quickly|often)\b|\bhow many (?:\w+ )?(?:days|weeks|months|years)\b"
            r"|\bwithin (?:what|which|how)\b|\bdeadline\b|\btime ?limit\b|\bperiod\b",
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
            r"|\bsince when\b|\bfrom when\b",
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
}
ANSWER_TYPE_NAMES = tuple(ANSWER_TYPES)
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
]


def answer_types(question: str) -> list[str]:
    """The kinds of answer the question asks for (duration, date, quantity)."""
    return [name for name, (asks, _) in ANSWER_TYPES.items() if asks.search(question)]


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
