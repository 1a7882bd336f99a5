"""Decoding (spec section 12) against a literal float64 numpy transcription."""
import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pipnet_jax.decode import decode_landmarks, decoder
from pipnet_jax.meanface import reverse_index

DATA = pathlib.Path(__file__).parent / "data"


def wflw_neighbors():
    return np.array([[int(v) for v in line.split(":")[1].split()]
                     for line in (DATA / "neighbors_wflw.txt").read_text().splitlines()])


def random_output(rng, b, h, w, n, c, dtype=np.float32):
    def draw(channels):
        return rng.normal(size=(b, h, w, channels)).astype(dtype)
    return types.SimpleNamespace(score=draw(n), offset_x=draw(n), offset_y=draw(n),
                                 neighbor_x=draw(n * c), neighbor_y=draw(n * c))


def reference_decode(output, neighbors, net_stride, input_size):
    """Spec 12 step by step, one image and one landmark at a time, in float64."""
    b, h, w, n = output.score.shape
    c = neighbors.shape[1]
    ri1, ri2, max_len = reverse_index(neighbors)
    ri1, ri2 = ri1.reshape(n, max_len), ri2.reshape(n, max_len)
    scale = input_size / net_stride
    merged = np.zeros((b, n, 2))
    own = np.zeros((b, n, 2))
    confidence = np.zeros((b, n))
    for bi in range(b):
        votes = np.zeros((n, c, 2))
        for i in range(n):
            cls = np.asarray(output.score[bi, :, :, i], np.float64).reshape(-1)
            idx = int(np.argmax(cls))
            confidence[bi, i] = cls[idx]
            row, col = idx // w, idx % w
            own[bi, i] = [(col + float(output.offset_x[bi, row, col, i])) / scale,
                          (row + float(output.offset_y[bi, row, col, i])) / scale]
            for j in range(c):
                votes[i, j] = [(col + float(output.neighbor_x[bi, row, col, i * c + j])) / scale,
                               (row + float(output.neighbor_y[bi, row, col, i * c + j])) / scale]
        for t in range(n):
            total = own[bi, t].copy()
            for k in range(max_len):
                total += votes[ri1[t, k], ri2[t, k]]
            merged[bi, t] = total / (1 + max_len)
    return merged, own, confidence


@pytest.mark.parametrize("shape,net_stride", [((8, 8), 32), ((4, 4), 64), ((4, 6), 64)])
def test_matches_reference(shape, net_stride):
    neighbors = wflw_neighbors()
    n, c = neighbors.shape
    output = random_output(np.random.default_rng(0), 3, *shape, n, c)
    expected_merged, expected_own, expected_conf = reference_decode(output, neighbors,
                                                                    net_stride, 256)
    merged, conf = decoder(neighbors, net_stride, 256)(output)
    own, conf_own = decoder(neighbors, net_stride, 256, merge=False)(output)
    assert merged.shape == own.shape == (3, n, 2) and conf.shape == (3, n)
    np.testing.assert_allclose(np.asarray(merged), expected_merged, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(own), expected_own, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(conf), expected_conf.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(conf_own), np.asarray(conf))
    # The simple entry point gives the same answer.
    merged2, _ = decode_landmarks(output, neighbors, net_stride=net_stride, input_size=256)
    np.testing.assert_array_equal(np.asarray(merged2), np.asarray(merged))


def small_case():
    """3 landmarks on a 4x4 map (stride 64), each the other two's neighbours."""
    neighbors = np.array([[1, 2], [2, 0], [0, 1]])
    output = random_output(np.random.default_rng(1), 1, 4, 4, 3, 2)
    return neighbors, output


def test_ties_pick_first_cell_in_row_major_order():
    neighbors, output = small_case()
    output.score[:] = 0.0
    output.score[0, 1, 3, 0] = output.score[0, 2, 0, 0] = 5.0  # flat 7 beats flat 8
    output.score[0, 3, 1, 1] = output.score[0, 0, 2, 1] = 5.0  # flat 2 beats flat 13
    output.offset_x[:] = 0.0
    output.offset_y[:] = 0.0
    own, conf = decode_landmarks(output, neighbors, net_stride=64, merge=False)
    # Landmark 2's map is all zero: the first cell, (0, 0), wins.
    np.testing.assert_array_equal(np.asarray(own[0]), [[3 / 4, 1 / 4], [2 / 4, 0], [0, 0]])
    np.testing.assert_array_equal(np.asarray(conf[0]), [5.0, 5.0, 0.0])


def test_single_hot_cell_gives_expected_coordinates():
    neighbors, output = small_case()
    output.score[:] = -1.0
    output.score[0, 2, 1, 0] = 3.5  # landmark 0 at row 2, col 1
    output.offset_x[0, 2, 1, 0] = 0.25
    output.offset_y[0, 2, 1, 0] = 0.5
    own, conf = decode_landmarks(output, neighbors, net_stride=64, merge=False)
    # Top-left corner of the cell plus offset, over input_size / net_stride = 4.
    np.testing.assert_allclose(np.asarray(own[0, 0]), [(1 + 0.25) / 4, (2 + 0.5) / 4])
    assert float(conf[0, 0]) == 3.5


def test_merge_is_plain_mean_including_padding():
    """All landmarks hot at cell (0, 0): merged = mean of own and the padded votes."""
    neighbors, output = small_case()
    output.score[:] = -1.0
    output.score[0, 0, 0, :] = 1.0
    output.offset_x[0, 0, 0, :] = [0.0, 1.0, 2.0]
    output.offset_y[:] = 0.0
    output.neighbor_y[:] = 0.0
    # Vote of landmark i for its j-th neighbour: x = 10 * i + j.
    output.neighbor_x[0, 0, 0, :] = [0, 1, 10, 11, 20, 21]
    merged, _ = decode_landmarks(output, neighbors, net_stride=64)
    # Votes for 0: (1,1)=11, (2,0)=20; for 1: (0,0)=0, (2,1)=21; for 2: (0,1)=1, (1,0)=10.
    expected_x = np.array([0 + 11 + 20, 1 + 0 + 21, 2 + 1 + 10]) / 3 / 4
    np.testing.assert_allclose(np.asarray(merged[0, :, 0]), expected_x, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(merged[0, :, 1]), 0.0)


def test_works_under_jit_and_rejects_wrong_channels():
    neighbors = wflw_neighbors()
    output = random_output(np.random.default_rng(2), 2, 8, 8, 98, 10)
    arrays = {k: jnp.asarray(v) for k, v in vars(output).items()}

    @jax.jit
    def run(arrays):
        return decode_landmarks(types.SimpleNamespace(**arrays), neighbors)

    merged, conf = run(arrays)
    expected, _ = decode_landmarks(output, neighbors)
    np.testing.assert_allclose(np.asarray(merged), np.asarray(expected), rtol=0, atol=1e-6)
    assert conf.shape == (2, 98)

    with pytest.raises(ValueError, match="neighbour table needs 98"):
        decode_landmarks(random_output(np.random.default_rng(3), 1, 8, 8, 68, 10), neighbors)
