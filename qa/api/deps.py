"""Dependencies shared by the routes, as `Annotated` aliases."""

import errno
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile

from qa.api.errors import (
    AdminDisabledError,
    InsufficientStorageError,
    NotReadyError,
    StorageError,
    UnauthorizedError,
    UploadError,
    UploadTooLargeError,
)
from qa.api.jobs import IngestJobs
from qa.config import Settings
from qa.pipeline import QA

# Room for the multipart boundaries and headers around the file itself.
MULTIPART_SLACK = 64 * 1024

bearer = HTTPBearer(auto_error=False, description="The value of QA_ADMIN_TOKEN.")


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_qa(request: Request) -> QA:
    """The loaded service (set in the lifespan)."""
    qa: QA | None = getattr(request.app.state, "qa", None)
    if qa is None:
        raise NotReadyError("The index is not loaded yet; retry when GET /ready answers 200.")
    return qa


def get_jobs(request: Request) -> IngestJobs:
    """The background ingest runner (set in the lifespan)."""
    jobs: IngestJobs | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise NotReadyError("The service is still starting; retry when GET /ready answers 200.")
    return jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
QADep = Annotated[QA, Depends(get_qa)]
JobsDep = Annotated[IngestJobs, Depends(get_jobs)]


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with `Authorization: Bearer <QA_ADMIN_TOKEN>`."""
    if not settings.admin_token:
        raise AdminDisabledError(
            "Admin endpoints are disabled; set QA_ADMIN_TOKEN to a secret token and restart "
            "the server to enable them."
        )
    given = credentials.credentials if credentials else ""
    # Constant-time comparison, so response timing does not reveal how much of a guess matched.
    if not secrets.compare_digest(given.encode(), settings.admin_token.encode()):
        raise UnauthorizedError(
            "Missing or wrong admin token; send `Authorization: Bearer <QA_ADMIN_TOKEN>`."
        )


async def read_upload(request: Request, settings: SettingsDep) -> AsyncIterator[UploadFile]:
    """The `file` field of a multipart upload; an oversized body is refused before parsing."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_SLACK:
        raise UploadTooLargeError(
            f"The upload is larger than the limit of {settings.max_upload_bytes:,} bytes; "
            "raise QA_MAX_UPLOAD_BYTES or split the document."
        )
    try:  # a file part over 1 MB is spooled to a temporary file: the disk can be full
        form = await request.form(max_files=1, max_fields=4)
    except OSError as ex:
        reason = ex.strerror or type(ex).__name__
        if ex.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise InsufficientStorageError(
                f"There is no room on the server's disk to receive the upload ({reason}); "
                "nothing was saved: free some space or ask the administrator, then upload it "
                "again."
            ) from None
        raise StorageError(
            f"The server could not receive the upload ({reason}); nothing was saved."
        ) from None
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise UploadError("Send the document as a multipart/form-data field named `file`.")
        yield file
    finally:
        await form.close()


AdminDep = Depends(require_admin)
UploadDep = Annotated[UploadFile, Depends(read_upload)]
