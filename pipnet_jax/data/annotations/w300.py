"""300W (spec 11.1): the folder tree of images with iBUG .pts files, and the .pts reader."""
import os

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.records import (FaceRecord, check_points, collect, pair_files,
                                                 parse_numbers)
from pipnet_jax.landmarks import get_landmark_set

SPLITS_300W = {  # folder order as the original iterates them (spec 11.1)
    'train': ('afw', 'helen/trainset', 'lfpw/trainset'),
    'common': ('helen/testset', 'lfpw/testset'),
    'challenge': ('ibug',),
    'full': ('helen/testset', 'lfpw/testset', 'ibug')}


def read_pts(path, num_points=None):
    """An iBUG .pts file ('version: 1', 'n_points: N', '{', N lines 'x y', '}') -> (N, 2)."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    n_header, start = None, None
    for i, line in enumerate(lines):
        s = line.strip()
        if s == '{':
            start = i + 1
            break
        key, _, value = s.partition(':')
        if key.strip() == 'n_points':
            try:
                n_header = int(value)
            except ValueError:
                raise AnnotationError(f'{path}:{i + 1}: cannot read n_points from {s!r}') from None
    if start is None:
        raise AnnotationError(f"{path}:{len(lines)}: no '{{' line opening the points")
    points, end = [], None
    for i in range(start, len(lines)):
        tok = lines[i].split()
        if tok == ['}']:
            end = i + 1
            break
        if not tok:
            continue
        if len(tok) != 2:
            raise AnnotationError(f'{path}:{i + 1}: expected 2 numbers (x y), '
                                  f'got {len(tok)} fields')
        points.append(parse_numbers(tok, f'{path}:{i + 1}'))
    if end is None:
        raise AnnotationError(f"{path}:{len(lines)}: no closing '}}' (truncated file?)")
    points = np.array(points, np.float64).reshape(-1, 2)
    if n_header is not None and len(points) != n_header:
        raise AnnotationError(f'{path}:{end}: header says n_points: {n_header}, '
                              f'found {len(points)} points')
    if num_points is not None and len(points) != num_points:
        raise AnnotationError(f'{path}: expected {num_points} points, got {len(points)}')
    return points


def read_300w(root, split, *, on_error='raise'):
    """300W tree (afw, helen/{trainset,testset}, lfpw/{trainset,testset}, ibug; images with
    same-named .pts) -> Records of `split`: train (3148), common (554), challenge (135), full
    (689). Order and names as the original: folders in SPLITS_300W order, files sorted."""
    if split not in SPLITS_300W:
        raise ValueError(f'300W split must be one of {sorted(SPLITS_300W)}, got {split!r}')
    n = get_landmark_set('300w').num_points
    entries = []
    for folder in SPLITS_300W[split]:
        d = os.path.join(root, folder)
        entries += [(folder, d, image, pts) for image, pts in pair_files(d, d, '.pts')]

    def build(i, folder, d, image, pts):
        if pts is None:
            raise AnnotationError(f'{os.path.join(d, image)}: no .pts file for this image')
        pts_path = os.path.join(d, pts)
        if image is None:
            raise AnnotationError(f'{pts_path}: image not found (no image file named '
                                  f'{os.path.splitext(pts)[0]}.* next to it)')
        landmarks = read_pts(pts_path)
        check_points(landmarks, n, pts_path, '300W')
        return FaceRecord(os.path.join(d, image), None, landmarks, source=pts_path,
                          dataset='300w', name=f'{folder}/{image}', index=i)
    return collect(((i, *e) for i, e in enumerate(entries)), build, f'300W {split} in {root}',
                    on_error)
