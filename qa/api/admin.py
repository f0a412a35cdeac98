"""Admin endpoints (bearer token): upload and delete documents, re-index in the background."""

from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qa.api.deps import AdminDep, JobsDep, QADep, SettingsDep, UploadDep
from qa.api.jobs import Job
from qa.api.library import UPLOADS, delete_document, save_upload
from qa.pipeline import load_source_map


class UploadOut(BaseModel):
    """A document file saved into the corpus (not yet indexed)."""

    doc_id: str
    file_name: str
    bytes: int
    replaced: bool
    detail: str


class DeleteOut(BaseModel):
    """A document file removed from the corpus (still indexed until the next ingest)."""

    doc_id: str
    file_name: str
    detail: str


class JobOut(BaseModel):
    """A background ingest and how far it got."""

    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float = Field(ge=0, le=1)
    message: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    added: list[str]
    changed: list[str]
    removed: list[str]
    failed: list[str]


def _named(name: str, why: str) -> str:
    """ "file.pdf: reason", whether or not the reason names the file already."""
    return why if why.startswith(f"{name}: ") else f"{name}: {why}"


def job_out(job: Job) -> JobOut:
    """The public form of an ingest job."""
    report = job.report
    return JobOut(
        job_id=job.job_id,
        state=job.state,
        progress=job.progress,
        message=job.message,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        added=report.added,
        changed=report.changed,
        removed=report.removed,
        failed=[_named(Path(file).name, why) for file, why in report.failed],
    )


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}

router = APIRouter(
    tags=["admin"],
    dependencies=[AdminDep],
    responses={
        401: {"description": "Missing or wrong token"},
        403: {"description": "Admin endpoints disabled (QA_ADMIN_TOKEN unset)"},
    },
)


@router.post("/documents", status_code=201, openapi_extra=UPLOAD_BODY)
def upload_document(qa: QADep, settings: SettingsDep, file: UploadDep) -> UploadOut:
    """Save a PDF, HTML, Markdown or text file into the corpus; POST /ingest indexes it."""
    path, size, replaced = save_upload(
        settings.corpus_dir,
        file.filename,
        file.file,
        index=qa.index,
        max_bytes=settings.max_upload_bytes,
        # ids of official texts; a broken sources.toml: 503 with its problem
        reserved={i: s.short_title for i, s in load_source_map(settings).items()},
    )
    return UploadOut(
        doc_id=path.stem,
        file_name=path.name,
        bytes=size,
        replaced=replaced,
        detail=f"Saved {UPLOADS}/{path.name}; run POST /ingest to index it.",
    )


@router.delete("/documents/{doc_id}")
def remove_document(qa: QADep, settings: SettingsDep, doc_id: str) -> DeleteOut:
    """Delete a document's file from the corpus; POST /ingest drops it from the index."""
    path = delete_document(settings.corpus_dir, doc_id, index=qa.index)
    return DeleteOut(
        doc_id=doc_id,
        file_name=path.name,
        detail=f"Deleted {path.name}; run POST /ingest to drop it from the index.",
    )


@router.post("/ingest", status_code=202)
def start_ingest(jobs: JobsDep) -> JobOut:
    """Re-scan the corpus in the background; poll GET /ingest/{job_id}."""
    return job_out(jobs.submit())


@router.get("/ingest/{job_id}", responses={404: {"description": "Unknown job"}})
def ingest_status(jobs: JobsDep, job_id: str) -> JobOut:
    """How far an ingest job got: queued, running (with progress), succeeded or failed."""
    return job_out(jobs.get(job_id))
