"""The MCP server: `ask`, `search`, `get_passage` and `list_documents` as tools, over stdio
(`atmp-qa mcp`) or streamable HTTP (`/mcp` in the HTTP app), returning the HTTP API's objects.

The tools take the HTTP parameter names (`question`, `k`, `doc_ids`, `jurisdiction`) and return
the same JSON as `/ask`, `/search`, `/passages/{chunk_id}` and `/documents`, built by the
serialisers in `qa.api.schemas`. Domain errors and invalid arguments come back as MCP tool
errors (`isError: true`) carrying one sentence.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field, ValidationError
from starlette.types import Receive, Scope, Send

from qa import __version__
from qa.api.library import passage_with_neighbours
from qa.api.schemas import (
    AskResponse,
    DocumentsResponse,
    Jurisdiction,
    PassageDetail,
    Question,
    SearchResponse,
    answer_out,
    document_out,
    passage_detail,
    passage_out,
)
from qa.config import MAX_ASK_K, MAX_SEARCH_K
from qa.errors import QAError
from qa.pipeline import QA
from qa.retrieval.search import Filters

INSTRUCTIONS = (
    "Answers questions on EU and UK law on advanced-therapy medicinal products (ATMPs) from the "
    "indexed regulatory texts. Each [n] marker in an answer points at citations[n-1], which "
    "names the document, the provision and the official URL; quote those, never the answer "
    "alone. An answer with abstained: true means the texts do not answer the question."
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")

Jurisdictions = Annotated[
    Jurisdiction | list[Jurisdiction] | None,
    Field(description='Only this jurisdiction: "EU" or "UK" (or a list of them).'),
]
DocIds = Annotated[
    list[str] | None,
    Field(description="Only these documents (ids from list_documents).", max_length=100),
]


class _Server(MCPServer[Any]):
    """`MCPServer` whose argument-validation errors read like the HTTP API's 422 sentences."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as ex:
            if not isinstance(ex.__cause__, ValidationError):
                raise
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in ex.__cause__.errors()
            )
            raise ToolError(f"Invalid arguments for {name}: {problems}.") from ex.__cause__


def build_server(get_qa: Callable[[], QA]) -> MCPServer[Any]:
    """The MCP server over the service `get_qa` returns (called for every tool call)."""
    server = _Server("atmp-qa", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")

    def service() -> QA:
        try:
            return get_qa()
        except QAError as ex:
            raise ToolError(str(ex)) from None

    def filters(
        jurisdiction: Jurisdiction | list[Jurisdiction] | None, doc_ids: list[str] | None
    ) -> Filters:
        """Unknown doc ids are refused by the service itself (UnknownDocumentError)."""
        wanted = [jurisdiction] if isinstance(jurisdiction, str) else list(jurisdiction or [])
        return Filters(jurisdictions=frozenset(wanted), doc_ids=frozenset(doc_ids or ()))

    @server.tool()
    def ask(
        question: Annotated[Question, Field(description="The question, 1-2,000 characters.")],
        k: Annotated[int, Field(ge=1, le=MAX_ASK_K, description="Passages to cite from.")] = 5,
        jurisdiction: Jurisdictions = None,
        doc_ids: DocIds = None,
    ) -> AskResponse:
        """Answer a question on EU/UK ATMP law from the indexed texts, with checked citations.

        `answer` quotes the law; each [n] in it points at citations[n-1] (document, provision,
        official URL, verbatim quote). With abstained: true the texts do not answer, the answer
        says why and `related` holds the closest passages.
        """
        qa = service()
        chosen = filters(jurisdiction, doc_ids)
        try:
            return answer_out(qa.ask(question, top_k=k, filters=chosen))
        except QAError as ex:
            raise ToolError(str(ex)) from None

    @server.tool()
    def search(
        question: Annotated[Question, Field(description="The query text, 1-2,000 characters.")],
        k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K, description="Number of passages.")] = 5,
        jurisdiction: Jurisdictions = None,
        doc_ids: DocIds = None,
    ) -> SearchResponse:
        """The passages that best match a question, best first (no answer composed)."""
        qa = service()
        chosen = filters(jurisdiction, doc_ids)
        try:
            passages = qa.search(question, k=k, filters=chosen)
        except QAError as ex:
            raise ToolError(str(ex)) from None
        return SearchResponse(results=[passage_out(p) for p in passages])

    @server.tool()
    def get_passage(
        chunk_id: Annotated[str, Field(description="A chunk_id from ask, search or citations.")],
        around: Annotated[int, Field(ge=0, le=5, description="Neighbours on each side.")] = 1,
    ) -> PassageDetail:
        """A cited passage in full, with its neighbouring provisions in the same document."""
        try:
            found = passage_with_neighbours(service().index, chunk_id, around=around)
            return passage_detail(*found)
        except QAError as ex:
            raise ToolError(str(ex).replace("/ask, /search", "ask, search")) from None

    @server.tool()
    def list_documents() -> DocumentsResponse:
        """Every indexed document: id, title, jurisdiction, version status and caveat, URL."""
        records = service().index.manifest.documents.values()
        return DocumentsResponse(documents=[document_out(r) for r in records])

    return server


def transport_security(host: str, cors_origins: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection (Host and Origin checks) when the server binds to loopback,
    as the SDK does by default; origins allowed by QA_CORS_ORIGINS are let through too."""
    if host not in LOOPBACK:  # reached by other machines under other names
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
        + list(cors_origins),
    )


class HttpEndpoint:
    """The server's streamable-HTTP transport as an ASGI app for one route of the HTTP app.

    Stateless (no session to keep or reap). Each run of the app's lifespan gets a fresh session
    manager, since the SDK's runs only once.
    """

    def __init__(self, server: MCPServer[Any], security: TransportSecuritySettings) -> None:
        self.server = server
        self.security = security

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start the session manager for the lifespan of the app."""
        self.server.streamable_http_app(stateless_http=True, transport_security=self.security)
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)


def run_stdio(qa: QA) -> None:
    """Serve the tools over stdin/stdout until the client closes them."""
    build_server(lambda: qa).run("stdio")
