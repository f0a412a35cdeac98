"""The bundled MiniLM on ONNX Runtime: exported once from the package's weights, then no torch.

`ensure_onnx_model` exports the sentence-transformers folder's transformer with
`torch.onnx.export` (offline, ~10 s) into a cache folder named by a hash of the weights and the
variant, and, for the int8 variant, quantises it with ONNX Runtime's dynamic quantiser, per output
channel (per-tensor int8 reshuffles rankings). Exports are serialised by a lock file, written to a
temporary folder and renamed, so workers starting together export once and never read half a
model. After that, `OnnxEmbedder` needs only `onnxruntime`, `tokenizers` and numpy: a process
that answers queries never imports torch.

Tokenisation (truncation at the model's `max_seq_length`, padding) is the `tokenizers` library
reading the folder's own `tokenizer.json`; pooling is the folder's own (mean over the attention
mask, or the CLS token), followed by L2 normalisation, as `sentence-transformers` does.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qa.embed import ProgressFn, bundled_model_path, model_display_name
from qa.errors import QAError

Variant = Literal["int8", "fp32"]
VARIANTS: tuple[Variant, ...] = ("int8", "fp32")
# Bump when the export changes in a way that changes the vectors.
EXPORT_VERSION = 2
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Files of a sentence-transformers folder that decide the vectors (weights, tokenizer, pooling).
HASHED_FILES = (
    "config.json",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@lru_cache(maxsize=8)
def source_digest(source: Path, variant: Variant) -> str:
    """A short hash of what the exported model depends on: the weights, the tokenizer, the
    pooling, the variant and this exporter's version (read once per process: ~90 MB)."""
    digest = hashlib.sha256(f"{variant}:{EXPORT_VERSION}:{OPSET}".encode())
    for name in (*HASHED_FILES, *WEIGHT_FILES):
        path = source / name
        if path.exists():
            digest.update(name.encode())
            with open(path, "rb") as data:
                for block in iter(lambda: data.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def onnx_model_dir(source: Path, cache_dir: Path, variant: Variant) -> Path:
    """Where the export of `source` in `variant` lives inside `cache_dir`."""
    digest = source_digest(source, variant)
    return cache_dir / f"{model_display_name(source)}-onnx-{variant}-{digest}"


@contextlib.contextmanager
def _export_lock(cache_dir: Path) -> Iterator[None]:
    """One export at a time across processes (workers starting together, an ingest job)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".export.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_onnx_model(source: Path, cache_dir: Path, variant: Variant) -> Path:
    """The folder holding `model.onnx` for `source` in `variant`, exporting it first if needed."""
    if variant not in VARIANTS:
        raise QAError(f"Unknown ONNX variant {variant!r}; use one of {', '.join(VARIANTS)}.")
    target = onnx_model_dir(source, cache_dir, variant)
    if (target / "model.onnx").exists():
        return target
    try:
        with _export_lock(cache_dir):
            if (target / "model.onnx").exists():  # another process exported it meanwhile
                return target
            tmp = cache_dir / f".tmp-{uuid.uuid4().hex}"
            tmp.mkdir()
            try:
                _export(source, tmp, variant)
                os.rename(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except OSError as ex:
        raise QAError(
            f"Could not write the ONNX model to {cache_dir} ({ex.strerror or ex}); make the "
            "folder writable, set QA_MODEL_CACHE_DIR, or run `atmp-qa model export` where it is."
        ) from None
    return target


def _export(source: Path, out: Path, variant: Variant) -> None:
    """Export the transformer of `source` to `out/model.onnx` (needs torch and transformers)."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError:
        raise QAError(
            "Exporting the embedding model to ONNX needs torch and transformers (installed with "
            "atmp-qa); install them or copy an exported model folder into QA_MODEL_CACHE_DIR."
        ) from None

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    model = AutoModel.from_pretrained(str(source), local_files_only=True).eval()

    class Encoder(torch.nn.Module):  # transformers 5's forward takes keyword arguments
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    raw = out / "exported.onnx"
    # The tracer warns about Python-level branches of the model; they do not depend on shapes.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Encoder(),
            example,
            str(raw),
            input_names=list(INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes={**axes, "token_embeddings": {0: "batch", 1: "tokens"}},
            opset_version=OPSET,
            dynamo=False,
        )
    # ONNX Runtime's transformer optimiser fuses attention, LayerNorm and GELU into single
    # kernels: the same vectors (cosine 1.0 to the unfused graph), ~1.3x faster on this CPU.
    from onnxruntime.transformers.optimizer import optimize_model

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # both tools log advice we do not need
    try:
        fp32 = out / ("model.onnx" if variant == "fp32" else "fp32.onnx")
        optimize_model(str(raw), model_type="bert").save_model_to_file(str(fp32))
        raw.unlink()
        if variant == "int8":
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(
                str(fp32),
                str(out / "model.onnx"),
                weight_type=QuantType.QInt8,
                per_channel=True,
                # the fused operators are not in ONNX's own domain, so shape inference
                # cannot type their outputs: they are float
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
            fp32.unlink()
    finally:
        logging.getLogger().setLevel(quiet)
    for name in HASHED_FILES:
        if (source / name).exists():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, out / name)
    record = {"source": str(source), "variant": variant, "export_version": EXPORT_VERSION}
    (out / "export.json").write_text(json.dumps(record, indent=2) + "\n")


class OnnxEmbedder:
    """A sentence-transformers folder's model on ONNX Runtime, CPU only, loaded on first use.

    Safe to call from several threads at once: ONNX Runtime sessions and `tokenizers` encoders
    are both thread-safe, so concurrent batches run side by side (the GIL is released while
    the model runs).
    """

    def __init__(
        self,
        source: Path | None = None,
        *,
        cache_dir: Path,
        variant: Variant = "int8",
        batch_size: int = 32,
        threads: int = 0,
    ) -> None:
        self.source = source or bundled_model_path()
        if not (self.source / "config.json").exists():
            raise QAError(f"No transformer model at {self.source}; check QA_MODEL_PATH.")
        self.cache_dir = cache_dir
        self.variant = variant
        self.model_name = f"{model_display_name(self.source)}+onnx-{variant}"
        self.batch_size = batch_size
        self.threads = threads
        self.max_tokens, self.pooling, dim = _folder_settings(self.source)
        self._dim = dim
        self._session: Any = None
        self._tokenizer: Any = None
        self._plain: Any = None  # the same tokenizer without padding or truncation
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Vector dimension."""
        if self._dim is None:
            self._dim = int(self.embed(["dimension"]).shape[1])
        return self._dim

    @property
    def model_dir(self) -> Path:
        """The exported model's folder (exported on first use)."""
        return ensure_onnx_model(self.source, self.cache_dir, self.variant)

    def _load(self) -> tuple[Any, Any]:
        if self._session is not None:  # loaded: no lock on the query path
            return self._session, self._tokenizer
        with self._lock:
            if self._session is None:
                import onnxruntime
                from tokenizers import Tokenizer

                folder = self.model_dir
                options = onnxruntime.SessionOptions()
                # By default the model's threads spin for a while after each call, holding
                # the cores that retrieval and answer composition need next (on 2 cores:
                # /ask p50 ~21 → ~13 ms once they sleep instead; scripts/bench.py).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.add_session_config_entry("session.inter_op.allow_spinning", "0")
                if self.threads:
                    options.intra_op_num_threads = self.threads
                    options.inter_op_num_threads = 1
                self._session = onnxruntime.InferenceSession(
                    str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                self._plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
                self._plain.no_padding()
                self._plain.no_truncation()
                tokenizer.enable_truncation(self.max_tokens)
                tokenizer.enable_padding(pad_id=_pad_id(tokenizer), pad_token="[PAD]")
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def word_pieces(self, word: str) -> int:
        """How many pieces the model's tokenizer cuts a word into (rare words: several)."""
        self._load()
        return len(self._plain.encode(word, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        """Embed in batches (shortest texts together, to pad little), in the given order."""
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        session, tokenizer = self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            (tokens,) = session.run(None, feeds)
            vectors = _pool(tokens, mask, self.pooling)
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            if progress is not None:
                progress(len(batch))
        assert out is not None
        return out


def _pool(tokens: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """Token vectors to unit sentence vectors: mean over real tokens, or the CLS token."""
    if pooling == "cls":
        pooled = tokens[:, 0, :]
    else:
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
    return unit


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.token_to_id("[PAD]")
    return int(pad) if pad is not None else 0


def _folder_settings(source: Path) -> tuple[int, str, int | None]:
    """Max tokens, pooling ("mean" or "cls") and dimension from a sentence-transformers folder."""
    max_tokens, pooling, dim = 256, "mean", None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        config = json.loads((source / "sentence_bert_config.json").read_text())
        max_tokens = int(config["max_seq_length"])
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        config = json.loads((source / "1_Pooling" / "config.json").read_text())
        dim = int(config["word_embedding_dimension"])
        if config.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif not config.get("pooling_mode_mean_tokens", True):
            raise QAError(
                f"The model at {source} pools in a way the ONNX runtime here does not "
                "(only mean and CLS pooling); set QA_EMBEDDER_RUNTIME=torch."
            )
    return max_tokens, pooling, dim
