"""Tests for pipnet_jax.metrics: NME normalisers, CED, FR and AUC (spec 15)."""
import numpy as np
import pytest

from pipnet_jax.metrics import ced_curve, fr_auc, nme, normalizer


def test_nme_inter_ocular_indices():
    gt = np.array([[0.0, 0.0], [10.0, 0.0]])
    pred = gt + [3.0, 4.0]  # every point off by 5
    out = nme(pred, gt, (0, 1))
    assert out.shape == (1,) and out[0] == pytest.approx(0.5)
    # Batched: second sample has eyes 20 apart.
    gt2 = np.stack([gt, 2 * gt])
    np.testing.assert_allclose(nme(gt2 + [3.0, 4.0], gt2, [0, 1]), [0.5, 0.25])


def test_nme_given_norms():
    gt = np.zeros((2, 3, 2))
    pred = gt + [3.0, 4.0]
    np.testing.assert_allclose(nme(pred, gt, 1.0), [5.0, 5.0])  # AFLW: norm 1
    np.testing.assert_allclose(nme(pred, gt, np.array([2.0, 5.0])), [2.5, 1.0])
    np.testing.assert_allclose(nme(pred, gt, 1), [5.0, 5.0])  # an int is a norm, not an index


def test_nme_inter_ocular_by_set_name():
    gt = np.zeros((19, 2))
    pred = gt + [0.3, 0.4]
    assert nme(pred, gt, 'inter_ocular', landmark_set='aflw')[0] == pytest.approx(0.5)
    gt = np.random.default_rng(0).random((68, 2))
    d = np.linalg.norm(gt[36] - gt[45])
    assert nme(gt + [0.03, 0.04], gt, 'inter_ocular', landmark_set='300w')[0] == pytest.approx(0.05 / d)


def test_nme_inter_pupil():
    gt = np.zeros((68, 2))
    # Left eye (36..41) centroid (2, 2); right eye (42..47) centroid (8, 10): 10 apart.
    gt[36:42] = [[1, 1], [3, 1], [1, 3], [3, 3], [2, 2], [2, 2]]
    gt[42:48] = [[7, 10], [9, 10], [8, 9], [8, 11], [8, 10], [8, 10]]
    pred = gt + [0.6, 0.8]  # every point off by 1
    assert nme(pred, gt, 'pupil', landmark_set='300w')[0] == pytest.approx(0.1)
    assert normalizer(gt, '300w', 'inter_pupil')[0] == pytest.approx(10.0)
    # WFLW pupils are single points 96 / 97.
    g = np.zeros((98, 2))
    g[97] = [6.0, 8.0]
    assert nme(g + [0.6, 0.8], g, 'inter_pupil', landmark_set='wflw')[0] == pytest.approx(0.1)


def test_nme_box():
    gt = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 9.0], [0.0, 9.0]])  # sqrt(4 * 9) = 6
    assert nme(gt + [3.0, 4.0], gt, 'box')[0] == pytest.approx(5 / 6)
    assert normalizer(gt, kind='box')[0] == pytest.approx(6.0)


@pytest.mark.parametrize('pred,gt,norm,kwargs,match', [
    (np.zeros((5, 3)), np.zeros((5, 3)), 1.0, {}, r'pred: expected shape \(M, N, 2\) or \(N, 2\), got \(5, 3\)'),
    (np.zeros((5, 2)), np.zeros((2, 5, 2, 1)), 1.0, {}, r'gt: expected .* got \(2, 5, 2, 1\)'),
    (np.zeros((5, 2)), np.zeros((6, 2)), 1.0, {}, r'same shape.*pred \(1, 5, 2\).*gt \(1, 6, 2\)'),
    (np.zeros((2, 5, 2)), np.zeros((2, 5, 2)), np.ones(3), {}, r'norm: expected a scalar or shape \(2,\)'),
    (np.zeros((5, 2)), np.zeros((5, 2)), (0, 7), {}, r'norm: indices'),
    (np.zeros((5, 2)), np.zeros((5, 2)), 'eyes', {}, r'norm: expected one of'),
    (np.zeros((5, 2)), np.zeros((5, 2)), 'pupil', {}, r'landmark_set is required'),
    (np.zeros((5, 2)), np.zeros((5, 2)), 'pupil', {'landmark_set': '300w'}, r'gt: 300w has 68'),
    (np.zeros((5, 2)), np.zeros((5, 2)), (0, 1), {}, r'norm: every per-sample norm must be > 0'),
])
def test_nme_errors(pred, gt, norm, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nme(pred, gt, norm, **kwargs)


def test_fr_auc_all_zero():
    assert fr_auc(np.zeros(7)) == (0.0, pytest.approx(1.0, abs=1e-12))


def test_fr_auc_half_failed():
    fr, auc = fr_auc([0.0, 0.2])
    assert fr == pytest.approx(0.5) and auc == pytest.approx(0.5, abs=1e-12)


def test_fr_auc_single_step():
    # ys is 1 from xs[500] = 0.05 on. Simpson weights (1, 4, 2, ..., 4, 1) * h/3 summed from
    # index 500 (an even interior point, weight 2): 2 + 250*4 + 249*2 + 1 = 1501.
    fr, auc = fr_auc([0.04995])
    assert fr == 0.0
    assert auc == pytest.approx((1501e-4 / 3) / 0.1, abs=1e-12)


def test_ced_matches_reference_loop():
    nmes = np.random.default_rng(1).gamma(2.0, 0.02, size=300)
    xs, ys = ced_curve(nmes)
    assert xs.shape == (1001,) and xs[-1] == pytest.approx(0.1)
    ref = np.array([np.count_nonzero(nmes <= x) for x in xs]) / float(len(nmes))
    np.testing.assert_array_equal(ys, ref)
    fr, _ = fr_auc(nmes)
    assert fr == pytest.approx(np.mean(nmes > 0.1))


@pytest.mark.parametrize('bad', [np.zeros((3, 2)), np.zeros(0)])
def test_fr_auc_bad_shape(bad):
    with pytest.raises(ValueError, match=r'nmes: expected a non-empty 1-D array.*got shape'):
        fr_auc(bad)
