"""Plain float64 loop implementations of the original's formulas, written from the spec, to
check the vectorised JAX code against (not imported by the package)."""
import numpy as np


def numpy_targets(landmarks, neighbors, height, width):
    """Spec 7 for one sample, NCHW as the original: score/off (N,H,W), nb (C*N,H,W)."""
    n, c = neighbors.shape
    score = np.zeros((n, height, width))
    off_x, off_y = np.zeros_like(score), np.zeros_like(score)
    nb_x, nb_y = np.zeros((c * n, height, width)), np.zeros((c * n, height, width))
    for i in range(n):
        x, y = float(landmarks[i, 0]), float(landmarks[i, 1])
        cx = min(max(int(np.floor(x * width)), 0), width - 1)
        cy = min(max(int(np.floor(y * height)), 0), height - 1)
        score[i, cy, cx] = 1
        off_x[i, cy, cx] = x * width - cx
        off_y[i, cy, cx] = y * height - cy
        for j in range(c):
            k = neighbors[i, j]
            nb_x[i * c + j, cy, cx] = landmarks[k, 0] * width - cx
            nb_y[i * c + j, cy, cx] = landmarks[k, 1] * height - cy
    return score, off_x, off_y, nb_x, nb_y


def coarse_one_hot(landmarks, size):
    """The 4x4 / 2x2 one-hot maps of the STC tasks (spec 8.2), (N, size, size)."""
    out = np.zeros((len(landmarks), size, size))
    for i, (x, y) in enumerate(landmarks):
        cx = min(max(int(np.floor(x * size)), 0), size - 1)
        cy = min(max(int(np.floor(y * size)), 0), size - 1)
        out[i, cy, cx] = 1
    return out
