"""Explicit references in a question: documents ("Regulation 1394/2007", "the CTR") and
provisions ("Article 15", "Art. 2(1)(b)", "regulation 17A", "Annex I", "Schedule 6")."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

ARTICLES = re.compile(
    r"\b(?:articles?|arts?\.?)\s+(\d+[a-z]?(?:\(\w+\))*"
    r"(?:\s*(?:,|and|or|to|-|–)\s*\d+[a-z]?(?:\(\w+\))*)*)",
    re.I,
)
UK_REGULATIONS = re.compile(r"\b(?:regulations?|regs?\.)\s+(\d+[A-Za-z]{0,2})(?![\w/])", re.I)
ANNEXES = re.compile(r"\bannex\s+([IVXLC]+|\d+)\b", re.I)
SCHEDULES = re.compile(r"\bschedule\s+(\d+[A-Z]?)\b", re.I)
RECITALS = re.compile(r"\brecitals?\s+\(?(\d+)\)?", re.I)
NUMBER = re.compile(r"\b(\d{1,4})\s*/\s*(\d{1,4})\b")
JURISDICTION_HINTS = {
    "UK": re.compile(r"\b(UK|United Kingdom|British|Great Britain|GB|Northern Ireland|MHRA)\b"),
    "EU": re.compile(r"\b(EU|European Union|EEA|EMA|European Medicines Agency|Member States?)\b"),
}


@dataclass(frozen=True)
class DocumentName:
    """What a question may call a document by."""

    doc_id: str
    short_title: str
    aliases: tuple[str, ...] = ()


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


def _alias_pattern(alias: str) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in alias.split())
    # Short all-capital aliases ("CTR", "HMR") must match as written; others in any case.
    flags = 0 if alias.isupper() and len(alias) <= 5 else re.I
    return re.compile(rf"(?<![\w/]){words}(?![\w/])", flags)


def document_numbers(short_title: str) -> set[str]:
    """The "number/year" forms of a document's own number ("1394/2007", "2012/1916")."""
    return {f"{a}/{b}" for a, b in NUMBER.findall(short_title.split("(", 1)[0] + " " + short_title)}


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
