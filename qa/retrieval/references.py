"""Explicit references in a question: documents ("Regulation 1394/2007", "the CTR") and
provisions ("Article 15", "Art. 2(1)(b)", "regulation 17A", "Annex I", "Schedule 6")."""

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from qa.retrieval.glossary import MEMBER_STATES, THIRD_COUNTRIES

ARTICLES = re.compile(
    r"\b(?:articles?|arts?\.?)\s+(\d+[a-z]?(?:\(\w+\))*"
    r"(?:\s*(?:,|and|or|to|-|–)\s*\d+[a-z]?(?:\(\w+\))*)*)",
    re.I,
)
UK_REGULATIONS = re.compile(r"\b(?:regulations?|regs?\.?)\s+(\d+[A-Za-z]{0,2})(?![\w/])", re.I)
ANNEXES = re.compile(r"\bannex\s+([IVXLC]+|\d+)\b", re.I)
SCHEDULES = re.compile(r"\bschedule\s+(\d+[A-Z]?)\b", re.I)
RECITALS = re.compile(r"\brecitals?\s+\(?(\d+)\)?", re.I)
NUMBER = re.compile(r"\b(\d{1,4})\s*/\s*(\d{1,4})\b")
# Words that name a jurisdiction: a question using them is answered from that jurisdiction.
JURISDICTION_HINTS = {
    "UK": re.compile(
        r"\b(?:UK|U\.K\.|United Kingdom|British|Britain|GB|Northern Ireland|England|English|"
        r"Scotland|Scottish|Wales|Welsh|MHRA|HMR|NHS|licensing authority|S\.?I\.?\s*\d{4}/|"
        r"statutory instruments?|(?:regs?\.?|regulations?)\s+\d+[A-Z]?(?![\d/]))",
    ),
    "EU": re.compile(
        r"\b(?:EU|E\.U\.|European Union|Union law|Union|EMA|European Medicines Agency|"
        r"Member States?|Community|CHMP|CAT|PRAC|COMP|PDCO|EUR-Lex|Commission Regulation|"
        r"(?:Directive|Regulation)\s*\((?:EC|EU|EEC)\))\b"
    ),
}
# Regulators and countries outside the EU and the UK: the indexed texts do not hold their law.
FOREIGN_REGULATORS = re.compile(
    r"\b(?:FDA|Food and Drug Administration|PMDA|Swissmedic|Health Canada|TGA|NMPA|ANVISA|"
    r"CDSCO|MFDS|HSA)\b"
)
FOREIGN_PLACES = rf"(?:the\s+)?(?:{'|'.join(map(re.escape, THIRD_COUNTRIES))}|U\.S\.A?\.?)"
FOREIGN_ADJECTIVES = (
    rf"(?:{'|'.join(map(re.escape, dict.fromkeys(THIRD_COUNTRIES.values())))}|U\.S\.)"
)
# A Member State's own law ("under Irish law", "the French national health insurance"): the
# index holds EU and UK law, not national law; "the German competent authority" acting under
# EU law is another matter, so only law, acts, legislation and insurance count.
MEMBER_STATE_ADJECTIVES = f"(?:{'|'.join(MEMBER_STATES.values())})"
# "in Japan", "under Swiss law", "the US Orphan Drug Act", "Japan's PMDA" — not "a US company",
# "based in Japan".
FOREIGN_LAW = re.compile(
    rf"(?<!based )(?<!established )(?<!located )(?<!incorporated )"
    rf"\b(?:in|under|by|for|to|within)\s+{FOREIGN_PLACES}\b(?!\s*-?based)"
    rf"|\b{FOREIGN_ADJECTIVES}\s+(?:\w+\s+){{0,2}}(?:law|Act|regulations?|rules|"
    rf"requirements|authorit\w+|agency|legislation|approval|market|system|government)\b"
    rf"|\b{FOREIGN_PLACES}['’]s\b"  # "Japan's PMDA", "South Korea's Act": its own body or law
    rf"|\b{MEMBER_STATE_ADJECTIVES}\s+(?:\w+\s+){{0,2}}(?:law|Act|legislation|insurance)\b"
)


