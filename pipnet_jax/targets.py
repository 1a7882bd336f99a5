"""Training targets from normalised landmarks (spec 7), computed on device.

`sample_targets` is one sample in pure jnp; `batch_targets` vmaps it. Maps are NHWC like the
model's outputs. The cell index is clamped to the map but the offset is not, so landmarks
outside the crop get the border cell with an offset outside [0, 1), as in the original."""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np


@flax.struct.dataclass
class Targets:
    """score/offset_*: (..., H, W, N); neighbor_*: (..., H, W, C*N), channel i*C + j.
    score_cls2 / score_cls3: one-hot maps at half / quarter resolution (STC), or None."""
    score: jax.Array
    offset_x: jax.Array
    offset_y: jax.Array
    neighbor_x: jax.Array
    neighbor_y: jax.Array
    score_cls2: jax.Array | None = None
    score_cls3: jax.Array | None = None


def _cells(landmarks, height, width):
    """Clamped cell indices (cx, cy) and the landmarks in cell units (gx, gy)."""
    gx = landmarks[:, 0] * width
    gy = landmarks[:, 1] * height
    cx = jnp.clip(jnp.floor(gx), 0, width - 1).astype(jnp.int32)
    cy = jnp.clip(jnp.floor(gy), 0, height - 1).astype(jnp.int32)
    return cx, cy, gx, gy


def _one_hot_map(cx, cy, height, width):
    """(H, W, N) with a single 1 per landmark at (cy, cx)."""
    hot = jax.nn.one_hot(cy * width + cx, height * width, dtype=jnp.float32)  # (N, HW)
    return hot.T.reshape(height, width, -1)


def sample_targets(landmarks, neighbors, map_size, stc: bool = False) -> Targets:
    """landmarks (N, 2) in [0, 1] crop coordinates; neighbors (N, C) int; map_size (H, W)."""
    height, width = map_size
    neighbors = jnp.asarray(neighbors)
    cx, cy, gx, gy = _cells(landmarks, height, width)
    hot = _one_hot_map(cx, cy, height, width)
    # Neighbor j of landmark i, relative to i's (the owner's) cell corner; channel i*C + j.
    nb_x = (gx[neighbors] - cx[:, None]).reshape(-1)
    nb_y = (gy[neighbors] - cy[:, None]).reshape(-1)
    hot_nb = jnp.repeat(hot, neighbors.shape[1], axis=-1)
    extra = {}
    if stc:
        for name, factor in (("score_cls2", 2), ("score_cls3", 4)):
            h, w = height // factor, width // factor
            ccx, ccy, _, _ = _cells(landmarks, h, w)
            extra[name] = _one_hot_map(ccx, ccy, h, w)
    return Targets(score=hot, offset_x=hot * (gx - cx), offset_y=hot * (gy - cy),
                   neighbor_x=hot_nb * nb_x, neighbor_y=hot_nb * nb_y, **extra)


def batch_targets(landmarks, neighbors, map_size, stc: bool = False) -> Targets:
    """landmarks (B, N, 2) -> Targets with a leading batch axis."""
    neighbors = np.asarray(neighbors)
    return jax.vmap(lambda lm: sample_targets(lm, neighbors, map_size, stc))(landmarks)
