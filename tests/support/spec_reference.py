"""Plain float64 loop implementations of the original's formulas, written from the spec, to
check the vectorised JAX code against (not imported by the package)."""
import numpy as np

from pipnet_jax.bench.reference_torch import reference_targets as numpy_targets  # noqa: F401


def coarse_one_hot(landmarks, size):
    """The 4x4 / 2x2 one-hot maps of the STC tasks (spec 8.2), (N, size, size)."""
    out = np.zeros((len(landmarks), size, size))
    for i, (x, y) in enumerate(landmarks):
        cx = min(max(int(np.floor(x * size)), 0), size - 1)
        cy = min(max(int(np.floor(y * size)), 0), size - 1)
        out[i, cy, cx] = 1
    return out
