import json
from pathlib import Path
from typing import Any

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


def _edit_manifest(build: Path, change: Any) -> None:
    path = build / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_first_chunk(build: Path, field: str, value: object) -> None:
    path = build / "chunks.jsonl"
    first, *rest = path.read_text().splitlines(keepends=True)
    row = json.loads(first)
    row[field] = value
    path.write_text(json.dumps(row) + "\n" + "".join(rest))


ROW_DAMAGE: dict[str, tuple[Any, str]] = {
    # damage: (how, what the refusal must say); each gave a traceback or a 500 on main
    "title: 5": (
        lambda b: _edit_manifest(b, lambda d: d["documents"]["reg-demo"].update(title=5)),
        "manifest.json is corrupt (documents.reg-demo.title: Input should be a valid string)",
    ),
    "short_title: null": (
        lambda b: _edit_manifest(b, lambda d: d["documents"]["reg-demo"].update(short_title=None)),
        "documents.reg-demo.short_title: Input should be a valid string",
    ),
    "text: 5": (
        lambda b: _edit_first_chunk(b, "text", 5),
        "chunks.jsonl is corrupt (row 1: text: Input should be a valid string)",
    ),
    'page: "x"': (
        lambda b: _edit_first_chunk(b, "page", "x"),
        "chunks.jsonl is corrupt (row 1: page: Input should be a valid integer)",
    ),
    "heading_path: 7": (
        lambda b: _edit_first_chunk(b, "heading_path", 7),
        "chunks.jsonl is corrupt (row 1: heading_path",
    ),
    "a duplicated passage": (
        lambda b: (b / "chunks.jsonl").write_text(
            (b / "chunks.jsonl").read_text().splitlines(keepends=True)[0] * 2
            + "".join((b / "chunks.jsonl").read_text().splitlines(keepends=True)[2:])
        ),
        "appears twice",
    ),
    "200,000 nested brackets": (
        lambda b: (b / "manifest.json").write_text("[" * 200_000 + "]" * 200_000),
        "manifest.json is corrupt (",
    ),
}


@pytest.mark.parametrize("damage", ROW_DAMAGE)
def test_damaged_rows_are_refused_in_one_line_naming_the_file_and_row(
    built: Path, damage: str
) -> None:
    harm, phrase = ROW_DAMAGE[damage]
    harm((built / "current").resolve())
    with pytest.raises(IndexMismatchError) as caught:
        Index.load(built)
    message = str(caught.value)
    assert phrase in message and "\n" not in message and len(message) < 400, message
    assert message.endswith("run `atmp-qa ingest --rebuild`.")


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
