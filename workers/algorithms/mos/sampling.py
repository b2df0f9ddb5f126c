"""Temperature sampling over datasets: q_tau(i) proportional to (M_i / sum M)^(1/tau).

tau = 1 samples in proportion to size, tau = infinity uniformly, and values between flatten the mixture;
MoS compares against tau = 1, 10 and infinity and starts its scorer from uniform.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def temperature_probabilities(sizes: Sequence[int], tau: float) -> np.ndarray:
    """Sampling probability of each dataset; an empty dataset always gets 0."""
    sizes_array = np.asarray(sizes, dtype=np.float64)
    if sizes_array.ndim != 1 or sizes_array.size == 0 or np.any(sizes_array < 0):
        raise ValueError("sizes must be a non-empty list of non-negative counts")
    if not sizes_array.sum() > 0:
        raise ValueError("at least one dataset must be non-empty")
    if not tau > 0:
        raise ValueError("tau must be > 0")
    present = sizes_array > 0
    if math.isinf(tau):
        weights = present.astype(np.float64)
    else:
        weights = np.where(present, (sizes_array / sizes_array.sum()) ** (1.0 / tau), 0.0)
    return weights / weights.sum()
