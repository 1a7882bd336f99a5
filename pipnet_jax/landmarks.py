"""Per-dataset landmark-set facts: flip permutations, NME normalisers, WFLW-98 -> 68.

All indices are 0-based. Flip tables and inter-ocular indices follow spec 10.1 and 15.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class LandmarkSet:
    """Facts about one landmark scheme.

    flip_permutation: new[i] = old[P[i]] after a horizontal flip (then x = 1 - x).
    norm_indices: the two GT points whose distance is the inter-ocular NME norm, or None
      for norm = 1 (the original AFLW evaluation: coordinates are already box-normalised).
    pupil_groups: two index tuples; the centroid of each is one pupil (inter-pupil NME).
    """
    name: str
    num_points: int
    flip_permutation: tuple
    norm_indices: Optional[tuple]
    pupil_groups: tuple

    def __post_init__(self):
        # Normalise lists/arrays to tuples of int so instances stay hashable and comparable.
        set_ = lambda field, value: object.__setattr__(self, field, value)
        set_('flip_permutation', tuple(int(i) for i in self.flip_permutation))
        if self.norm_indices is not None:
            set_('norm_indices', tuple(int(i) for i in self.norm_indices))
        set_('pupil_groups', tuple(tuple(int(i) for i in g) for g in self.pupil_groups))
        self._validate()

    def _validate(self):
        n = self.num_points
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f'{self.name}: num_points must be a positive int, got {n!r}')
        p = self.flip_permutation
        if sorted(p) != list(range(n)):
            raise ValueError(f'{self.name}: flip_permutation must be a permutation of '
                             f'range({n}), got length {len(p)} with values {p}')
        bad = [i for i in range(n) if p[p[i]] != i]
        if bad:
            raise ValueError(f'{self.name}: flip_permutation is not an involution '
                             f'(P[P[i]] != i for i in {bad})')
        in_range = lambda idx: all(0 <= i < n for i in idx)
        if self.norm_indices is not None and (
                len(self.norm_indices) != 2 or not in_range(self.norm_indices)):
            raise ValueError(f'{self.name}: norm_indices must be None or two indices in '
                             f'[0, {n}), got {self.norm_indices}')
        if (len(self.pupil_groups) != 2 or not all(self.pupil_groups)
                or not all(in_range(g) for g in self.pupil_groups)):
            raise ValueError(f'{self.name}: pupil_groups must be two non-empty tuples of '
                             f'indices in [0, {n}), got {self.pupil_groups}')


_REGISTRY: dict = {}


def register_landmark_set(ls: LandmarkSet, *aliases: str, replace: bool = False) -> LandmarkSet:
    """Register `ls` under its name and any aliases (case-insensitive).

    Validation happens when the LandmarkSet is built (ValueError naming the field); an
    existing name raises ValueError unless replace=True, so built-in tables are not
    clobbered by accident.
    """
    if not isinstance(ls, LandmarkSet):
        raise TypeError(f'expected a LandmarkSet, got {type(ls).__name__}')
    ls._validate()
    keys = [k.lower() for k in (ls.name, *aliases)]
    taken = [k for k in keys if k in _REGISTRY]
    if taken and not replace:
        raise ValueError(f'landmark set name(s) already registered: {taken}')
    for k in keys:
        _REGISTRY[k] = ls
    return ls


def get_landmark_set(name) -> LandmarkSet:
    """Look up by name, case-insensitively ('data_300W' and 'WFLW' work as in the configs).

    A LandmarkSet passed in is returned unchanged, so callers may take either.
    """
    if isinstance(name, LandmarkSet):
        return name
    try:
        return _REGISTRY[str(name).lower()]
    except KeyError:
        raise KeyError(f'unknown landmark set {name!r}; known: {sorted(_REGISTRY)}') from None


def _ints(s: str) -> tuple:
    return tuple(int(v) for v in s.split())


# --- built-in sets (spec 10.1 flip tables, spec 15 norm indices) ---------------------------

register_landmark_set(LandmarkSet(
    '300w', 68,
    _ints('16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 26 25 24 23 22 21 20 19 18 17 27 28 29 30 '
          '35 34 33 32 31 45 44 43 42 47 46 39 38 37 36 41 40 54 53 52 51 50 49 48 59 58 57 '
          '56 55 64 63 62 61 60 67 66 65'),
    norm_indices=(36, 45),  # outer eye corners
    pupil_groups=(tuple(range(36, 42)), tuple(range(42, 48))),  # the six points of each eye
), 'data_300w', '300w_celeba', 'data_300w_celeba', '300w_cofw_wflw', 'data_300w_cofw_wflw')

register_landmark_set(LandmarkSet(
    'wflw', 98,
    _ints('32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 '
          '2 1 0 46 45 44 43 42 50 49 48 47 37 36 35 34 33 41 40 39 38 51 52 53 54 59 58 57 56 '
          '55 72 71 70 69 68 75 74 73 64 63 62 61 60 67 66 65 82 81 80 79 78 77 76 87 86 85 84 '
          '83 92 91 90 89 88 95 94 93 97 96'),
    norm_indices=(60, 72),  # outer eye corners
    pupil_groups=((96,), (97,)),  # WFLW annotates the pupils directly
))

register_landmark_set(LandmarkSet(
    'cofw', 29,
    _ints('1 0 3 2 6 7 4 5 9 8 11 10 14 15 12 13 17 16 19 18 20 21 23 22 24 25 26 27 28'),
    norm_indices=(8, 9),  # HRNet convention
    # Unsure: 16/17 taken as the pupils of the 29-pt (RCPR) scheme; they are a flip pair.
    pupil_groups=((16,), (17,)),
))

register_landmark_set(LandmarkSet(
    'aflw', 19,
    _ints('5 4 3 2 1 0 11 10 9 8 7 6 14 13 12 17 16 15 18'),
    norm_indices=None,  # original evaluation divides by 1 (box-normalised frame)
    # Unsure: 7/10 taken as the eye centres (middle of each 3-point eye group 6-8 / 9-11).
    pupil_groups=((7,), (10,)),
))

register_landmark_set(LandmarkSet(
    'lapa', 106,
    tuple(range(32, -1, -1)) + _ints(
        '46 45 44 43 42 50 49 48 47 37 36 35 34 33 41 40 39 38 51 52 53 54 65 64 63 62 61 60 '
        '59 58 57 56 55 79 78 77 76 75 82 81 80 83 70 69 68 67 66 73 72 71 74 90 89 88 87 86 '
        '85 84 95 94 93 92 91 100 99 98 97 96 103 102 101 105 104'),
    norm_indices=(66, 79),
    pupil_groups=((104,), (105,)),  # the last flip pair; taken to be the pupils
))


# --- WFLW-98 -> 68 (spec 11.6 convert_wflw, reproduced literally) ---------------------------

def wflw98_to_68(landmarks):
    """Map (..., 98, 2) WFLW landmarks to the (..., 68, 2) 300W scheme.

    Reproduces preprocess_gssl.convert_wflw exactly, including eye weights 0.666/0.333
    that sum to 0.999 (so converted labels match the reference files). Works on numpy
    and jax arrays; returns the same kind.
    """
    # the array's own namespace (jax.numpy for a jax.Array) keeps this module free of JAX
    xp = landmarks.__array_namespace__() if hasattr(landmarks, '__array_namespace__') else np
    lm = xp.asarray(landmarks)
    if lm.ndim < 2 or lm.shape[-2:] != (98, 2):
        raise ValueError(f'landmarks: expected shape (..., 98, 2), got {tuple(lm.shape)}')
    x, y = lm[..., 0], lm[..., 1]

    def copy(i):
        return lm[..., i, :]

    def brow(i, j):  # keep x of the upper brow point, average y with the lower one
        return xp.stack([x[..., i], (y[..., i] + y[..., j]) / 2], axis=-1)

    def eye(i, j):  # eyelid point pulled a third of the way toward the middle lid point
        return 0.666 * lm[..., i, :] + 0.333 * lm[..., j, :]

    pts = ([copy(i) for i in range(0, 33, 2)]                    # jaw 0..16
           + [copy(33)] + [brow(i, 75 - i) for i in range(34, 38)]  # left brow 17..21
           + [brow(i, 92 - i) for i in range(42, 46)] + [copy(46)]  # right brow 22..26
           + [copy(i) for i in range(51, 60)]                    # nose 27..35
           + [copy(60), eye(61, 62), eye(63, 62), copy(64), eye(65, 66), eye(67, 66)]
           + [copy(68), eye(69, 70), eye(71, 70), copy(72), eye(73, 74), eye(75, 74)]
           + [copy(i) for i in range(76, 96)])                   # mouth 48..67
    return xp.stack(pts, axis=-2)


def landmark_set_for_points(num_points: int):
    """The built-in landmark set with `num_points` points (98 WFLW, 68 300W, 29 COFW, 19 AFLW,
    106 LaPa), for workdirs whose config.json predates the data.landmarks field; None if none."""
    for name in ("wflw", "300w", "cofw", "aflw", "lapa"):
        if name in _REGISTRY and _REGISTRY[name].num_points == num_points:
            return _REGISTRY[name]
    return None

