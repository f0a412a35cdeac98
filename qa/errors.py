"""Domain errors. Messages are shown to users as they are: name the thing and the fix."""


class QAError(Exception):
    """Base class for errors the user should see as one line."""


class ReadError(QAError):
    """A document could not be read (corrupt, encrypted, empty, unsupported)."""


class IngestError(QAError):
    """Ingest could not run (locked, nothing to index, cannot write the index)."""


class IndexNotFoundError(QAError):
    """No index has been built yet at the configured path."""


class IndexMismatchError(QAError):
    """The index on disk does not match the settings or is damaged."""


class SourceError(QAError):
    """The corpus sources manifest is missing or malformed."""


class UnknownDocumentError(QAError):
    """A filter names document ids the index does not hold."""
