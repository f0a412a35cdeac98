"""Abbreviations of EU/UK medicines regulation, used to expand questions before retrieval.

The texts mostly spell terms out ("advanced therapy medicinal product") while people ask in
abbreviations ("ATMP"), and a few texts abbreviate what people spell out ("POC"). Expanding the
question both ways lets BM25 and the embedding model see the words the provisions use.
"""

import re

ABBREVIATIONS: dict[str, str] = {
    "ATMP": "advanced therapy medicinal product",
    "ATMPs": "advanced therapy medicinal products",
    "GTMP": "gene therapy medicinal product",
    "sCTMP": "somatic cell therapy medicinal product",
    "TEP": "tissue engineered product",
    "CAT": "Committee for Advanced Therapies",
    "CHMP": "Committee for Medicinal Products for Human Use",
    "PDCO": "Paediatric Committee",
    "PRAC": "Pharmacovigilance Risk Assessment Committee",
    "EMA": "European Medicines Agency",
    "MHRA": "Medicines and Healthcare products Regulatory Agency licensing authority",
    "MAH": "marketing authorisation holder",
    "MA": "marketing authorisation",
    "CMA": "conditional marketing authorisation",
    "SME": "small and medium-sized enterprise micro",
    "SMEs": "small and medium-sized enterprises micro",
    "GMP": "good manufacturing practice",
    "GCP": "good clinical practice",
    "GDP": "good distribution practice",
    "IMP": "investigational medicinal product",
    "IMPs": "investigational medicinal products",
    "QP": "qualified person",
    "SmPC": "summary of product characteristics",
    "PIL": "package leaflet",
    "PIP": "paediatric investigation plan",
    "PSUR": "periodic safety update report",
    "SUSAR": "suspected unexpected serious adverse reaction",
    "CTA": "clinical trial authorisation",
    "SoHO": "substances of human origin",
    "HE": "hospital exemption",
    "SPC": "supplementary protection certificate",
    "COMP": "Committee for Orphan Medicinal Products",
}
# Long forms the texts themselves abbreviate.
LONG_FORMS: dict[str, str] = {
    "point of care": "POC",
    "point-of-care": "POC",
    "modular manufacture": "MM",
}
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")


def expand_query(question: str) -> str:
    """The question followed by the long forms of its abbreviations (and vice versa)."""
    additions: list[str] = []
    for word in _WORD.findall(question):
        expansion = ABBREVIATIONS.get(word) or ABBREVIATIONS.get(word.rstrip("s"))
        if expansion and expansion not in additions:
            additions.append(expansion)
    lowered = question.lower()
    for long_form, short in LONG_FORMS.items():
        if long_form in lowered and short not in additions:
            additions.append(short)
    return f"{question} ({'; '.join(additions)})" if additions else question
