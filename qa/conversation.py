"""Follow-up questions: the last user turn of a conversation as a question that stands alone.

"And what is the UK equivalent?" after "What is the hospital exemption under the EU ATMP
Regulation?" becomes "What is the hospital exemption in the UK?"; "how long does it last?"
becomes "how long does the hospital exemption last?". Deterministic rules, no model: a turn is
a follow-up when it opens like one ("and …", "what about …") or refers back ("it", "that",
"the equivalent") while naming no act of its own.
"""

import re
from collections.abc import Callable, Sequence

from qa.generate import ChatModel, GenerationError
from qa.retrieval.query import Query

OPENER = re.compile(
    r"^\s*(?:and|but|also|so|then|ok(?:ay)?,?)\b[\s,]*|^\s*(?=(?:what|how) about\b)", re.I
)
WHAT_ABOUT = re.compile(r"^\s*(?:and\s+)?(?:what|how) about\s+(?P<rest>.+?)\s*\??\s*$", re.I)
REFERRING = re.compile(
    r"\b(?:it|its|that|this|they|them|these|those|such|the same)\b(?!\s+(?:is|are)\s+no)",
    re.I,
)
EQUIVALENT = re.compile(r"\b(?:equivalent|counterpart|version|rules?|position|law)\b", re.I)
JURISDICTION_WORDS = {
    "UK": "in the UK",
    "EU": "in the EU",
}
QUESTION_FRAME = re.compile(
    r"^\s*(?P<frame>(?:what|which|who|how|when|where|why)(?:\s+(?:long|much|many|soon))?\s+"
    r"(?:is|are|was|were|does|do|did|can|must|should|will|would)|what's)\s+",
    re.I,
)
# Where a topic phrase stops: a jurisdiction or an act ("under the EU ATMP Regulation")
QUALIFIER = re.compile(
    r"\s+(?:under|in|within|according to|pursuant to|of the|for the purposes of)\s+"
    r"(?:the\s+)?(?:EU|UK|European|United Kingdom|British|Union|Regulation|Directive|HMR|"
    r"Human Medicines|ATMP Regulation|Great Britain|GB)\b.*$",
    re.I,
)
VERB_STOP = re.compile(
    r"\s+(?:apply|applies|need|needs|require|requires|last|lasts|mean|means|cover|covers|"
    r"allow|allows|have|has|work|works|start|starts|end|ends|take|takes)\b.*$",
    re.I,
)
MAX_FOLLOW_UP_WORDS = 12

Analyse = Callable[[str], Query]


def is_follow_up(question: str, query: Query) -> bool:
    """Whether `question` leans on what came before: it opens like a follow-up, or it refers
    back ("it", "that", "the UK equivalent") in a short question naming no act itself."""
    if OPENER.search(question):
        return True
    if query.references.doc_ids or len(question.split()) > MAX_FOLLOW_UP_WORDS:
        return False
    return bool(REFERRING.search(question) or EQUIVALENT.search(question))


def topic_of(question: str) -> tuple[str, str]:
    """The frame ("What is") and the topic phrase ("the hospital exemption under …")."""
    text = question.strip().rstrip("?").strip()
    m = QUESTION_FRAME.match(text)
    if not m:
        return "What is", VERB_STOP.sub("", text)
    return m.group("frame"), VERB_STOP.sub("", text[m.end() :])


def rewrite(question: str, previous: str, query: Query) -> str:
    """`question` made standalone with the topic of `previous` (a standalone question)."""
    frame, topic = topic_of(previous)
    core = QUALIFIER.sub("", topic).strip() or topic
    named = sorted(query.jurisdictions)
    place = " ".join(JURISDICTION_WORDS[j] for j in named if j in JURISDICTION_WORDS)
    bare = OPENER.sub("", question).strip()
    if place and (EQUIVALENT.search(bare) or len(bare.split()) <= 4):
        # "and in the UK?", "what is the UK equivalent?"
        return f"{frame[0].upper()}{frame[1:]} {core} {place}?"
    if m := WHAT_ABOUT.match(question):
        rest = m.group("rest")
        return f"{previous.strip().rstrip('?')}, as regards {rest}?"
    if REFERRING.search(bare):
        replaced = REFERRING.sub(lambda r: _substitute(r.group(0), core), bare, count=1)
        return replaced[0].upper() + replaced[1:]
    return f"{previous.strip().rstrip('?')}: {bare}"


def _substitute(word: str, topic: str) -> str:
    if word.lower() == "its":
        return f"{topic}'s"
    if word.lower() == "there":
        return f"under {topic}"
    return topic


def standalone_question(user_turns: Sequence[str], analyse: Analyse) -> str:
    """The last user turn as a question that stands alone, resolving each earlier turn in
    order (so a follow-up of a follow-up keeps the first topic)."""
    resolved: str | None = None
    for turn in user_turns:
        text = turn.strip()
        if not text:
            continue
        if resolved is not None and is_follow_up(text, analyse(text)):
            text = rewrite(text, resolved, analyse(text))
        resolved = text
    return resolved or ""


REWRITE_INSTRUCTION = (
    "Rewrite the user's last question so that it stands alone, using the earlier questions "
    "for what it refers to. Reply with the rewritten question only, on one line."
)


def model_standalone_question(
    user_turns: Sequence[str], analyse: Analyse, model: ChatModel, *, limit: int
) -> str:
    """`standalone_question`, written by the chat model when the last turn is a follow-up;
    the rules' question when the model fails or replies with something unusable."""
    ruled = standalone_question(user_turns, analyse)
    turns = [t.strip() for t in user_turns if t.strip()]
    if len(turns) < 2 or not is_follow_up(turns[-1], analyse(turns[-1])):
        return ruled
    earlier = "\n".join(f"- {t}" for t in turns[:-1])
    prompt = f"Earlier questions:\n{earlier}\nLast question: {turns[-1]}"
    try:
        reply = model.complete(
            [
                {"role": "system", "content": REWRITE_INSTRUCTION},
                {"role": "user", "content": prompt},
            ]
        )
    except GenerationError:
        return ruled
    line = reply.strip().strip('"').splitlines()[0].strip() if reply.strip() else ""
    return line if 0 < len(line) <= limit else ruled
