"""The CLI's client for a running server (`--server URL` or QA_SERVER): the same answers
without loading the model and the index, in well under a second."""

from typing import Any

import httpx

from qa.errors import QAError

TIMEOUT_S = 60.0


class ServerError(QAError):
    """The server could not be reached or refused the request."""


def _call(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = httpx.request(method, url, timeout=TIMEOUT_S, **kwargs)
    except httpx.HTTPError as ex:
        raise ServerError(
            f"Cannot reach the server at {url} ({ex}); start it with `atmp-qa serve` "
            "or drop --server / QA_SERVER to answer locally."
        ) from None
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        raise ServerError(
            f"{url} answered HTTP {response.status_code} without JSON; is it an ATMP-QA server?"
        ) from None
    if response.status_code >= 400:
        detail = data.get("detail") or data.get("error", {}).get("message") or data
        raise ServerError(f"The server refused the request (HTTP {response.status_code}): {detail}")
    return data


def ask(
    server: str, question: str, *, k: int | None, jurisdictions: list[str], doc_ids: list[str]
) -> dict[str, Any]:
    """POST /ask: the answer as the HTTP API returns it."""
    body: dict[str, Any] = {"question": question}
    if k is not None:
        body["k"] = k
    if jurisdictions or doc_ids:
        body["filters"] = {"jurisdiction": jurisdictions, "doc_ids": doc_ids}
    return _call("POST", f"{server.rstrip('/')}/ask", json=body)


def search(
    server: str, query: str, *, k: int | None, jurisdictions: list[str], doc_ids: list[str]
) -> dict[str, Any]:
    """GET /search: the passages as the HTTP API returns them."""
    params: list[tuple[str, str | int]] = [("q", query)]
    if k is not None:
        params.append(("k", k))
    params += [("jurisdiction", j) for j in jurisdictions] + [("doc_ids", d) for d in doc_ids]
    return _call("GET", f"{server.rstrip('/')}/search", params=params)