# A numbered act: "Directive 2001/83/EC", "Regulation (EU) 2017/745", "SI 2024/1226", "2019/5".
NAMED_ACT = re.compile(
    r"(?:\b(?:Commission\s+(?:Delegated\s+|Implementing\s+)?)?"
    r"(?:Directive|Regulation|Decision)\s*(?:\((?:EC|EU|EEC|Euratom)\)\s*)?(?:No\.?\s*)?"
    r"|\bS\.?\s?I\.?\s*(?:No\.?\s*)?)?"
    r"\b(\d{2,4})\s*/\s*(\d{1,4})(?:\s*/\s*(?:EC|EU|EEC))?\b",
    re.I,
)


# An Act of Parliament by its short title and year: "the Human Tissue Act 2004",
# "the Animals (Scientific Procedures) Act 1986". The name is read backwards from "Act 1986".
ACT_YEAR = re.compile(r"\bAct\s+(\d{4})\b")
_ACT_NAME_WORD = re.compile(r"(?:[A-Z][\w'’.-]*|\([A-Z][^()]{0,60}\)|and|of|for|on|etc\.?)$")
_NOT_IN_A_NAME = {
    "Under",
    "According",
    "Does",
    "Do",
    "Did",
    "What",
    "Which",
    "How",
    "Is",
    "Are",
    "Can",
    "Must",
    "In",
    "By",
    "When",
    "Who",
    "Why",
    "If",
}
# Guidance cited as the source of the answer: "what does the EMA guideline on … recommend",
# "according to the ICH E6 guideline", "under the Commission's Q&A on …". Not "who draws up
# the GMP guidelines" (what the law says about guidelines).
GUIDANCE_WORDS = r"(?:guidelines?|guidance|reflection paper|Q&As?|questions and answers)"
GUIDANCE_CITED = re.compile(
    r"\b(?i:according to|under|per|in line with|does|do|did)\s+(?:the\s+|an?\s+)?"
    rf"((?:[A-Z0-9][\w'’&/.-]*\s+){{0,5}}{GUIDANCE_WORDS}\b"
    r"(?:\s+on\s+[^,;?]*?(?=\s+(?:say|says|recommend|recommends|require|requires|state|"
    r"states|expect|expects|advise|advises|set out|sets out|cover|covers|define|defines)\b|,))?)"
)
GUIDANCE_KINDS = ("guideline", "reflection paper")
GUIDANCE_TITLE = re.compile(rf"\b{GUIDANCE_WORDS}\b", re.I)


@dataclass(frozen=True)
class DocumentName:
    """What a question may call a document by."""

    doc_id: str
    short_title: str
    aliases: tuple[str, ...] = ()
    jurisdiction: str | None = None
    kind: str | None = None
    amends: tuple[str, ...] = ()  # an amending instrument: ids of the texts it amends

    @property
    def is_guidance(self) -> bool:
        """A guideline, reflection paper or Q&A rather than legislation."""
        return self.kind in GUIDANCE_KINDS or bool(GUIDANCE_TITLE.search(self.short_title))


@dataclass(frozen=True)
class NamedAct:
    """An act, guideline or body a question may name that the index does not hold."""

    name: str
    url: str | None = None
    aliases: tuple[str, ...] = ()
    guidance: bool = False  # a guideline named while the index holds legislation only


@dataclass(frozen=True)
class References:
    """Documents, provisions and jurisdictions a question names explicitly."""

    doc_ids: frozenset[str] = frozenset()
    provisions: tuple[str, ...] = ()
    jurisdictions: frozenset[str] = frozenset()
    spans: tuple[tuple[int, int], ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.provisions)

    def names_provision(self, provision: str) -> bool:
        """Whether a chunk's provision ("Article 15", "Schedule 6, paragraph 3") is named."""
        for wanted in self.provisions:
            if provision == wanted or provision.startswith(wanted + ","):
                return True
            if wanted.startswith("Recital ") and provision.startswith("Recitals "):
                first, _, last = provision.split()[-1].partition("–")
                numbers = first.isdigit() and last.isdigit()
                if numbers and int(first) <= int(wanted.split()[-1]) <= int(last):
                    return True
        return False


