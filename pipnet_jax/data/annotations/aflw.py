"""AFLW-Full (spec 11.4): AFLWinfo_release.mat with the image names, boxes, 19 points and the
train/test permutation."""
import os

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.matlab import load_mat, mat_str
from pipnet_jax.data.annotations.records import FaceRecord, collect, parse_numbers
from pipnet_jax.landmarks import get_landmark_set


def read_aflw(mat_file, images_dir, split, *, num_train=20000, on_error='raise',
              check_images=True):
    """AFLWinfo_release.mat (AFLW-Full): `bbox` rows x1 x2 y1 y2, `data` rows 19 x then 19 y,
    `ra` a 1-based permutation whose first `num_train` entries are train and the rest test,
    `nameList` image paths relative to images_dir (AFLW/flickr). Order follows `ra`."""
    if split not in ('train', 'test'):
        raise ValueError(f"AFLW split must be 'train' or 'test', got {split!r}")
    mat = load_mat(mat_file)
    names_key = 'nameList' if 'nameList' in mat else 'name_list'
    missing = [k for k in ('bbox', 'data', 'ra', names_key) if k not in mat]
    if missing:
        raise AnnotationError(f'{mat_file}: missing variables {missing}')
    n = get_landmark_set('aflw').num_points
    boxes = np.atleast_2d(np.asarray(mat['bbox'], np.float64))
    data = np.atleast_2d(np.asarray(mat['data'], np.float64))
    names = np.asarray(mat[names_key], object).reshape(-1)
    ra = np.asarray(mat['ra']).reshape(-1)
    m = len(names)
    if boxes.shape != (m, 4) or data.shape != (m, 2 * n):
        raise AnnotationError(f'{mat_file}: {m} names but bbox {boxes.shape} and data '
                              f'{data.shape} (expected ({m}, 4) and ({m}, {2 * n}))')
    order = ra[:num_train] if split == 'train' else ra[num_train:]

    def build(k):
        if not (float(k).is_integer() and 1 <= k <= m):
            raise AnnotationError(f'{mat_file}: ra entry {k!r} is not an index in 1..{m}')
        i = int(k) - 1
        src = f'{mat_file}:{i + 1}'
        values = parse_numbers(np.concatenate([data[i], boxes[i]]), src)
        x1, x2, y1, y2 = values[2 * n:]
        name = mat_str(names[i])
        return FaceRecord(os.path.join(images_dir, name), (x1, y1, x2, y2),
                          np.stack([values[:n], values[n:2 * n]], 1), source=src,
                          dataset='aflw', name=name, index=i)
    return collect(((k,) for k in order), build, mat_file, on_error, check_images)
