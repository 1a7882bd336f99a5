"""Evaluation metrics: NME with several normalisers, CED curve, failure rate and AUC (spec 15).

Plain numpy/scipy so evaluation does not depend on the training framework.
"""
from numbers import Integral, Real

import numpy as np
import scipy.integrate

from pipnet_jax.landmarks import get_landmark_set

_KINDS = ('inter_ocular', 'inter_pupil', 'box')


def _as_batch(a, arg: str) -> np.ndarray:
    """(N, 2) -> (1, N, 2); (M, N, 2) unchanged; anything else is an error naming `arg`."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim not in (2, 3) or a.shape[-1] != 2 or a.shape[-2] == 0:
        raise ValueError(f'{arg}: expected shape (M, N, 2) or (N, 2), got {a.shape}')
    return a[None] if a.ndim == 2 else a


def _check_indices(idx, n: int, arg: str):
    if any(not 0 <= i < n for i in idx):
        raise ValueError(f'{arg}: indices {tuple(idx)} out of range for {n} landmarks')


def normalizer(gt, landmark_set=None, kind: str = 'inter_ocular') -> np.ndarray:
    """Per-sample NME norm (M,) of GT landmarks (M, N, 2) or (N, 2).

    inter_ocular: distance between the set's norm_indices (1.0 where they are None, as AFLW);
    inter_pupil: distance between the centroids of the set's two pupil groups;
    box: sqrt(w * h) of the GT landmarks' bounding box (needs no landmark_set).
    """
    gt = _as_batch(gt, 'gt')
    if kind == 'box':
        wh = gt.max(axis=1) - gt.min(axis=1)
        return np.sqrt(wh[:, 0] * wh[:, 1])
    if kind not in _KINDS:
        raise ValueError(f'kind: expected one of {_KINDS}, got {kind!r}')
    if landmark_set is None:
        raise ValueError(f'landmark_set is required for kind={kind!r}')
    ls = get_landmark_set(landmark_set)
    if gt.shape[1] != ls.num_points:
        raise ValueError(f'gt: {ls.name} has {ls.num_points} landmarks, got shape {gt.shape}')
    if kind == 'inter_ocular':
        if ls.norm_indices is None:
            return np.ones(gt.shape[0])
        i, j = ls.norm_indices
        return np.linalg.norm(gt[:, i] - gt[:, j], axis=-1)
    left, right = (gt[:, list(g)].mean(axis=1) for g in ls.pupil_groups)
    return np.linalg.norm(left - right, axis=-1)


def nme(pred, gt, norm, *, landmark_set=None) -> np.ndarray:
    """Per-sample normalised mean error, shape (M,) ((1,) for a single (N, 2) sample).

    NME = mean over landmarks of ||pred - gt||_2, divided by the sample's norm. `norm` is
      * a pair of landmark indices (i, j): distance between GT points i and j (inter-ocular);
      * 'inter_ocular' / 'pupil' (alias 'inter_pupil') with landmark_set: see `normalizer`;
      * 'box': sqrt(w * h) of the GT bounding box;
      * a number or an (M,) array of given norms (1.0 reproduces the original AFLW numbers).
    A tuple/list of two ints is read as indices; pass an array for two given norms.
    """
    pred, gt = _as_batch(pred, 'pred'), _as_batch(gt, 'gt')
    if pred.shape != gt.shape:
        raise ValueError(f'pred and gt must have the same shape, got pred {pred.shape} '
                         f'and gt {gt.shape}')
    m, n = gt.shape[:2]
    if isinstance(norm, str):
        kind = {'pupil': 'inter_pupil'}.get(norm, norm)
        if kind not in _KINDS:
            raise ValueError(f"norm: expected one of 'inter_ocular', 'pupil', 'box', a pair "
                             f"of indices or numbers, got {norm!r}")
        d = normalizer(gt, landmark_set, kind)
    elif (isinstance(norm, (tuple, list)) and len(norm) == 2
          and all(isinstance(i, Integral) for i in norm)):
        _check_indices(norm, n, 'norm')
        d = np.linalg.norm(gt[:, norm[0]] - gt[:, norm[1]], axis=-1)
    else:
        d = np.asarray(norm, dtype=np.float64)
        if d.ndim > 1 or (d.ndim == 1 and d.shape[0] != m):
            raise ValueError(f'norm: expected a scalar or shape ({m},), got {d.shape}')
        d = np.broadcast_to(d, (m,))
    if not np.all(d > 0):
        raise ValueError(f'norm: every per-sample norm must be > 0, got {d}')
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=1) / d


def _check_nmes(nmes) -> np.ndarray:
    nmes = np.asarray(nmes, dtype=np.float64)
    if nmes.ndim != 1 or nmes.size == 0:
        raise ValueError(f'nmes: expected a non-empty 1-D array of per-sample NMEs, '
                         f'got shape {nmes.shape}')
    return nmes


def ced_curve(nmes, threshold: float = 0.1, step: float = 1e-4):
    """Cumulative error distribution: xs = arange(0, threshold + step, step) and
    ys[k] = fraction of samples with NME <= xs[k] (spec 15)."""
    nmes = _check_nmes(nmes)
    if not (isinstance(threshold, Real) and isinstance(step, Real)
            and threshold > 0 and step > 0):
        raise ValueError(f'threshold and step must be positive numbers, got {threshold}, {step}')
    xs = np.arange(0, threshold + step, step)
    # Counting through a sorted copy gives the same counts as `nmes <= x` per x, in O(log n).
    ys = np.searchsorted(np.sort(nmes), xs, side='right') / nmes.size
    return xs, ys


def fr_auc(nmes, threshold: float = 0.1, step: float = 1e-4):
    """(failure rate, AUC) as compute_fr_and_auc: FR = fraction with NME > threshold,
    AUC = Simpson integral of the CED over [0, threshold] divided by threshold."""
    xs, ys = ced_curve(nmes, threshold, step)
    fr = 1.0 - ys[-1]
    auc = scipy.integrate.simpson(ys, x=xs) / threshold
    return float(fr), float(auc)


# A face whose NME exceeds this fails (FR@0.1 of the papers and of `fr_auc`'s default).
FAILURE_THRESHOLD = 0.1


def failures(nmes, threshold: float = FAILURE_THRESHOLD) -> np.ndarray:
    """Per-sample failure flags (bool, NME > threshold): `fr_auc(nmes, threshold)[0]` is
    their mean."""
    return _check_nmes(nmes) > threshold
