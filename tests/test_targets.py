import jax
import numpy as np

from pipnet_jax.targets import batch_targets, sample_targets
from spec_reference import coarse_one_hot, numpy_targets

NAMES = ("score", "offset_x", "offset_y", "neighbor_x", "neighbor_y")


def random_case(rng, n=12, c=4):
    landmarks = rng.uniform(-0.2, 1.2, size=(n, 2)).astype(np.float32)  # some outside the crop
    landmarks[0] = [1.0, 1.0]  # exactly 1.0 -> last cell with offset 1.0
    landmarks[1] = [0.0, 0.5]
    neighbors = np.stack([rng.permutation([k for k in range(n) if k != i])[:c] for i in range(n)])
    return landmarks, neighbors


def test_targets_match_spec_loop():
    rng = np.random.RandomState(0)
    for height, width in ((8, 8), (4, 4), (2, 6)):
        landmarks, neighbors = random_case(rng)
        got = jax.jit(sample_targets, static_argnums=(2, 3))(landmarks, neighbors, (height, width))
        ref = numpy_targets(landmarks.astype(np.float64), neighbors, height, width)
        for name, r in zip(NAMES, ref):
            np.testing.assert_allclose(np.asarray(getattr(got, name)), r.transpose(1, 2, 0),
                                       atol=1e-6, err_msg=name)
    # exactly 1.0 -> cell W-1 with offset 1.0; outside the crop -> clamped cell, raw offset
    t = sample_targets(np.array([[1.0, 1.0], [-0.25, 1.5]], np.float32), np.array([[1], [0]]), (8, 8))
    assert t.score[7, 7, 0] == 1 and t.offset_x[7, 7, 0] == 1.0
    assert t.score[7, 0, 1] == 1 and t.offset_x[7, 0, 1] == -2.0 and t.offset_y[7, 0, 1] == 5.0
    assert t.neighbor_x[7, 0, 1] == 8.0 - 0  # neighbor (1.0 * 8) relative to the owner's cell


def test_stc_maps_and_vmap():
    rng = np.random.RandomState(1)
    landmarks = np.stack([random_case(rng)[0] for _ in range(3)])
    neighbors = random_case(rng)[1]
    t = batch_targets(landmarks, neighbors, (8, 8), stc=True)
    assert t.score.shape == (3, 8, 8, 12) and t.neighbor_x.shape == (3, 8, 8, 48)
    assert t.score_cls2.shape == (3, 4, 4, 12) and t.score_cls3.shape == (3, 2, 2, 12)
    for b in range(3):
        np.testing.assert_array_equal(t.score_cls2[b], coarse_one_hot(landmarks[b], 4).transpose(1, 2, 0))
        np.testing.assert_array_equal(t.score_cls3[b], coarse_one_hot(landmarks[b], 2).transpose(1, 2, 0))
        np.testing.assert_allclose(t.offset_y[b], numpy_targets(landmarks[b], neighbors, 8, 8)[2].transpose(1, 2, 0), atol=1e-6)
