import json
from pathlib import Path

import pytest

from qa.errors import IndexMismatchError, IndexNotFoundError
from qa.index import Index, Manifest
from qa.pipeline import ingest

from .conftest import RecordingEmbedder, make_settings


@pytest.fixture
def built(tmp_path: Path, mini_corpus: Path, recording: RecordingEmbedder) -> Path:
    settings = make_settings(tmp_path)
    ingest(settings, embedder=recording)
    return settings.index_dir


def test_round_trip_and_search(built: Path, recording: RecordingEmbedder) -> None:
    index = Index.load(built, model=recording.model_name, dim=recording.dim)
    vector = recording.embed(["How long must the holder keep traceability records?"])[0]
    (best, score), *_ = index.search(vector, 3)
    assert best.section == "Article 2" and best.doc_id == "reg-demo" and 0 < score <= 1
    manifest = json.loads((built / "current" / "manifest.json").read_text())
    assert manifest["model"] == recording.model_name and manifest["dim"] == 384
    assert manifest["document_count"] == 3 and manifest["chunker_version"]
    assert set(manifest["documents"]["reg-demo"]) >= {"sha256", "chunks", "title", "url"}


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="atmp-qa ingest"):
        Index.load(tmp_path / "index")


def test_model_mismatch_is_refused_with_the_fix(built: Path) -> None:
    with pytest.raises(
        IndexMismatchError,
        match=r"built with model .* but settings ask for 'other-model'.*--rebuild",
    ):
        Index.load(built, model="other-model")
    with pytest.raises(IndexMismatchError, match="768"):
        Index.load(built, dim=768)


@pytest.mark.parametrize("name", ["vectors.faiss", "chunks.jsonl", "manifest.json"])
def test_corrupt_files_are_named(built: Path, name: str) -> None:
    path = built / "current" / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexMismatchError) as caught:
        Index.load(built)
    assert name in str(caught.value) and "atmp-qa ingest --rebuild" in str(caught.value)


def test_leftovers_of_an_interrupted_build_are_ignored_then_removed(
    built: Path, mini_corpus: Path, recording: RecordingEmbedder, tmp_path: Path
) -> None:
    leftover = built / "builds" / ".tmp-deadbeef"
    leftover.mkdir()
    (leftover / "vectors.faiss").write_bytes(b"half")
    assert len(Index.load(built).chunks) > 0
    ingest(make_settings(tmp_path), rebuild=True, embedder=recording)
    assert not leftover.exists()
    assert [p.name for p in (built / "builds").iterdir()] == [(built / "current").resolve().name]


def test_a_manifest_without_version_status_still_loads() -> None:
    record = {
        "doc_id": "old",
        "title": "Old",
        "short_title": "Old",
        "source_path": "/x/old.md",
        "sha256": "0" * 64,
        "chunks": 1,
        "aliases": ["Old Act"],
    }
    manifest = Manifest.from_json(
        {
            "model": "m",
            "dim": 3,
            "chunker_version": "1",
            "chunk_max_chars": 10,
            "chunk_min_chars": 1,
            "built_at": "2020-01-01T00:00:00Z",
            "build_seconds": 0.1,
            "documents": {"old": record},
        }
    )
    old = manifest.documents["old"]
    assert (old.status, old.caveat, old.amends, old.aliases) == ("current", "", (), ("Old Act",))
    again = Manifest.from_json(json.loads(json.dumps(manifest.to_json())))
    assert again.documents["old"] == old
