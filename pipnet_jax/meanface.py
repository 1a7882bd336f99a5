"""Mean face, neighbour table and reverse index (spec section 6).

The mean face is stored as the original's one-line text file: 2N floats "x0 y0 x1 y1 ...",
space-separated, no newline. The neighbour table and the reverse index are derived from it
and fix which channels vote for which landmark, so they must match the original exactly.
"""
from importlib import resources

import numpy as np

from pipnet_jax.files import atomic_write_text


def compute_meanface(landmarks) -> np.ndarray:
    """Per-coordinate mean over M training samples: (M, N, 2) -> (N, 2) float64."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[2] != 2 or landmarks.shape[0] == 0:
        raise ValueError(f"expected landmarks of shape (M, N, 2) with M >= 1, got {landmarks.shape}")
    m, n, _ = landmarks.shape
    # The original averages a (M, 2N) table along axis 0; same memory layout, same rounding.
    return landmarks.reshape(m, 2 * n).mean(axis=0).reshape(n, 2)


def read_meanface(path) -> np.ndarray:
    """Reads a meanface.txt file -> (N, 2) float64."""
    with open(path) as f:
        tokens = f.read().split()
    values = []
    for k, token in enumerate(tokens):
        try:
            values.append(float(token))
        except ValueError:
            raise ValueError(f"{path}: value {k} is {token!r}, expected a number") from None
    if not values or len(values) % 2:
        raise ValueError(f"{path}: expected an even, non-zero count of numbers "
                         f"(x0 y0 x1 y1 ...), found {len(values)}")
    return np.asarray(values, dtype=np.float64).reshape(-1, 2)


def write_meanface(path, meanface) -> None:
    """Writes (N, 2) as one line of repr floats, no newline; atomic via temp file + rename."""
    meanface = np.asarray(meanface, dtype=np.float64)
    if meanface.ndim != 2 or meanface.shape[1] != 2:
        raise ValueError(f"expected a mean face of shape (N, 2), got {meanface.shape}")
    # repr of a Python float is the shortest string that reads back to the same value.
    text = " ".join(repr(float(v)) for v in meanface.reshape(-1))
    atomic_write_text(path, text)


def neighbor_indices(meanface, num_neighbors: int) -> np.ndarray:
    """The C nearest mean-face points of each landmark (spec 6.2) -> int32 (N, C).

    Order: ascending squared distance, ties by ascending index (stable argsort); this
    reproduces the original's tables for all shipped mean faces.
    """
    meanface = np.asarray(meanface, dtype=np.float64)
    if meanface.ndim != 2 or meanface.shape[1] != 2:
        raise ValueError(f"expected a mean face of shape (N, 2), got {meanface.shape}")
    n = meanface.shape[0]
    if not 1 <= num_neighbors < n:
        raise ValueError(f"num_neighbors must be in [1, {n - 1}] for {n} landmarks, "
                         f"got {num_neighbors}")
    diff = meanface[:, None, :] - meanface[None, :, :]
    dists = np.sum(diff ** 2, axis=2)
    order = np.argsort(dists, axis=1, kind="stable")
    # Remove the point itself by index, not by position: a duplicate point at distance 0
    # with a lower index would otherwise be dropped instead.
    not_self = order != np.arange(n)[:, None]
    others = order[not_self].reshape(n, n - 1)
    return others[:, :num_neighbors].astype(np.int32)


def reverse_index(neighbors):
    """Who votes for whom (spec 6.3) -> (reverse_index1, reverse_index2, max_len).

    For each landmark t, the pairs (i, j) with neighbors[i, j] == t (i ascending, then j),
    padded cyclically to max_len; flattened over t into two int32 arrays of length
    N * max_len, so vote k for landmark t is neighbor offset j = reverse_index2[t*max_len+k]
    of landmark i = reverse_index1[t*max_len+k].
    """
    neighbors = np.asarray(neighbors)
    if neighbors.ndim != 2:
        raise ValueError(f"expected a neighbour table of shape (N, C), got {neighbors.shape}")
    n = neighbors.shape[0]
    lists = [[] for _ in range(n)]
    for i in range(n):  # row-major walk gives i ascending, then j ascending
        for j, t in enumerate(neighbors[i]):
            if not 0 <= t < n:
                raise ValueError(f"neighbour table entry [{i}, {j}] = {t} is not a landmark "
                                 f"index in [0, {n})")
            lists[t].append((i, j))
    empty = [t for t in range(n) if not lists[t]]
    if empty:
        raise ValueError(f"landmark(s) {empty} are nobody's neighbour, so they get no "
                         f"votes and the reverse index is undefined")
    max_len = max(len(pairs) for pairs in lists)
    # The original repeats each list 11 times and truncates; entry k = list[k mod L] is the
    # same whenever that is long enough (always for the shipped mean faces).
    padded = [pairs[k % len(pairs)] for pairs in lists for k in range(max_len)]
    reverse_index1 = np.array([i for i, _ in padded], dtype=np.int32)
    reverse_index2 = np.array([j for _, j in padded], dtype=np.int32)
    return reverse_index1, reverse_index2, max_len


# The original's mean faces, shipped with the package (pipnet_jax/meanfaces/, MIT).
RELEASED_MEANFACES = {"wflw": "wflw.txt", "300w": "300w.txt", "cofw": "cofw.txt",
                      "aflw": "aflw.txt", "lapa": "lapa.txt", "300w_celeba": "300w_cofw_wflw.txt",
                      "300w_cofw_wflw": "300w_cofw_wflw.txt"}


def released_meanface(dataset: str) -> np.ndarray:
    """The mean face the released checkpoints of `dataset` were trained with."""
    key = dataset.lower().removeprefix("data_")
    if key not in RELEASED_MEANFACES:
        raise KeyError(f"no released mean face for {dataset!r}; known: {sorted(RELEASED_MEANFACES)}")
    with resources.as_file(resources.files("pipnet_jax") / "meanfaces" / RELEASED_MEANFACES[key]) as path:
        return read_meanface(path)
