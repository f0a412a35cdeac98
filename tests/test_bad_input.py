"""Bad input, case by case: every request is refused with a 4xx and a sentence saying what is
wrong, quickly, and nothing is written outside the corpus (uploads) and the index.

Complements tests/test_api_queries.py and tests/test_api_admin.py (empty and 2,001-character
questions, `top_k` 0/21, unsafe upload names, oversized uploads, wrong tokens are there).
Also the PDF reader's limits: a huge page count or content that inflates enormously is
refused in about a second, directly and through an upload and an ingest.
"""

import hashlib
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.api.app import MAX_BODY_BYTES
from qa.embed import Embedder
from qa.errors import ReadError
from qa.readers.pdf import MAX_CONTENT_BYTES, MAX_PAGES, read_pdf

from .pdfs import write_pdf
from .test_api import mini_app, mini_settings

TOKEN = "bad-input-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPLOAD_LIMIT = 100_000
JSON = {"Content-Type": "application/json"}

# -- PDFs built byte by byte ----------------------------------------------------------------


def pdf_bytes(objects: list[bytes]) -> bytes:
    """A PDF with these objects (1 is the catalogue), a cross-reference table and a trailer."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def flate(data: bytes, extra: bytes = b"") -> bytes:
    packed = zlib.compress(data, 9)
    head = f"<< /Length {len(packed)} /Filter /FlateDecode ".encode() + extra + b" >>\nstream\n"
    return head + packed + b"\nendstream"


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
TEXT = b"BT /F1 12 Tf 72 720 Td (Article 1 Demo text) Tj ET\n"


def pages_pdf(kids: int, *, count: int | None = None, content: bytes = TEXT) -> bytes:
    """`kids` references to one page (tiny on disk), declaring `count` pages."""
    return pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids ["
            + b" ".join([b"3 0 R"] * kids)
            + f"] /Count {count if count is not None else kids} >>".encode(),
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> /XObject << /X0 6 0 R >> >> >>",
            flate(content),
            FONT,
            flate(b"0 0 m", b"/Type /XObject /Subtype /Form /BBox [0 0 1 1]"),
        ]
    )


def form_bomb_pdf(megabytes: int) -> bytes:
    """One page drawing a form XObject whose content inflates to `megabytes` MB."""
    return pdf_bytes(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> /XObject << /X0 6 0 R >> >> >>",
            flate(TEXT + b"/X0 Do\n"),
            FONT,
            flate(
                b" " * (megabytes * 1_000_000),
                b"/Type /XObject /Subtype /Form /BBox [0 0 1 1]",
            ),
        ]
    )


BIG = b" " * 60_000_000  # compresses to ~60 kB
BOMBS = {
    # name: (PDF bytes, what the refusal says)
    "declared-pages": (lambda: pages_pdf(3, count=MAX_PAGES + 1), "pages exceeds the limit"),
    "real-pages": (lambda: pages_pdf(MAX_PAGES + 1, count=1), "pages exceeds the limit"),
    "page-tree": (lambda: pages_pdf(200_000), "safety limits"),
    "one-stream": (lambda: pages_pdf(1, content=TEXT + BIG + BIG), "safety limits"),
    "shared-stream": (lambda: pages_pdf(20, content=TEXT + BIG), "decompression bomb"),
    "form-xobject": (lambda: form_bomb_pdf(70), "decompression bomb"),
}


@pytest.mark.parametrize("kind", BOMBS)
def test_bomb_like_pdfs_are_refused_quickly_with_a_reason(tmp_path: Path, kind: str) -> None:
    make, reason = BOMBS[kind]
    path = tmp_path / f"{kind}.pdf"
    path.write_bytes(make())
    assert path.stat().st_size < 2_000_000
    started = time.perf_counter()
    with pytest.raises(ReadError, match=reason) as refused:
        read_pdf(path)
    assert time.perf_counter() - started < 5
    assert str(refused.value).startswith(f"{kind}.pdf: ") and "\n" not in str(refused.value)


def test_a_modest_pdf_under_the_limits_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.pdf"
    path.write_bytes(pages_pdf(50, content=TEXT + b" " * 100_000))
    doc = read_pdf(path)
    assert len(doc.page_starts) == 50 and "Article 1 Demo text" in doc.text
    assert MAX_CONTENT_BYTES > 50 * 100_000


# -- the HTTP API -----------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` except uploads and the index (which may change)."""
    changing = (("service", "index"), ("service", "corpus", "uploads"))
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not any(p.relative_to(root).parts[: len(c)] == c for c in changing)
    }


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(scope="module")
def client(root: Path, embedder: Embedder) -> Iterator[TestClient]:
    settings = mini_settings(
        root / "service", embedder, admin_token=TOKEN, max_upload_bytes=UPLOAD_LIMIT
    )
    before = snapshot(root)
    with TestClient(mini_app(settings, embedder)) as test_client:
        yield test_client
    assert snapshot(root) == before, "a request wrote outside corpus/uploads and index/"
    assert not list(root.parent.glob("x.*")) and not list(root.parent.glob("evil*"))