# Both are asked of every document's names for every question: remembered.
@lru_cache(maxsize=4096)
def _alias_pattern(alias: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in alias.split())
    # Short all-capital aliases ("CTR", "HMR") must match as written; others in any case.
    flags = 0 if alias.isupper() and len(alias) <= 5 else re.I
    return re.compile(rf"(?<![\w/]){words}(?![\w/])", flags)


@lru_cache(maxsize=4096)
def document_numbers(short_title: str) -> frozenset[str]:
    """The "number/year" forms of a document's own number ("1394/2007", "2012/1916")."""
    text = short_title.split("(", 1)[0] + " " + short_title
    return frozenset(f"{a}/{b}" for a, b in NUMBER.findall(text))


def parse_references(question: str, documents: Sequence[DocumentName]) -> References:
    """Find the documents, provisions and jurisdictions `question` names."""
    doc_ids: set[str] = set()
    spans: list[tuple[int, int]] = []
    numbers = {f"{a}/{b}" for a, b in NUMBER.findall(question)}
    for document in documents:
        own = document_numbers(document.short_title)
        if own & numbers:
            doc_ids.add(document.doc_id)
        for alias in document.aliases:
            if m := _alias_pattern(alias).search(question):
                doc_ids.add(document.doc_id)
                spans.append(m.span())
    provisions: list[str] = []
    for m in ARTICLES.finditer(question):
        listed = re.sub(r"\(\w+\)", "", m.group(1))
        provisions += [f"Article {n.lower()}" for n in re.findall(r"\d+[a-z]?", listed, re.I)]
    for m in UK_REGULATIONS.finditer(question):
        number = m.group(1).upper()
        if not (number.isdigit() and int(number) >= 1900):  # "Regulations 2012" is a year
            provisions.append(f"regulation {number}")
    provisions += [f"Annex {m.group(1).upper()}" for m in ANNEXES.finditer(question)]
    provisions += [f"Schedule {m.group(1).upper()}" for m in SCHEDULES.finditer(question)]
    provisions += [f"Recital {m.group(1)}" for m in RECITALS.finditer(question)]
    jurisdictions = {j for j, pattern in JURISDICTION_HINTS.items() if pattern.search(question)}
    return References(
        doc_ids=frozenset(doc_ids),
        provisions=tuple(dict.fromkeys(provisions)),
        jurisdictions=frozenset(jurisdictions),
        spans=tuple(spans),
    )


AMENDMENT_WORD = re.compile(r"\bamend(?:s|ed|ing|ments?)?\b", re.I)
# "the 2019 amendments to …", "as amended in 2019", "the 2019 amending regulation"
AMENDMENT_YEAR = re.compile(
    r"\b((?:19|20)\d\d)\s+amend(?:ments?|ing)\b|\bamended\s+in\s+((?:19|20)\d\d)\b", re.I
)


def document_year(doc_id: str) -> str | None:
    """The year in an official id: CELEX "32019R0005" → "2019", "uksi-2025-87" → "2025"."""
    m = re.match(r"3((?:19|20)\d\d)[A-Z]", doc_id) or re.match(r"uk\w*-((?:19|20)\d\d)-", doc_id)
    return m.group(1) if m else None


def _official_ids(a: str, b: str) -> set[str]:
    """The ids a "number/year" or "year/number" citation may have (CELEX, UK SI)."""
    ids = set()
    for year, number in ((a, b), (b, a)):
        if re.fullmatch(r"(?:19|20)\d\d", year) and number.isdigit():
            ids |= {f"3{year}{kind}{int(number):04d}" for kind in "LR"}
            ids.add(f"uksi-{year}-{int(number)}")
    return ids


