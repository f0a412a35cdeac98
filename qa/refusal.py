"""When to refuse: the question names an act the index does not hold, asks for an amount or a
figure the passages do not state, names something the corpus never mentions while the evidence
is short of strong, uses a word the corpus never uses while the evidence is weak, or the
evidence is weak. Each refusal says why in a sentence the user can act on."""

from collections.abc import Sequence

from qa.retrieval.query import CURRENCY_STATED, MONEY_STATED, Query
from qa.retrieval.search import Passage


def _names(items: Sequence[str]) -> str:
    quoted = [f"“{item}”" for item in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def refusal_reason(
    query: Query,
    passages: Sequence[Passage],
    evidence: float,
    *,
    abstain_below: float,
    strong_evidence: float,
    rare_word_evidence: float,
    topicality: float = 1.0,
    off_topic_below: float = 0.0,
) -> str | None:
    """The reason to refuse this question, or None to answer it (`topicality`: the mean
    cosine of its nearest passages)."""
    if query.unindexed:
        sentences = []
        for act in query.unindexed:
            where = f" (official text: {act.url})" if act.url else ""
            if act.guidance:
                where = "; they are EU and UK legislation and hold no guidelines"
            sentences.append(f"{act.name} is not among the indexed documents{where}.")
        return " ".join(sentences)
    if query.foreign and not query.references.doc_ids:
        return (
            "The indexed documents hold EU and UK law only; they do not cover "
            f"{_names(list(query.foreign))}."
        )
    if query.unknown and evidence < strong_evidence:
        return f"The indexed documents never mention {_names(query.unknown)}."
    if query.rare and evidence < rare_word_evidence:
        return f"The indexed documents never mention {_names(query.rare)}."
    if topicality < off_topic_below and evidence < rare_word_evidence:
        return "The question is about something the indexed documents do not cover."
    if query.asks_statistic:
        return (
            "The indexed documents are legal texts; they do not state figures like this or "
            "who currently holds an office."
        )
    if query.asks_draft and not query.references.doc_ids:
        return "The indexed documents are adopted acts; proposals and drafts are not among them."
    stated = CURRENCY_STATED if query.asks_currency else MONEY_STATED
    if query.asks_money and not any(stated.search(p.text) for p in passages[:3]):
        return "The indexed documents do not state the amount asked for."
    if evidence < abstain_below:
        return "The indexed documents do not answer this question."
    return None