def refused(response: Any, status: int, *phrases: str) -> str:
    """Check a refusal: the status, and a one-line sentence naming the problem."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    # /v1/* answers with OpenAI's error envelope, the other paths with {"detail": …}
    detail = body["error"]["message"] if response.url.path.startswith("/v1/") else body["detail"]
    assert isinstance(detail, str) and len(detail) >= 15 and "\n" not in detail
    assert detail.rstrip().endswith((".", ")")), detail
    for phrase in phrases:
        assert phrase in detail, (phrase, detail)
    return detail


# Questions and other JSON bodies.


@pytest.mark.parametrize(
    ("payload", "phrase"),
    [
        ({"question": "x" * 100_000}, "question: String should have at most 2000 characters"),
        ({"question": ["How long?"]}, "question: Input should be a valid string"),
        ({"question": None}, "question: Input should be a valid string"),
        ({"question": {"text": "How long?"}}, "question: Input should be a valid string"),
        ({"question": True}, "question: Input should be a valid string"),
        ({"question": "How long?", "top_k": -1}, "top_k: Input should be greater than"),
        ({"question": "How long?", "top_k": 2.5}, "top_k: Input should be a valid integer"),
        ({"question": "How long?", "top_k": 10**30}, "top_k: Input should be less than"),
        ({"question": "How long?", "top_k": None}, "top_k: Input should be a valid integer"),
        ({"question": "How long?", "filters": {"doc_ids": ["a"] * 101}}, "filters.doc_ids"),
        ({"question": "How long?", "filters": {"doc_ids": ["a" * 201]}}, "filters.doc_ids"),
        ({"question": "How long?", "filters": {"jurisdiction": "FR"}}, "filters.jurisdiction"),
        ({"question": "How long?", "filters": {"jurisdiction": 1}}, "filters.jurisdiction"),
        (["How long must records be kept?"], "body: Input should be a valid dictionary"),
        ("How long must records be kept?", "body: Input should be a valid dictionary"),
    ],
)
def test_ask_refuses_malformed_json_fields(client: TestClient, payload: Any, phrase: str) -> None:
    started = time.perf_counter()
    refused(client.post("/ask", json=payload), 422, "Invalid request: ", phrase)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("body", "headers", "status", "phrase"),
    [
        (b"", JSON, 422, "body: Field required"),
        (b"question=How+long", {"Content-Type": "application/x-www-form-urlencoded"}, 422, "body"),
        (b"How long must records be kept?", {"Content-Type": "text/plain"}, 422, "body"),
        (b'{"question": "How long', JSON, 422, "The request body is not valid JSON at character"),
        (b'{"question": "How long?", "top_k": NaN}', JSON, 422, "top_k"),
        (b'{"question": "\xff\xfe bad bytes"}', JSON, 400, "could not be parsed"),
        (b"[" * 100_000 + b"]" * 100_000, JSON, 400, "could not be parsed"),
        (b'{"question": "\\ud800 lone surrogate"}', JSON, 422, "question"),
    ],
)
def test_ask_refuses_bodies_that_are_not_a_json_object(
    client: TestClient, body: bytes, headers: dict[str, str], status: int, phrase: str
) -> None:
    refused(client.post("/ask", content=body, headers=headers), status, phrase)


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    big = b'{"question": "' + b"x" * MAX_BODY_BYTES + b'"}'
    refused(client.post("/ask", content=big, headers=JSON), 413, "larger than")
    chat = {"model": "atmp-qa", "messages": [{"role": "user", "content": "x" * MAX_BODY_BYTES}]}
    refused(client.post("/v1/chat/completions", json=chat), 413, "larger than")


def test_a_chunked_body_over_the_limit_is_cut_off(client: TestClient) -> None:
    def pieces() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"question": "'
        for _ in range(20):
            yield b"x" * 100_000
        yield b'"}'

    refused(client.post("/ask", content=pieces(), headers=JSON), 413, "larger than")


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ({"q": "x" * 5_000}, "q: String should have at most 2000 characters"),
        ({"q": "records", "k": 51}, "k: Input should be less than or equal to 50"),
        ({"q": "records", "k": -1}, "k: Input should be greater than or equal to 1"),
        ({"q": "records", "k": "1e3"}, "k: Input should be a valid integer"),
    ],
)
def test_search_refuses_out_of_range_parameters(
    client: TestClient, params: dict[str, Any], phrase: str
) -> None:
    refused(client.get("/search", params=params), 422, phrase)


# Unknown ids, routes and methods.


@pytest.mark.parametrize(
    ("path", "phrase"),
    [
        ("/documents/no-such-doc", "No indexed document has id 'no-such-doc'"),
        ("/documents/%00", "No indexed document has id"),
        ("/documents/..%2F..%2Fetc%2Fpasswd", "There is no GET"),
        ("/passages/reg-demo:article-2:ffffffffff", "No passage has id"),
        ("/passages/" + "x" * 5000, "No passage has id"),
        ("/no/such/endpoint", "There is no GET /no/such/endpoint endpoint"),
        ("/static/missing.js", "There is no GET /static/missing.js endpoint"),
    ],
)
def test_unknown_ids_and_routes_are_404_with_a_sentence(
    client: TestClient, path: str, phrase: str
) -> None:
    refused(client.get(path), 404, phrase)


def test_unknown_job_is_404(client: TestClient) -> None:
    refused(client.get("/ingest/..%2F..", headers=AUTH), 404, "There is no GET")
    refused(client.get("/ingest/" + "f" * 40, headers=AUTH), 404, "No ingest job has id")


def test_a_wrong_method_is_405_naming_the_allowed_ones(client: TestClient) -> None:
    detail = refused(client.put("/ask", json={"question": "x"}), 405, "PUT is not allowed")
    assert "POST" in detail
    refused(client.delete("/documents", headers=AUTH), 405, "DELETE is not allowed")


def test_delete_of_an_unknown_or_traversing_id_is_404_and_removes_nothing(
    client: TestClient, root: Path
) -> None:
    outside = root / "evil-target.md"
    outside.write_text("# Keep me\n\nNot part of the corpus.\n")
    for doc_id in ("evil-target", "%2E%2E", "..%2Fevil-target", "%00", "*", "reg-demo.md"):
        response = client.delete(f"/documents/{doc_id}", headers=AUTH)
        assert response.status_code in (404, 405), (doc_id, response.text)
        refused(response, response.status_code)
    assert outside.exists()
    outside.unlink()


# Admin token.


@pytest.mark.parametrize(
    "authorization",
    [
        b"",
        b"Bearer",
        b"Bearer ",
        b"Bearer " + TOKEN.upper().encode(),
        b"Bearer " + TOKEN.encode() + b"x",
        b"Bearer t\xf6ken",
        b"Bearer " + b"x" * 10_000,
        b"bearer" + TOKEN.encode(),
    ],
)
def test_a_missing_or_wrong_admin_token_is_401(client: TestClient, authorization: bytes) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post("/ingest", headers=headers)
    refused(response, 401, "Missing or wrong admin token")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_unauthenticated_upload_is_401_before_its_body_is_read(client: TestClient) -> None:
    response = client.post(
        "/documents",
        files={"file": ("guideline.pdf", b"%PDF-1.4\n" + b"0" * (UPLOAD_LIMIT * 3))},
    )
    refused(response, 401, "admin token")


# Uploads.


def upload(client: TestClient, name: str, data: bytes) -> Any:
    return client.post("/documents", files={"file": (name, data)}, headers=AUTH)


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200
MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200 + b"PE\x00\x00"


@pytest.mark.parametrize(
    ("name", "data", "status", "phrase"),
    [
        ("../../x.pdf", b"%PDF-1.4\n", 400, "is not allowed: send a plain name"),
        ("setup.pdf", MZ, 400, "is not a PDF file"),
        ("tool.pdf", ELF, 400, "is not a PDF file"),
        ("tool.exe", MZ, 415, "unsupported file type '.exe'"),
        ("README", b"plain text", 415, "unsupported file type '(none)'"),
        ("a" * 300 + ".txt", b"text", 400, "is not allowed"),
        ("Überblick.txt", b"text", 400, "is not allowed"),
        ("notes.txt", b"", 400, "is empty"),
        ("big.txt", b"a" * (UPLOAD_LIMIT + 1), 413, "QA_MAX_UPLOAD_BYTES"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(
    client: TestClient, root: Path, name: str, data: bytes, status: int, phrase: str
) -> None:
    uploads = root / "service" / "corpus" / "uploads"
    before = sorted(uploads.rglob("*")) if uploads.exists() else []
    refused(upload(client, name, data), status, phrase)
    assert (sorted(uploads.rglob("*")) if uploads.exists() else []) == before


def test_a_chunked_upload_over_the_limit_is_cut_off(client: TestClient) -> None:
    boundary = "fuzzboundary"

    def pieces() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="huge.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        for _ in range(30):
            yield b"a" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = client.post("/documents", content=pieces(), headers=headers)
    refused(response, 413, "QA_MAX_UPLOAD_BYTES")


@pytest.mark.parametrize(
    ("body", "content_type", "phrase"),
    [
        (b'{"file": "x"}', "application/json", "field named `file`"),
        (b"--xx\r\nbroken", "multipart/form-data; boundary=xx", "field named `file`"),
        (b"abc", "multipart/form-data", "boundary"),
    ],
)
def test_an_upload_that_is_not_multipart_is_400(
    client: TestClient, body: bytes, content_type: str, phrase: str
) -> None:
    headers = {**AUTH, "Content-Type": content_type}
    refused(client.post("/documents", content=body, headers=headers), 400, phrase)


def wait_for_job(client: TestClient, job_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/ingest/{job_id}", headers=AUTH).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"ingest job {job_id} did not finish")


def test_uploaded_bombs_and_disguised_executables_are_skipped_by_ingest(
    client: TestClient, tmp_path: Path
) -> None:
    """They pass the upload's header check; the ingest names each and keeps the index."""
    before = client.get("/ready").json()
    files = {
        "bomb.pdf": pages_pdf(20, content=TEXT + BIG),
        "pages.pdf": pages_pdf(MAX_PAGES + 1),
        "polyglot.pdf": b"%PDF-1.4\n" + ELF,
    }
    good = write_pdf(tmp_path / "good.pdf", ["Article 1\nUploads are indexed with their pages."])
    files["good-upload.pdf"] = good.read_bytes()
    for name, data in files.items():
        assert len(data) < UPLOAD_LIMIT
        assert upload(client, name, data).status_code == 201, name
    started = time.perf_counter()
    job = wait_for_job(client, client.post("/ingest", headers=AUTH).json()["job_id"])
    assert time.perf_counter() - started < 60
    assert job["state"] == "succeeded" and job["added"] == ["good-upload"], job
    failed = {line.split(":")[0]: line for line in job["failed"]}
    assert set(failed) == {"bomb.pdf", "pages.pdf", "polyglot.pdf"}
    assert "decompression bomb" in failed["bomb.pdf"]
    assert "pages exceeds the limit" in failed["pages.pdf"]
    assert "corrupt or unreadable" in failed["polyglot.pdf"]
    assert client.get("/ready").json()["documents"] == before["documents"] + 1
    for name in files:
        assert client.delete(f"/documents/{Path(name).stem}", headers=AUTH).status_code == 200
    job = wait_for_job(client, client.post("/ingest", headers=AUTH).json()["job_id"])
    assert job["state"] == "succeeded" and job["removed"] == ["good-upload"], job
