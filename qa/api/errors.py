"""Errors of the HTTP service. Like every `QAError`, their messages are shown as they are."""

from qa.errors import QAError


class NotFoundError(QAError):
    """A document, passage or job that does not exist."""


class NotReadyError(QAError):
    """The service has not loaded its index yet."""


class AdminDisabledError(QAError):
    """An admin endpoint was called while no admin token is configured."""


class UnauthorizedError(QAError):
    """An admin endpoint was called without the right bearer token."""


class ConflictError(QAError):
    """The request clashes with what already exists (a document with the same id)."""


class UploadError(QAError):
    """An upload that cannot be accepted: bad file name, empty or malformed file."""


class UploadTooLargeError(UploadError):
    """An upload over the configured size limit."""


class UnsupportedTypeError(UploadError):
    """An upload of a file type no reader handles."""


class StorageError(QAError):
    """The server could not write a file (a permission or I/O problem on its side)."""


class InsufficientStorageError(StorageError):
    """The server's disk (or quota) is full."""