def amendments_named(
    question: str, documents: Sequence[DocumentName], named: Collection[str]
) -> set[str]:
    """The indexed amending instruments a question asks about by what they amend ("the 2019
    amendments to Regulation 726/2004", "Directive 2001/83/EC as amended in 2019"): those
    amending a text it names, indexed or not, made in the year it gives, if it gives one."""
    if not AMENDMENT_WORD.search(question):
        return set()
    targets = set(named)
    for a, b in NUMBER.findall(question):
        targets |= _official_ids(a, b)
    years = {year for m in AMENDMENT_YEAR.finditer(question) for year in m.groups() if year}
    return {
        d.doc_id
        for d in documents
        if targets & set(d.amends) and (not years or document_year(d.doc_id) in years)
    }


def jurisdictions_named(question: str) -> set[str]:
    """The jurisdictions (EU, UK) a question names by word."""
    return {j for j, pattern in JURISDICTION_HINTS.items() if pattern.search(question)}


def acts_of_parliament(text: str) -> list[str]:
    """The Acts a text names by short title and year, as written ("Medicines Act 1968")."""
    found = []
    for m in ACT_YEAR.finditer(text):
        words: list[str] = []
        # words and parenthesised groups before "Act", nearest first
        for piece in reversed(re.findall(r"\([^()]*\)|[^\s()]+", text[: m.start()])):
            if piece in _NOT_IN_A_NAME or not _ACT_NAME_WORD.match(piece):
                break
            words.insert(0, piece)
        while words and not words[0][0].isupper() and not words[0].startswith("("):
            words.pop(0)  # "and", "of": not how a short title begins
        if words:
            found.append(" ".join([*words, "Act", m.group(1)]))
    return found


def unindexed_acts(
    question: str,
    documents: Sequence[DocumentName],
    catalogue: Sequence[NamedAct] = (),
    mentioned_acts: Collection[str] = frozenset(),
) -> list[NamedAct]:
    """Acts and guidance the question names that are not among the indexed `documents`:
    numbered acts, names listed in sources.toml (those come with their URL), Acts of
    Parliament that no indexed text even mentions (`mentioned_acts`, lower-cased), and
    guidelines cited as the source when the index holds none."""
    indexed = {n for d in documents for n in document_numbers(d.short_title)}
    listed = {n: act for act in catalogue for n in document_numbers(act.name)}
    found: dict[str, NamedAct] = {}
    for m in NAMED_ACT.finditer(question):
        number = f"{m.group(1)}/{m.group(2)}"
        if number in indexed or any(
            number in document_numbers(a) for d in documents for a in d.aliases
        ):
            continue
        act = listed.get(number) or NamedAct(" ".join(m.group(0).split()))
        found.setdefault(act.name, act)
    for act in catalogue:
        if any(_alias_pattern(alias).search(question) for alias in act.aliases):
            found.setdefault(act.name, act)
    held = {n.lower() for d in documents for n in (d.short_title, *d.aliases)}
    for name in acts_of_parliament(question):
        lowered = name.lower()
        known = lowered in held or any(
            m == lowered or m.endswith(" " + lowered) for m in mentioned_acts
        )
        if not known:
            found.setdefault(name, NamedAct(f"The {name}"))
    guidance = GUIDANCE_CITED.search(question)
    if guidance and not found and not any(d.is_guidance for d in documents):
        name = guidance.group(1)
        found[name] = NamedAct(f"The {name}", guidance=True)
    return list(found.values())


def foreign_jurisdictions(question: str) -> list[str]:
    """Regulators and countries outside the EU and UK whose law the question asks about."""
    found = [m.group(0) for m in FOREIGN_REGULATORS.finditer(question)]
    for m in FOREIGN_LAW.finditer(question):
        name = re.sub(r"^(?:(?:in|under|by|for|to|within)\s+)?(?:the\s+)?", "", m.group(0))
        found.append(re.sub(r"['’]s$", "", name))
    return list(dict.fromkeys(found))
