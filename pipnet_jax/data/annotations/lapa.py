"""LaPa (spec 11.5): {split}/images with {split}/landmarks/*.txt of 106 points."""
import os

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.records import (FaceRecord, collect, pair_files, parse_numbers,
                                                 text_lines)
from pipnet_jax.landmarks import get_landmark_set


def read_lapa(root, split, *, on_error='raise'):
    """LaPa tree: {split}/images/*.jpg with {split}/landmarks/*.txt (first line 106, then
    106 lines 'x y'), paired by name, in sorted image order."""
    if split not in ('train', 'val', 'test'):
        raise ValueError(f"LaPa split must be 'train', 'val' or 'test', got {split!r}")
    n = get_landmark_set('lapa').num_points
    image_dir, ann_dir = os.path.join(root, split, 'images'), os.path.join(root, split, 'landmarks')

    def build(i, image, ann):
        if ann is None:
            raise AnnotationError(f'{os.path.join(image_dir, image)}: no landmark file '
                                  f'{os.path.splitext(image)[0]}.txt in {ann_dir}')
        path = os.path.join(ann_dir, ann)
        if image is None:
            raise AnnotationError(f'{path}: image not found in {image_dir}')
        lines = text_lines(path)
        if not lines or len(lines[0][1]) != 1 or not lines[0][1][0].isdigit():
            raise AnnotationError(f'{lines[0][0] if lines else path + ":1"}: expected the point '
                                  f'count alone on the first line')
        count = int(lines[0][1][0])
        if count != n:
            raise AnnotationError(f'{lines[0][0]}: expected {n} points for LaPa, file says {count}')
        for src, tok in lines[1:]:
            if len(tok) != 2:
                raise AnnotationError(f'{src}: expected 2 numbers (x y), got {len(tok)} fields')
        if len(lines) - 1 != count:
            raise AnnotationError(f'{path}: first line says {count} points, found {len(lines) - 1}')
        landmarks = np.stack([parse_numbers(tok, src) for src, tok in lines[1:]])
        return FaceRecord(os.path.join(image_dir, image), None, landmarks, source=path,
                          dataset='lapa', name=image, index=i)
    pairs = pair_files(image_dir, ann_dir, '.txt')
    return collect(((i, *p) for i, p in enumerate(pairs)), build, f'LaPa {split} in {root}',
                    on_error)
