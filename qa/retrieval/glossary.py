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
    "TMF": "trial master file",
    "PSF": "pharmacovigilance system master file",
    "PSMF": "pharmacovigilance system master file",
    "DSUR": "annual safety report development safety update report",
    "CTR": "Clinical Trials Regulation",
    "HMR": "Human Medicines Regulations",
    "POC": "point of care",
    "MM": "modular manufacture",
    "MAA": "marketing authorisation application",
    "IB": "investigator's brochure",
    "SAE": "serious adverse event",
    "SAR": "serious adverse reaction",
    "AE": "adverse event",
    "REC": "research ethics committee",
    "NCA": "national competent authority",
    "RMP": "risk management system plan",
    "QPPV": "qualified person responsible for pharmacovigilance",
    "PASS": "post-authorisation safety study",
    "PAES": "post-authorisation efficacy study",
    "MS": "Member State",
    "GB": "Great Britain",
    "NI": "Northern Ireland",
    "HTA": "Human Tissue Authority",
    # Everyday acronyms of manufacturing and trials, spelt out as the texts say them.
    "GMO": "genetically modified organism",
    "GMOs": "genetically modified organisms",
    "QC": "quality control",
    "QA": "quality assurance",
    "PI": "principal investigator",
    "CRO": "contract research organisation",
    "CMO": "contract manufacturing",
    "CDMO": "contract manufacturing",
    "NHS": "National Health Service",
    "EEA": "European Economic Area",
    "OOS": "out of specification",
    "CAPA": "corrective and preventive action",
    "SOP": "standard operating procedure",
    "CoA": "certificate of analysis",
    "PQR": "product quality review",
    "BMR": "batch manufacturing record",
    "ICF": "informed consent form",
    "IRB": "ethics committee",
    "HCP": "healthcare professional",
    "ADR": "adverse reaction",
    "RSI": "reference safety information",
    "IMPD": "investigational medicinal product dossier",
    "CTIS": "EU portal database clinical trials information system",
    "EPAR": "European public assessment report",
    "CT": "clinical trial",
    "CTs": "clinical trials",
    "CI": "chief investigator",
    "ISF": "investigator site file trial master file",
    "SA": "scientific advice",
    "MIA": "manufacturing authorisation manufacturer's licence",
    "ODD": "orphan designation",
    "DCP": "decentralised procedure",
    "CRS": "cytokine release syndrome serious adverse reaction",
    "PBSC": "peripheral blood stem cells",
    "MNC": "mononuclear cells",
    "LN2": "liquid nitrogen",
    "IDM": "infectious disease markers laboratory tests",
    # Kinds of advanced therapy, as the texts classify them.
    "AAV": "adeno-associated viral vector gene therapy medicinal product",
    "LVV": "lentiviral vector gene therapy medicinal product",
    "iPSC": "induced pluripotent stem cells somatic cell therapy",
    "MSC": "mesenchymal stromal cells somatic cell therapy",
    "TIL": "tumour-infiltrating lymphocytes somatic cell therapy",
    "HSC": "haematopoietic stem cells",
    "HPC": "haematopoietic progenitor cells",
    "NK": "natural killer cells",
    "TCR": "T-cell receptor genetically modified cells gene therapy",
}
# Citation forms: "reg 171", "Art. 15", "para 3", "Sch. 6" name provisions, not things.
CITATION_FORMS: dict[str, str] = {
    "si": "",  # "SI 2012/1916": the number names the document; the letters add nothing
    "reg": "regulation",
    "regs": "regulations",
    "art": "Article",
    "arts": "Articles",
    "para": "paragraph",
    "paras": "paragraphs",
    "sch": "Schedule",
    "subpara": "subparagraph",
}
# What to do with the answer, not what it is about.
INSTRUCTION_WORDS = frozenset(
    {
        "summarise",
        "summarize",
        "summary",
        "explain",
        "list",
        "outline",
        "compare",
        "describe",
        "tell",
        "give",
        "show",
        "clarify",
        "detail",
        "overview",
        "recap",
    }
)
# Field terms the texts never use, and the words they use instead.
FIELD_TERMS: dict[str, str] = {
    "car-t": "somatic cell therapy gene therapy medicinal product genetically modified cells",
    "crispr": "gene therapy medicinal product recombinant nucleic acid",
    "gene editing": "gene therapy medicinal product recombinant nucleic acid",
    "gene-edited": "gene therapy medicinal product recombinant nucleic acid",
    "brexit": "exit from the European Union IP completion day Great Britain",
    "biosimilar": "similar biological medicinal product",
    "biosimilars": "similar biological medicinal products",
    "eudralex": "good manufacturing practice guidelines",
    "stem cell": "somatic cell therapy tissue engineered product cells",
    "stem cells": "somatic cell therapy tissue engineered product cells",
    "off-label": "outside the terms of the marketing authorisation",
    "compassionate use": "compassionate use named patient",
    "lentiviral": "gene therapy medicinal product recombinant nucleic acid viral vector",
    "retroviral": "gene therapy medicinal product recombinant nucleic acid viral vector",
    "adeno-associated": "gene therapy medicinal product recombinant nucleic acid viral vector",
    "viral vector": "gene therapy medicinal product recombinant nucleic acid",
    "car-nk": "somatic cell therapy gene therapy medicinal product genetically modified cells",
    "tcr-t": "somatic cell therapy gene therapy medicinal product genetically modified cells",
    "organoid": "tissue engineered product cells tissues",
    "organoids": "tissue engineered product cells tissues",
    "bioprinted": "tissue engineered product",
    "mrna": "recombinant nucleic acid",
}
# Long forms the texts themselves abbreviate.
LONG_FORMS: dict[str, str] = {
    "point of care": "POC",
    "point-of-care": "POC",
    "modular manufacture": "MM",
}
# Everyday words and the terms the legislation uses for them.
PLAIN_TO_LEGAL: dict[str, str] = {
    "drug": "medicinal product",
    "drugs": "medicinal products",
    "medicine": "medicinal product",
    "medicines": "medicinal products",
    "company": "undertaking enterprise applicant",
    "companies": "undertakings enterprises applicants",
    "firm": "undertaking enterprise",
    "child": "minor paediatric",
    "children": "minors paediatric",
    "kids": "minors paediatric",
    "prison": "imprisonment",
    "jail": "imprisonment",
    "based": "established",
    "located": "established",
    "paid": "payment incentives financial inducements",
    "pay": "fee payment",
    "cost": "fee",
    "costs": "fees",
    "fine": "penalty",
    "fines": "penalties",
    "deadline": "time limit period",
    "doctor": "medical practitioner",
    "doctors": "medical practitioners",
    "start": "commencement apply",
    "starts": "commencement apply",
    "begin": "commencement apply",
    "allowed": "permitted authorised",
    "banned": "prohibited",
    "forbidden": "prohibited",
    # Older EU acts say "Community" where newer ones say "Union".
    "eu": "Community",
    "european union": "Community",
    "hospital exemption": "non-routine basis custom-made individual medical prescription exempt",
    "tell": "notify inform",
    "told": "notified informed",
    "pause": "temporary halt suspension",
    "pauses": "temporary halt suspension",
    "paused": "temporary halt suspension",
    "stop": "cease termination halt",
    "stops": "cease termination halt",
    "stopped": "cease termination halt",
    "phone": "orally",
    "verbally": "orally",
    "email": "in writing electronic",
    "waive": "exemption waiver",
    "waived": "exemption waiver",
    "discount": "fee reduction",
    "sell": "supply placing on the market",
    "sold": "supplied placed on the market",
    "selling": "supply placing on the market",
    "buy": "purchase procure",
    "side effect": "adverse reaction",
    "side effects": "adverse reactions",
    "appeal": "re-examination review",
    "cancel": "revoke revocation withdrawal",
    "cancelled": "revoked revocation withdrawn",
    "expire": "cease to be valid validity",
    "expires": "cease to be valid validity",
    "foreign": "third country",
    "approval": "authorisation",
    "approve": "authorise grant",
    "approved": "authorised granted",
    "sign off": "certify certification",
    "breach": "infringement contravention",
    "punishment": "penalty offence",
    "destroy": "disposal destruction",
    "throw away": "disposal",
    "check": "verify verification inspection",
    "checks": "verification inspections",
    "volunteer": "subject",
    "volunteers": "subjects",
    "participant": "subject",
    "participants": "subjects",
    "regulator": "competent authority licensing authority",
    "pediatric": "paediatric",
    "license": "licence",
}
# Places, as EU and UK texts name them: a Member State of the EU, or a "third country". A
# place is never an unknown word ("add Spain to our trial", "our US site"); whether a question
# asks about another country's own law is judged by `foreign_jurisdictions`. The Member States
# are listed with their adjectives ("Spain": "Spanish"), which also name their national law.
MEMBER_STATES: dict[str, str] = {
    "Austria": "Austrian",
    "Belgium": "Belgian",
    "Bulgaria": "Bulgarian",
    "Croatia": "Croatian",
    "Cyprus": "Cypriot",
    "Czechia": "Czech",
    "Denmark": "Danish",
    "Estonia": "Estonian",
    "Finland": "Finnish",
    "France": "French",
    "Germany": "German",
    "Greece": "Greek",
    "Hungary": "Hungarian",
    "Ireland": "Irish",
    "Italy": "Italian",
    "Latvia": "Latvian",
    "Lithuania": "Lithuanian",
    "Luxembourg": "Luxembourgish",
    "Malta": "Maltese",
    "Netherlands": "Dutch",
    "Poland": "Polish",
    "Portugal": "Portuguese",
    "Romania": "Romanian",
    "Slovakia": "Slovak",
    "Slovenia": "Slovenian",
    "Spain": "Spanish",
    "Sweden": "Swedish",
}
# Countries outside the EU, the EEA and the UK, with their adjectives; their own law is not
# held (`references.FOREIGN_LAW` is built from this list).
THIRD_COUNTRIES: dict[str, str] = {
    "United States": "US",
    "USA": "American",
    "US": "American",
    "America": "American",
    "Japan": "Japanese",
    "Switzerland": "Swiss",
    "Canada": "Canadian",
    "Australia": "Australian",
    "China": "Chinese",
    "India": "Indian",
    "Brazil": "Brazilian",
    "South Korea": "Korean",
    "Korea": "Korean",
    "Singapore": "Singaporean",
    "Israel": "Israeli",
    "New Zealand": "New Zealand",
    "Mexico": "Mexican",
    "Russia": "Russian",
    "Turkey": "Turkish",
    "Saudi Arabia": "Saudi",
    "South Africa": "South African",
}
# The EEA states outside the EU apply the EU's medicines law ("Text with EEA relevance").
EEA_STATES = ("Norway", "Norwegian", "Iceland", "Icelandic", "Liechtenstein")
PLACES: dict[str, str] = {
    **{name: "Member State" for pair in MEMBER_STATES.items() for name in pair},
    **{name: "European Economic Area" for name in EEA_STATES},
    **{name: "third country" for pair in THIRD_COUNTRIES.items() for name in pair},
}
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*")


def expand(question: str) -> tuple[str, list[str]]:
    """The question followed by the long forms of its abbreviations (and vice versa), and
    the entries that fired ("ATMP → advanced therapy medicinal product")."""
    additions: dict[str, str] = {}
    for word in _WORD.findall(question):
        expansion = ABBREVIATIONS.get(word) or ABBREVIATIONS.get(word.rstrip("s"))
        if expansion is None and word.lower().rstrip(".") in CITATION_FORMS:
            expansion = CITATION_FORMS[word.lower().rstrip(".")] or None
        if expansion is None:
            expansion = PLACES.get(word)
        if expansion:
            additions.setdefault(expansion, word)
    lowered = question.lower()
    for long_form, short in LONG_FORMS.items():
        if long_form in lowered:
            additions.setdefault(short, long_form)
    for plain, legal in (*PLAIN_TO_LEGAL.items(), *FIELD_TERMS.items()):
        if re.search(rf"\b{re.escape(plain)}\b", lowered):
            additions.setdefault(legal, plain)
    if not additions:
        return question, []
    fired = [f"{source} → {added}" for added, source in additions.items()]
    return f"{question} ({'; '.join(additions)})", fired
