"""ATMP-QA: document-grounded answers with citations over EU/UK advanced-therapy law."""

from qa.answer import Answer, Citation
from qa.chunking import Chunk, chunk_document
from qa.config import Settings
from qa.errors import QAError
from qa.index import Index
from qa.ingest import IngestReport
from qa.pipeline import QA, ingest
from qa.readers import Document, read_document
from qa.retrieval.search import Filters, Passage

__version__ = "0.1.0"

__all__ = [
    "QA",
    "Answer",
    "Citation",
    "Filters",
    "Chunk",
    "Document",
    "Index",
    "IngestReport",
    "Passage",
    "QAError",
    "Settings",
    "__version__",
    "chunk_document",
    "ingest",
    "read_document",
]
