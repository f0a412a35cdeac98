"""Deep links to a cited provision on the official site, where the site addresses provisions.

legislation.gov.uk gives every provision its own page: `…/uksi/2012/1916/regulation/171`,
`…/schedule/6/paragraph/10`, `…/schedule/7`. EUR-Lex marks articles and annexes with
`id="art_15"` / `id="anx_I"` only in the HTML of recent acts; older acts carry generated ids
(`#d1e1888-1-1` on the GDPR page) that cannot be predicted, so for them, and for anything else
(recitals, explanatory notes, guidance PDFs), the link is the act's own URL.
"""

import re

LEGISLATION_GOV_UK = re.compile(r"^https?://(?:www\.)?legislation\.gov\.uk/[a-z]+/\d{4}/\d+$")
ELI_ACT = re.compile(
    r"^https?://(?:data\.europa\.eu|eur-lex\.europa\.eu)/eli/(?P<act>[a-z_]+/\d{4}/\d+)/oj$"
)
# The first year whose Official Journal HTML on EUR-Lex is known to carry `art_N`/`anx_N`
# ids (Directive (EU) 2022/2555 `#art_21`, Regulation (EU) 2024/1689 `#art_6`, `#anx_III`).
EURLEX_ANCHORS_FROM = 2022

UK_SECTION = (
    (re.compile(r"^Schedule (\w+), paragraph (\w+)"), "schedule/{0}/paragraph/{1}"),
    (re.compile(r"^Schedule (\w+)"), "schedule/{0}"),
    (re.compile(r"^regulation (\w+)"), "regulation/{0}"),
    (re.compile(r"^article (\w+)"), "article/{0}"),
    (re.compile(r"^section (\w+)"), "section/{0}"),
    (re.compile(r"^Part (\w+)$"), "part/{0}"),
)
EU_SECTION = (
    (re.compile(r"^Article (\d+[a-z]*)\b"), "art_{0}"),
    (re.compile(r"^Annex ([IVXLC]+)\b"), "anx_{0}"),
)
# "regulation 171(2)" → "171": the number before any parenthesised paragraph.
PROVISION_NUMBER = re.compile(r"^\d+[A-Z]*$")


def provision_url(url: str | None, section: str) -> str | None:
    """The official page of `section` ("regulation 171(2)", "Article 15(4)", "Annex I") of the
    act at `url`, or `url` itself when the site has no address for that provision."""
    if not url:
        return url
    act = url.rstrip("/")
    if LEGISLATION_GOV_UK.match(act):
        for pattern, path in UK_SECTION:
            if (m := pattern.match(section)) and all(map(PROVISION_NUMBER.match, m.groups())):
                return f"{act}/{path.format(*m.groups())}"
        return url
    eli = ELI_ACT.match(act)
    if eli and int(eli["act"].split("/")[1]) >= EURLEX_ANCHORS_FROM:
        for pattern, anchor in EU_SECTION:
            if m := pattern.match(section):
                return f"https://eur-lex.europa.eu/eli/{eli['act']}/oj#{anchor.format(*m.groups())}"
    return url
