"""Tests for pipnet_jax.landmarks: flip tables, registry, WFLW-98 -> 68 conversion."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pipnet_jax import landmarks as L
from pipnet_jax.landmarks import LandmarkSet, get_landmark_set, register_landmark_set, wflw98_to_68

BUILTIN = {'300w': 68, 'wflw': 98, 'cofw': 29, 'aflw': 19, 'lapa': 106}

# Spec 10.1, WFLW (already 0-based in train.py).
WFLW_FLIP = [32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
             11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 46, 45, 44, 43, 42, 50, 49, 48, 47, 37, 36,
             35, 34, 33, 41, 40, 39, 38, 51, 52, 53, 54, 59, 58, 57, 56, 55, 72, 71, 70, 69, 68,
             75, 74, 73, 64, 63, 62, 61, 60, 67, 66, 65, 82, 81, 80, 79, 78, 77, 76, 87, 86, 85,
             84, 83, 92, 91, 90, 89, 88, 95, 94, 93, 97, 96]


@pytest.mark.parametrize('name,n', sorted(BUILTIN.items()))
def test_builtin_sets_are_consistent(name, n):
    ls = get_landmark_set(name)
    p = ls.flip_permutation
    assert ls.num_points == n and len(p) == n
    assert sorted(p) == list(range(n))
    assert all(p[p[i]] == i for i in range(n))  # involution
    groups = ls.pupil_groups
    assert len(groups) == 2 and all(0 <= i < n for g in groups for i in g)
    # The two pupils must swap under a flip, as must the inter-ocular points.
    assert sorted(p[i] for i in groups[0]) == sorted(groups[1])
    if ls.norm_indices is not None:
        i, j = ls.norm_indices
        assert p[i] == j


def test_tables_match_spec():
    assert list(get_landmark_set('wflw').flip_permutation) == WFLW_FLIP
    assert get_landmark_set('300w').norm_indices == (36, 45)
    assert get_landmark_set('wflw').norm_indices == (60, 72)
    assert get_landmark_set('cofw').norm_indices == (8, 9)
    assert get_landmark_set('lapa').norm_indices == (66, 79)
    assert get_landmark_set('aflw').norm_indices is None
    lapa = get_landmark_set('lapa').flip_permutation
    assert lapa[:33] == tuple(range(32, -1, -1)) and lapa[33:38] == (46, 45, 44, 43, 42)
    assert get_landmark_set('300w').flip_permutation[:3] == (16, 15, 14)


def test_aliases_and_case_insensitive_lookup():
    base = get_landmark_set('300w')
    for alias in ('data_300W', '300w_celeba', '300w_cofw_wflw', 'data_300W_COFW_WFLW'):
        assert get_landmark_set(alias) is base
    assert get_landmark_set('WFLW').num_points == 98
    assert get_landmark_set(base) is base


def test_unknown_name_lists_known():
    with pytest.raises(KeyError, match='wflw'):
        get_landmark_set('nope')


def test_register_custom_set():
    ls = LandmarkSet('toy4', 4, [1, 0, 3, 2], (0, 1), ((0, 2), (1, 3)))
    try:
        assert register_landmark_set(ls, 'toy_alias') is ls
        assert get_landmark_set('TOY4') is ls and get_landmark_set('toy_alias') is ls
        assert ls.flip_permutation == (1, 0, 3, 2)  # lists normalised to tuples
        with pytest.raises(ValueError, match='already registered'):
            register_landmark_set(ls)
        register_landmark_set(ls, replace=True)
    finally:
        L._REGISTRY.pop('toy4', None)
        L._REGISTRY.pop('toy_alias', None)


@pytest.mark.parametrize('kwargs,field', [
    (dict(flip_permutation=(0, 1, 2)), 'flip_permutation'),         # wrong length
    (dict(flip_permutation=(0, 0, 2, 3)), 'flip_permutation'),      # not a permutation
    (dict(flip_permutation=(1, 2, 3, 0)), 'flip_permutation'),      # not an involution
    (dict(norm_indices=(0, 4)), 'norm_indices'),
    (dict(pupil_groups=((0,), (5,))), 'pupil_groups'),
    (dict(pupil_groups=((0,),)), 'pupil_groups'),
])
def test_bad_sets_raise(kwargs, field):
    args = dict(name='bad', num_points=4, flip_permutation=(1, 0, 3, 2), norm_indices=(0, 1),
                pupil_groups=((0,), (1,)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        register_landmark_set(LandmarkSet(**args))
    assert 'bad' not in L._REGISTRY


def _wflw_points():
    k = np.arange(98, dtype=np.float64)
    return np.stack([k, 100 + 2 * k], axis=-1)  # point k = (k, 100 + 2k)


def test_wflw98_to_68_hand_values():
    out = wflw98_to_68(_wflw_points())
    assert out.shape == (68, 2)
    assert tuple(out[8]) == (16, 132)                       # jaw: every other point
    assert tuple(out[17]) == (33, 166)                      # brow start copied
    assert tuple(out[18]) == (34, (168 + 182) / 2)          # x of 34, mean y of 34 and 41
    assert tuple(out[22]) == (42, (184 + 200) / 2)          # right brow: 42 with 50
    assert tuple(out[26]) == (46, 192)
    assert tuple(out[27]) == (51, 202)                      # nose
    assert tuple(out[36]) == (60, 220)
    # Eye lids with the literal 0.666 / 0.333 weights (sum 0.999).
    assert out[37] == pytest.approx([0.666 * 61 + 0.333 * 62, 0.666 * 222 + 0.333 * 224], abs=1e-12)
    assert out[37] == pytest.approx([61.272, 222.444], abs=1e-9)
    assert out[38] == pytest.approx([0.666 * 63 + 0.333 * 62, 0.666 * 226 + 0.333 * 224], abs=1e-12)
    assert out[47] == pytest.approx([74.592, 0.666 * 250 + 0.333 * 248], abs=1e-9)
    assert tuple(out[45]) == (72, 244)
    assert tuple(out[48]) == (76, 252) and tuple(out[67]) == (95, 290)  # mouth


def test_wflw98_to_68_batched_and_jax():
    pts = _wflw_points()
    batch = np.broadcast_to(pts, (2, 3, 98, 2))
    out = wflw98_to_68(batch)
    assert out.shape == (2, 3, 68, 2)
    np.testing.assert_array_equal(out[1, 2], wflw98_to_68(pts))
    out_j = wflw98_to_68(jnp.asarray(pts, jnp.float32))
    assert isinstance(out_j, jax.Array) and out_j.shape == (68, 2)
    np.testing.assert_allclose(np.asarray(out_j), wflw98_to_68(pts), rtol=1e-6)


def test_wflw98_to_68_bad_shape():
    with pytest.raises(ValueError, match=r'landmarks.*\(\.\.\., 98, 2\)'):
        wflw98_to_68(np.zeros((68, 2)))
