"""The dense search structure: flat or HNSW, chosen by QA_DENSE_INDEX (real FAISS)."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.chunking import Chunk
from qa.config import Settings
from qa.index import HNSW_THRESHOLD, DenseKind, DenseOptions, Index, Manifest
from qa.pipeline import dense_options

DIM = 64


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    """Random unit vectors: in 64 dimensions any two are far apart (cosine about ±0.1)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_index(vectors: np.ndarray, dense: DenseOptions) -> Index:
    chunks = [
        Chunk(
            chunk_id=f"doc:{i}",
            doc_id="doc",
            title="Demo",
            short_title="Demo",
            jurisdiction=None,
            url=None,
            section=f"Article {i}",
            provision=f"Article {i}",
            heading="",
            heading_path=(),
            text=f"passage number {i}",
            start=0,
            end=10,
            page=None,
            page_end=None,
            ordinal=i,
        )
        for i in range(len(vectors))
    ]
    manifest = Manifest(
        model="random",
        dim=DIM,
        chunker_version="3",
        chunk_max_chars=1000,
        chunk_min_chars=150,
        built_at="2026-01-01T00:00:00+00:00",
        build_seconds=0.0,
        chunk_count=len(chunks),
    )
    return Index(manifest, chunks, vectors, dense=dense)


def near(vectors: np.ndarray, i: int, seed: int = 1) -> np.ndarray:
    """A query close to vector i (cosine about 0.95)."""
    noise = np.random.default_rng(seed + i).normal(scale=0.04, size=DIM).astype(np.float32)
    query = vectors[i] + noise
    return (query / np.linalg.norm(query)).astype(np.float32)


VECTORS = unit_vectors(2000)


def test_hnsw_and_flat_agree_on_the_top_results() -> None:
    flat = make_index(VECTORS, DenseOptions(kind="flat"))
    hnsw = make_index(VECTORS, DenseOptions(kind="hnsw"))
    assert isinstance(flat.faiss, faiss.IndexFlatIP)
    assert isinstance(hnsw.faiss, faiss.IndexHNSWFlat)
    for i in range(0, 2000, 97):
        query = near(VECTORS, i)
        exact = [c.chunk_id for c, _ in flat.search(query, 10)]
        approximate = hnsw.search(query, 10)
        assert exact[0] == approximate[0][0].chunk_id == f"doc:{i}"
        assert len(set(exact) & {c.chunk_id for c, _ in approximate}) >= 9
        best, score = approximate[0]
        assert score == pytest.approx(float(VECTORS[i] @ query), abs=1e-5)


@pytest.mark.parametrize(
    ("kind", "passages", "expected"),
    [
        ("auto", 99, "flat"),
        ("auto", 100, "hnsw"),
        ("auto", 150, "hnsw"),
        ("flat", 150, "flat"),
        ("hnsw", 99, "hnsw"),
    ],
)
def test_auto_picks_flat_below_the_threshold_and_hnsw_from_it(
    kind: DenseKind, passages: int, expected: str
) -> None:
    index = make_index(VECTORS[:passages], DenseOptions(kind=kind, threshold=100))
    assert index.dense_kind == expected
    assert isinstance(index.faiss, faiss.IndexHNSWFlat if expected == "hnsw" else faiss.IndexFlatIP)


def test_auto_threshold_is_a_million_passages() -> None:
    assert HNSW_THRESHOLD == 1_000_000
    assert DenseOptions().resolve(999_999) == "flat"
    assert DenseOptions().resolve(1_000_000) == "hnsw"


def test_flat_dense_scores_are_every_exact_cosine() -> None:
    index = make_index(VECTORS, DenseOptions(kind="flat"))
    query = near(VECTORS, 5)
    scores = index.dense_scores(query)
    assert scores.shape == (2000,)
    assert np.allclose(scores, VECTORS @ query, atol=1e-5)


def test_hnsw_dense_scores_are_exact_for_candidates_and_the_lowest_for_the_rest() -> None:
    index = make_index(VECTORS, DenseOptions(kind="hnsw", candidates=50))
    query = near(VECTORS, 7)
    scores = index.dense_scores(query)
    exact = VECTORS @ query
    assert scores.shape == (len(index.chunks),)
    candidates = {index.by_id[c.chunk_id] for c, _ in index.search(query, 50)}
    assert len(candidates) == 50 and 7 in candidates
    assert int(np.argmax(scores)) == 7
    chosen = np.array(sorted(candidates))
    assert np.allclose(scores[chosen], exact[chosen], atol=1e-5)
    rest = np.setdiff1d(np.arange(2000), chosen)
    floor = exact[chosen].min()
    assert np.allclose(scores[rest], floor, atol=1e-5)
    assert floor > 0  # the 50 nearest of 2,000 random vectors are all positive


def test_hnsw_with_more_candidates_than_passages_scores_every_passage_exactly() -> None:
    index = make_index(VECTORS[:300], DenseOptions(kind="hnsw", candidates=1000))
    query = near(VECTORS, 3)
    assert np.allclose(index.dense_scores(query), VECTORS[:300] @ query, atol=1e-5)


@pytest.mark.parametrize("saved_with", ["flat", "hnsw"])
@pytest.mark.parametrize("loaded_with", ["flat", "hnsw", "auto"])
def test_saved_index_loads_and_searches_with_each_setting(
    tmp_path: Path, saved_with: DenseKind, loaded_with: DenseKind
) -> None:
    vectors = VECTORS[:500]
    make_index(vectors, DenseOptions(kind=saved_with)).save(tmp_path / "index")
    stored = faiss.read_index(str(tmp_path / "index" / "current" / "vectors.faiss"))
    assert isinstance(stored, faiss.IndexFlatIP) and stored.ntotal == 500  # as before

    loaded = Index.load(tmp_path / "index", dense=DenseOptions(kind=loaded_with))
    assert loaded.dense_kind == ("flat" if loaded_with == "auto" else loaded_with)
    assert np.array_equal(loaded.vectors, vectors)
    query = near(vectors, 42)
    assert loaded.search(query, 1)[0][0].chunk_id == "doc:42"
    assert loaded.dense_scores(query).shape == (500,)
    assert int(np.argmax(loaded.dense_scores(query))) == 42


def test_settings_choose_the_structure_the_service_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).dense_index == "auto"  # type: ignore[call-arg]
    monkeypatch.setenv("QA_DENSE_INDEX", "hnsw")
    monkeypatch.setenv("QA_HNSW_M", "16")
    monkeypatch.setenv("QA_HNSW_EF_SEARCH", "64")
    monkeypatch.setenv("QA_DENSE_CANDIDATES", "200")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert dense_options(settings) == DenseOptions(
        kind="hnsw", hnsw_m=16, hnsw_ef_search=64, candidates=200
    )
    index = make_index(VECTORS[:300], dense_options(settings))
    assert index.dense_kind == "hnsw" and index.faiss.hnsw.nb_neighbors(1) == 16


def test_unknown_dense_index_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_DENSE_INDEX", "ivf")
    with pytest.raises(ValueError, match="dense_index"):
        Settings(_env_file=None)  # type: ignore[call-arg]
