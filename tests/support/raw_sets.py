"""Tiny fabricated raw data sets (the files the builders read) and what the builders store
of a crop; shared by the test modules."""
import cv2
import numpy as np
import pytest

from pipnet_jax.data import synthetic
from pipnet_jax.data.annotations import WFLW_SUBSET_FILES


def raw_set(root, num_train, num_test, seed=0):
    """A synthetic data set in WFLW's raw layout (images + rect/attribute lists) -> root."""
    return synthetic.write_wflw_dataset(root, num_train, num_test, seed=seed, workers=1)


def add_wflw_subset_lists(root):
    """WFLW_annotations/list_98pt_test/ of a raw_set: every test face in each of the six
    attribute lists (x0 y0 ... x97 y97 image_name), which a pipnet_wflw build needs."""
    lines = synthetic.annotation_file(root, 'test').read_text().splitlines()
    text = ''.join(' '.join(tok[:196] + [tok[206]]) + '\n' for tok in map(str.split, lines))
    folder = root / 'WFLW_annotations' / 'list_98pt_test'
    folder.mkdir(parents=True, exist_ok=True)
    for name in WFLW_SUBSET_FILES.values():
        (folder / name).write_text(text)
    return root


def write_matlab_v73(path, variables):
    """A MATLAB v7.3 file the way MATLAB lays it out: HDF5 with a 512-byte header userblock,
    every array stored transposed (column-major), a cell array as a dataset of object
    references to datasets under '#refs#' (with MATLAB_class attributes). Simplified: no
    MATLAB_empty handling, uint8 images only."""
    h5py = pytest.importorskip('h5py')
    with h5py.File(path, 'w', userblock_size=512) as f:
        refs = f.create_group('#refs#')
        for name, value in variables.items():
            if isinstance(value, list):  # a column cell array of images
                cells = np.empty((1, len(value)), h5py.ref_dtype)
                for i, image in enumerate(value):
                    ds = refs.create_dataset(f'{name}_{i}', data=image.T)
                    ds.attrs['MATLAB_class'] = np.bytes_('uint8')
                    cells[0, i] = ds.ref
                ds = f.create_dataset(name, data=cells)
                ds.attrs['MATLAB_class'] = np.bytes_('cell')
            else:
                ds = f.create_dataset(name, data=np.asarray(value, np.float64).T)
                ds.attrs['MATLAB_class'] = np.bytes_('double')
    with open(path, 'r+b') as f:
        f.write(b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 '
                b'HDF5 schema 1.00 .'.ljust(116) + bytes(8) + b'\x00\x02IM')


def write_cofw(root, num_train=3, num_test=2, seed=0):
    """COFW_train_color.mat and COFW_test_color.mat under root: colour and grey random images
    (faces vary in size), 29-point labels, x y w h boxes, one reaching past the image edge."""
    rng = np.random.default_rng(seed)
    for fname, prefix, n in (('COFW_train_color.mat', 'Tr', num_train),
                             ('COFW_test_color.mat', 'T', num_test)):
        images, phis, boxes = [], np.zeros((n, 87)), []
        for i in range(n):
            h, w = rng.integers(60, 100, 2)
            shape = (h, w, 3) if i % 2 == 0 else (h, w)
            images.append(rng.integers(0, 255, shape, np.uint8))
            x, y = rng.uniform(-5, w / 3), rng.uniform(0, h / 3)  # x < 0: clamped
            bw, bh = rng.uniform(w / 3, w / 2), rng.uniform(h / 3, h / 2)
            boxes.append([x, y, bw, bh])
            phis[i, :29] = rng.uniform(x, x + bw, 29)
            phis[i, 29:58] = rng.uniform(y, y + bh, 29)
        write_matlab_v73(root / fname, {f'Is{prefix}': images, f'bboxes{prefix}': np.array(boxes),
                                        f'phis{prefix}': phis})
    return root


def jpeg_round_trip(rgb):
    """What the builder stores for a crop, decoded as cv2 (= the original's PIL) would."""
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
