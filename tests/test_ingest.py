import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.errors import IngestError
from qa.index import Index
from qa.ingest import ingest_lock
from qa.pipeline import ingest

from .conftest import RecordingEmbedder, make_settings
from .pdfs import write_pdf


def _doc_ids(index: Index) -> set[str]:
    return {c.doc_id for c in index.chunks}


def test_first_ingest_indexes_every_document(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    report = ingest(settings, embedder=recording)
    assert sorted(report.added) == ["guideline-demo", "reg-demo", "si-demo"]
    assert report.embedded == report.chunks == len(recording.embedded) > 0
    index = Index.load(settings.index_dir)
    assert _doc_ids(index) == {"guideline-demo", "reg-demo", "si-demo"}
    assert (
        index.manifest.documents["reg-demo"].sha256 and index.manifest.chunk_count == report.chunks
    )


def test_touching_one_document_re_embeds_only_it(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    ingest(settings, embedder=recording)
    recording.embedded.clear()

    unchanged = ingest(settings, embedder=recording)
    assert unchanged.embedded == 0 and len(unchanged.unchanged) == 3 and not recording.embedded

    path = mini_corpus / "si-demo.md"
    path.write_text(
        path.read_text() + "\n###### 3\n\nThe licence holder must keep a register of patients.\n"
    )
    report = ingest(settings, embedder=recording)
    assert report.changed == ["si-demo"] and sorted(report.unchanged) == [
        "guideline-demo",
        "reg-demo",
    ]
    assert recording.embedded and all("Demo Medicines Regulations" in t for t in recording.embedded)
    assert report.embedded == len(recording.embedded) < report.chunks
    index = Index.load(settings.index_dir)
    assert any("register of patients" in c.text for c in index.chunks)


def test_deleting_a_document_removes_its_chunks(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    ingest(settings, embedder=recording)
    (mini_corpus / "guideline-demo.txt").unlink()
    report = ingest(settings, embedder=recording)
    assert report.removed == ["guideline-demo"]
    index = Index.load(settings.index_dir)
    assert _doc_ids(index) == {"reg-demo", "si-demo"}
    assert "guideline-demo" not in index.manifest.documents


def test_bad_files_are_reported_and_the_rest_indexed(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    (mini_corpus / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog garbage")
    (mini_corpus / "empty.txt").write_bytes(b"")
    (mini_corpus / "notes.docx").write_bytes(b"PK\x03\x04")
    write_pdf(mini_corpus / "good.pdf", ["Article 1\nPDF documents are indexed with their pages."])
    settings = make_settings(tmp_path)
    report = ingest(settings, embedder=recording)
    failed = {Path(f).name: reason for f, reason in report.failed}
    assert set(failed) == {"corrupt.pdf", "empty.txt", "notes.docx"}
    assert "corrupt" in failed["corrupt.pdf"] and "empty" in failed["empty.txt"]
    assert sorted(report.added) == ["good", "guideline-demo", "reg-demo", "si-demo"]
    good = [c for c in Index.load(settings.index_dir).chunks if c.doc_id == "good"]
    assert good and good[0].page == 1


def test_extra_paths_add_documents_without_dropping_the_corpus(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    ingest(settings, embedder=recording)
    extra = tmp_path / "extra.txt"
    extra.write_text("Extra note\n\nHospital exemption products need a licence.\n")
    report = ingest(settings, [extra], embedder=recording)
    assert report.added == ["extra"] and len(report.unchanged) == 3
    assert _doc_ids(Index.load(settings.index_dir)) == {
        "extra",
        "guideline-demo",
        "reg-demo",
        "si-demo",
    }


def test_nothing_to_index_keeps_the_previous_index(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    ingest(settings, embedder=recording)
    for path in mini_corpus.iterdir():
        path.unlink()
    (mini_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    with pytest.raises(
        IngestError, match=r"Nothing to index .*broken.pdf.*previous index is unchanged"
    ):
        ingest(settings, embedder=recording)
    assert len(_doc_ids(Index.load(settings.index_dir))) == 3


def test_rebuild_re_embeds_everything(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    first = ingest(settings, embedder=recording)
    report = ingest(settings, rebuild=True, embedder=recording)
    assert report.embedded == first.chunks and sorted(report.changed) == [
        "guideline-demo",
        "reg-demo",
        "si-demo",
    ]


def test_a_second_ingest_is_refused_while_one_runs(
    tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder
) -> None:
    settings = make_settings(tmp_path)
    with (
        ingest_lock(settings.index_dir),
        pytest.raises(IngestError, match="Another ingest is running"),
    ):
        ingest(settings, embedder=recording)


def test_kill_9_during_ingest_leaves_the_previous_index_loadable(
    tmp_path: Path, shared_corpus: Path, recording: RecordingEmbedder
) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "eu").mkdir(parents=True)
    small = shared_corpus / "eu" / "32009R0668.md"
    (corpus / "eu" / small.name).write_bytes(small.read_bytes())
    settings = make_settings(tmp_path)
    ingest(settings, embedder=recording)
    before = Index.load(settings.index_dir)

    # A big document makes the next ingest embed for a while; kill it mid-way.
    big = shared_corpus / "eu" / "32024R1938.md"
    (corpus / "eu" / big.name).write_bytes(big.read_bytes())
    env = {**os.environ, "QA_CORPUS_DIR": str(corpus), "QA_INDEX_DIR": str(settings.index_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "ingest"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = b""
    while b"Embedding" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.read1(4096)
    assert b"Embedding" in seen, seen.decode(errors="replace")
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    after = Index.load(settings.index_dir)
    assert after.manifest.built_at == before.manifest.built_at
    assert [c.chunk_id for c in after.chunks] == [c.chunk_id for c in before.chunks]
    # The lock died with the process; the next ingest completes and cleans up.
    report = ingest(settings, embedder=recording)
    assert report.added == ["32024R1938"]
    assert {c.doc_id for c in Index.load(settings.index_dir).chunks} == {"32009R0668", "32024R1938"}
    assert len(list((settings.index_dir / "builds").iterdir())) == 1
