"""Heatmap + offsets -> landmarks, with the neighbour-vote merge (spec section 12).

Two decoders of the same rule, side by side: `decoder` / `decode_landmarks` (jitted, used by
training, evaluation, inference and `export --format jax`) and `graph_decoder` (the same
result in ops the TFLite converter and jax2onnx accept, used by the SavedModel / TFLite /
ONNX exports).

Outputs are NHWC: score/offset_x/offset_y are (B, H, W, N); neighbor_x/neighbor_y are
(B, H, W, C*N) with channel i*C + j = landmark i's offset to its j-th neighbour.
Landmarks come back in the normalised crop frame (x / crop width, y / crop height).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax.meanface import reverse_index


def decoder(neighbors, net_stride: int = 32, input_size: int = 256, merge: bool = True):
    """Builds a jitted `decode(output) -> (landmarks (B, N, 2), confidence (B, N))`.

    `neighbors` is the static (N, C) numpy table; its reverse index is computed here once.
    With merge=False the landmarks are each point's own estimate (no neighbour votes).
    """
    neighbors = np.asarray(neighbors)
    if neighbors.ndim != 2:
        raise ValueError(f"expected a neighbour table of shape (N, C), got {neighbors.shape}")
    n, c = neighbors.shape
    ri1, ri2, max_len = reverse_index(neighbors)
    # Vote k for landmark t sits at flat neighbour channel ri1*C + ri2.
    vote_channels = (ri1.astype(np.int32) * c + ri2.astype(np.int32)).reshape(n, max_len)
    # The original divides by input_size / net_stride, not by the map width W.
    scale = input_size / net_stride

    @jax.jit
    def _decode(score, offset_x, offset_y, neighbor_x, neighbor_y):
        b, h, w, n_out = score.shape
        if n_out != n or neighbor_x.shape[-1] != n * c:
            raise ValueError(f"outputs have {n_out} score and {neighbor_x.shape[-1]} neighbour "
                             f"channels; the neighbour table needs {n} and {n * c}")
        flat = score.reshape(b, h * w, n)
        cell = jnp.argmax(flat, axis=1)  # (B, N); row-major, first max on ties
        confidence = jnp.take_along_axis(flat, cell[:, None, :], axis=1)[:, 0, :]
        col = (cell % w).astype(offset_x.dtype)
        row = (cell // w).astype(offset_x.dtype)

        def at_cell(maps, cells):
            """Value of each channel at its given cell: (B,H,W,K), (B,K) -> (B,K)."""
            maps = maps.reshape(b, h * w, maps.shape[-1])
            return jnp.take_along_axis(maps, cells[:, None, :], axis=1)[:, 0, :]

        x = (col + at_cell(offset_x, cell)) / scale
        y = (row + at_cell(offset_y, cell)) / scale
        if not merge:
            return jnp.stack([x, y], axis=-1), confidence

        # Neighbour offsets are relative to the owner's cell: channel i*C+j uses cell i.
        owner_cell = jnp.repeat(cell, c, axis=1)
        vote_x = (jnp.repeat(col, c, axis=1) + at_cell(neighbor_x, owner_cell)) / scale
        vote_y = (jnp.repeat(row, c, axis=1) + at_cell(neighbor_y, owner_cell)) / scale
        # Plain mean of own estimate and max_len votes, padding duplicates included.
        merged_x = jnp.mean(jnp.concatenate([x[..., None], vote_x[:, vote_channels]], -1), -1)
        merged_y = jnp.mean(jnp.concatenate([y[..., None], vote_y[:, vote_channels]], -1), -1)
        return jnp.stack([merged_x, merged_y], axis=-1), confidence

    def decode(output):
        return _decode(output.score, output.offset_x, output.offset_y,
                       output.neighbor_x, output.neighbor_y)

    return decode


@functools.lru_cache(maxsize=16)
def _cached_decoder(table_bytes, shape, dtype, net_stride, input_size, merge):
    neighbors = np.frombuffer(table_bytes, dtype=dtype).reshape(shape)
    return decoder(neighbors, net_stride, input_size, merge)


def decode_landmarks(output, neighbors, net_stride: int = 32, input_size: int = 256,
                     merge: bool = True):
    """Decodes a model output -> (landmarks (B, N, 2), confidence (B, N)).

    `neighbors` must be a concrete (N, C) numpy table; decoders are cached per table so
    repeated calls do not retrace. Works inside jax.jit as well.
    """
    neighbors = np.ascontiguousarray(neighbors)
    return _cached_decoder(neighbors.tobytes(), neighbors.shape, neighbors.dtype.str,
                           net_stride, input_size, merge)(output)


def graph_decoder(neighbors, net_stride: int = 32, input_size: int = 256):
    """decoder(merge=True) in ops the TFLite converter can legalize from StableHLO.

    jax2tf always embeds StableHLO now (non-native serialization is gone), and TFLite's
    StableHLO legalizer rejects three things `decoder` lowers to: the two-operand reduce of
    jnp.argmax, take_along_axis's batched gather, and gathers whose shape holds the symbolic
    batch. So: argmax = smallest index among the maxima (same first-max tie rule); reading a
    channel at a cell = masked sum over cells (exact, it adds zeros); the vote mean = a
    constant 0/1 (N*C, N) matrix product, duplicated padding votes counted as in the mean.
    Results match `decoder` to float rounding (tests compare both). Not jitted: it is traced
    inside the exported function."""
    neighbors = np.asarray(neighbors)
    n, c = neighbors.shape
    ri1, ri2, max_len = reverse_index(neighbors)
    vote_channels = (ri1.astype(np.int64) * c + ri2).reshape(n, max_len)
    votes = np.zeros((n * c, n), np.float32)
    np.add.at(votes, (vote_channels, np.arange(n)[:, None]), 1.0)
    scale = input_size / net_stride

    def decode(output):
        b, h, w, _ = output.score.shape
        flat = output.score.reshape(b, h * w, n)
        confidence = jnp.max(flat, axis=1)
        cells = jnp.arange(h * w, dtype=jnp.int32)[None, :, None]
        cell = jnp.min(jnp.where(flat == confidence[:, None, :], cells, h * w), axis=1)
        # cell >= 0, so truncating lax.div is floor division; jnp's % and // add sign fixes
        # that jax2onnx cannot convert with a symbolic batch.
        row = jax.lax.div(cell, jnp.int32(w))
        col, row = (cell - row * w).astype(jnp.float32), row.astype(jnp.float32)

        def at_cell(maps, owner):
            maps = maps.reshape(b, h * w, maps.shape[-1])
            return jnp.sum(jnp.where(cells == owner[:, None, :], maps, 0.0), axis=1)

        x = (col + at_cell(output.offset_x, cell)) / scale
        y = (row + at_cell(output.offset_y, cell)) / scale
        owner = jnp.repeat(cell, c, axis=1)  # channel i*C+j is read at landmark i's cell
        vote_x = (jnp.repeat(col, c, axis=1) + at_cell(output.neighbor_x, owner)) / scale
        vote_y = (jnp.repeat(row, c, axis=1) + at_cell(output.neighbor_y, owner)) / scale
        hp = jax.lax.Precision.HIGHEST  # keep the vote sums float32 on every backend
        merged_x = (x + jnp.matmul(vote_x, votes, precision=hp)) / (max_len + 1)
        merged_y = (y + jnp.matmul(vote_y, votes, precision=hp)) / (max_len + 1)
        return jnp.stack([merged_x, merged_y], axis=-1), confidence

    return decode
