"""pipnet_jax.data.builders: TFDS builds of the synthetic set, of the real WFLW subset (98
points, and WFLW-68), of a fabricated COFW-68, and what happens on bad input (truncated image,
wrong point count, missing COFW-68 files)."""
import dataclasses
import logging
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cv2
import numpy as np
import pytest
import tensorflow as tf

import tf_threads  # noqa: F401,E402  (thread limits before the first TF op)

from pipnet_jax.data import annotations as A
from pipnet_jax.data import builders as B
from pipnet_jax.data import synthetic
from raw_sets import jpeg_round_trip, raw_set, write_matlab_v73
from test_annotations import recover_rect

WFLW_SPLITS = {'train', 'test'} | {f'test_{a}' for a in A.WFLW_ATTRIBUTES}


def examples(name, split, data_dir):
    return list(B.load(name, split, data_dir).as_numpy_iterator())


# --- synthetic ---------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def synthetic_build(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp('tfds')
    raw = raw_set(data_dir / 'raw', 24, 8)
    return data_dir, raw, B.build('pipnet_synthetic', data_dir, raw)


def test_synthetic_features_and_counts(synthetic_build):
    data_dir, raw, builder = synthetic_build
    info = B.builder('pipnet_synthetic', data_dir).info  # read back without the raw files
    assert {s: info.splits[s].num_examples for s in info.splits} == {'train': 24, 'test': 8}
    assert info.features['image'].shape == (256, 256, 3)
    assert info.features['landmarks'].shape == (98, 2)
    assert info.features['landmarks'].dtype == np.float32
    assert info.features['attributes'].shape == (6,)
    assert info.metadata['skipped'] == {'train': 0, 'test': 0}
    assert info.metadata['landmark_set'] == 'wflw' and info.metadata['crop'] == 'wflw'


@pytest.mark.parametrize('split', ['train', 'test'])
def test_synthetic_examples_match_crop_face(synthetic_build, split):
    data_dir, raw, _ = synthetic_build
    records = A.read_wflw(synthetic.annotation_file(raw, split), raw / 'WFLW_images')
    got = examples('pipnet_synthetic', split, data_dir)
    assert len(got) == len(records)
    for ex, record in zip(got, records):  # stored in source order
        crop, landmarks = A.crop_face(None, record, 'wflw')
        assert ex['image'].dtype == np.uint8 and ex['image'].shape == (256, 256, 3)
        assert ex['landmarks'].dtype == np.float32 and ex['landmarks'].shape == (98, 2)
        np.testing.assert_allclose(ex['landmarks'], landmarks, rtol=0, atol=1e-6)
        # The JPEG decodes bit-exactly as cv2 decodes cv2's encoding of the same crop.
        np.testing.assert_array_equal(ex['image'], jpeg_round_trip(crop))
        assert ex['attributes'].dtype == np.int8
        assert ex['attributes'].tolist() == [record.attributes[a] for a in B.ATTRIBUTE_NAMES]
        assert ex['image_id'].decode() == f'{record.name}#{record.index}'


def test_prepare_synthetic_reuses_and_rebuilds(tmp_path):
    first = B.prepare_synthetic(tmp_path, 4, 2, seed=1)
    record = next(first.data_path.glob('*train.tfrecord*'))
    stamp = os.stat(record).st_mtime_ns
    again = B.prepare_synthetic(tmp_path, 4, 2, seed=1)
    assert os.stat(next(again.data_path.glob('*train.tfrecord*'))).st_mtime_ns == stamp
    before = examples('pipnet_synthetic', 'test', tmp_path)
    other = B.prepare_synthetic(tmp_path, 4, 2, seed=2)  # new raw set: stale build replaced
    assert other.info.splits['train'].num_examples == 4
    after = examples('pipnet_synthetic', 'test', tmp_path)
    assert not np.array_equal(before[0]['landmarks'], after[0]['landmarks'])


# --- WFLW, real subset -------------------------------------------------------------------------

@pytest.fixture(scope='module')
def wflw_manual(shared_data, tmp_path_factory):
    """A raw WFLW folder: WFLW-format annotation files for the 206 shared test faces (rect
    recovered from the recorded crop box); the images stay in the shared folder (give
    images_dir=<shared>/wflw_subset/WFLW_images). Returns (folder, faces, test lines)."""
    root = shared_data / 'wflw_subset'
    faces = (root / 'annotations' / 'wflw_test_subset_faces.txt').read_text().splitlines()
    lines = []
    for line in faces:
        tok = line.split()
        rect, _ = recover_rect(tuple(map(float, tok[196:200])), int(tok[208]), int(tok[209]))
        lines.append(' '.join(tok[:196] + [repr(v) for v in rect] + tok[200:206] + [tok[210]]))
    manual = tmp_path_factory.mktemp('wflw_manual')
    ann_dir = manual / 'WFLW_annotations' / 'list_98pt_rect_attr_train_test'
    ann_dir.mkdir(parents=True)
    (ann_dir / 'list_98pt_rect_attr_test.txt').write_text('\n'.join(lines) + '\n')
    # No train faces are shared; a few test faces stand in so that the split exists.
    (ann_dir / 'list_98pt_rect_attr_train.txt').write_text('\n'.join(lines[:3]) + '\n')
    return manual, faces, lines


@pytest.fixture(scope='module')
def wflw_build(shared_data, wflw_manual, tmp_path_factory):
    """pipnet_wflw built from wflw_manual."""
    root = shared_data / 'wflw_subset'
    manual, faces, _ = wflw_manual
    data_dir = tmp_path_factory.mktemp('wflw_tfds')
    B.build('pipnet_wflw', data_dir, manual, images_dir=root / 'WFLW_images',
            subset_dir=root / 'annotations')
    return data_dir, faces


def test_wflw_test_and_subset_splits(wflw_build):
    data_dir, faces = wflw_build
    info = B.builder('pipnet_wflw', data_dir).info
    assert set(info.splits) == WFLW_SPLITS
    test = examples('pipnet_wflw', 'test', data_dir)
    assert len(test) == 206 and info.splits['train'].num_examples == 3
    flags = np.array([ex['attributes'] for ex in test])
    np.testing.assert_array_equal(flags, [list(map(int, f.split()[200:206])) for f in faces])
    by_id = {ex['image_id']: ex for ex in test}
    assert len(by_id) == 206
    for k, attr in enumerate(A.WFLW_ATTRIBUTES):
        subset = examples('pipnet_wflw', f'test_{attr}', data_dir)
        # Matching by key against the official lists == the faces whose flag is set.
        assert len(subset) == flags[:, k].sum() > 0, attr
        for ex in subset:
            assert by_id[ex['image_id']]['attributes'][k] == 1
            np.testing.assert_array_equal(ex['landmarks'], by_id[ex['image_id']]['landmarks'])


def test_wflw_crops_match_the_original(wflw_build, wflw_crops):
    data_dir, _ = wflw_build
    test = examples('pipnet_wflw', 'test', data_dir)[:len(wflw_crops[0])]
    for ex, crop, landmarks in zip(test, *wflw_crops):
        np.testing.assert_allclose(ex['landmarks'], landmarks, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(ex['image'], jpeg_round_trip(crop))


# --- WFLW-68 and COFW-68 (the GSSL cross-domain test sets, spec 11.6) --------------------------

def spec_wflw98_to_68(p):
    """Spec 11.6's convert_wflw, point by point (WFLW 0-based indices), on (98, 2) labels."""
    def brow(i, j):  # x of i, mean y of i and j
        return [p[i, 0], (p[i, 1] + p[j, 1]) / 2]

    def eye(i, j):
        return 0.666 * p[i] + 0.333 * p[j]
    out = [p[i] for i in (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32)]
    out += [p[33], brow(34, 41), brow(35, 40), brow(36, 39), brow(37, 38)]
    out += [brow(42, 50), brow(43, 49), brow(44, 48), brow(45, 47), p[46]]
    out += [p[i] for i in range(51, 60)]
    out += [p[60], eye(61, 62), eye(63, 62), p[64], eye(65, 66), eye(67, 66)]
    out += [p[68], eye(69, 70), eye(71, 70), p[72], eye(73, 74), eye(75, 74)]
    out += [p[i] for i in range(76, 96)]
    return np.array(out, np.float64)


def test_wflw68_gssl_crop_then_68_points(shared_data, wflw_manual, tmp_path):
    manual, _, lines = wflw_manual
    images_dir = shared_data / 'wflw_subset' / 'WFLW_images'
    B.build('pipnet_wflw68', tmp_path, manual, images_dir=images_dir)
    info = B.builder('pipnet_wflw68', tmp_path).info
    assert set(info.splits) == {'test'} and info.features['landmarks'].shape == (68, 2)
    assert (info.metadata['landmark_set'], info.metadata['crop']) == ('300w', 'wflw_gssl')
    got = examples('pipnet_wflw68', 'test', tmp_path)
    assert len(got) == len(lines) == 206
    for ex, line in zip(got, lines):
        tok = line.split()
        image = cv2.imread(str(images_dir / tok[206]))
        height, width = image.shape[:2]
        # Spec 11.6 (the original's arithmetic): rect grown 1.2 wide, top moved down, clamped.
        xmin, ymin, xmax, ymax = map(float, tok[196:200])
        w, h = xmax - xmin, ymax - ymin
        xmin, ymin = max(xmin - w * (1.2 - 1) / 2, 0), max(ymin + h * (1.2 - 1) / 2, 0)
        xmax, ymax = min(xmax + w * (1.2 - 1) / 2, width - 1), min(ymax + h * (1.2 - 1) / 2, height - 1)
        points = np.clip(np.array(tok[:196], np.float64).reshape(98, 2), 0, [width, height])
        normalised = (points - [xmin, ymin]) / [xmax - xmin, ymax - ymin]
        # Converted after normalising: weights summing to 0.999 make the order matter.
        np.testing.assert_allclose(ex['landmarks'], spec_wflw98_to_68(normalised), rtol=0,
                                   atol=1e-6, err_msg=tok[206])
        crop = cv2.resize(image[int(ymin):int(ymax), int(xmin):int(xmax)], (256, 256))
        np.testing.assert_array_equal(ex['image'], jpeg_round_trip(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)))
    # Converting the pixel coordinates first would move the eye points by ~0.001 xmin / w.
    pixel_first = (spec_wflw98_to_68(points) - [xmin, ymin]) / [xmax - xmin, ymax - ymin]
    assert np.abs(pixel_first - ex['landmarks']).max() > 1e-4
    # The 98-point WFLW attributes are kept.
    assert [ex['attributes'].tolist() for ex in got] == [list(map(int, line.split()[200:206]))
                                                         for line in lines]


def write_cofw68(root):
    """A fabricated COFW-68 raw folder: COFW_test_color.mat (v7.3: a colour and a grey image,
    with 29-point labels and boxes that must not be used), cofw68_test_bboxes.mat and
    cofw68_test_annotations/{k}_points.mat (v5, scipy). Returns (images RGB, boxes, points)."""
    import scipy.io
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (90, 80, 3), np.uint8), rng.integers(0, 255, (100, 120), np.uint8)]
    boxes = np.array([[20.5, 15.25, 41.0, 52.5], [-3.0, 30.0, 110.0, 80.0]])  # x y w h; 2nd clamped
    points = [np.stack([rng.uniform(0, im.shape[1], 68), rng.uniform(0, im.shape[0], 68)], 1)
              for im in images]
    points[1][0] = (-4.0, 20.0)  # outside the image: kept as it is (no clipping for COFW)
    phis = np.tile(np.r_[np.linspace(30, 50, 29), np.linspace(30, 60, 29), np.zeros(29)], (2, 1))
    write_matlab_v73(root / 'COFW_test_color.mat', {'IsT': images, 'phisT': phis,
                                                    'bboxesT': np.tile([1.0, 2.0, 30.0, 30.0], (2, 1))})
    scipy.io.savemat(root / 'cofw68_test_bboxes.mat', {'bboxes': boxes})
    (root / 'cofw68_test_annotations').mkdir()
    for k, p in enumerate(points, 1):
        scipy.io.savemat(root / 'cofw68_test_annotations' / f'{k}_points.mat',
                         {'Points': p, 'Occ': np.zeros((68, 1))})
    rgb = [im if im.ndim == 3 else np.repeat(im[..., None], 3, 2) for im in images]
    return rgb, boxes, points


def test_cofw68_boxes_and_points(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    images, boxes, points = write_cofw68(raw)
    B.build('pipnet_cofw68', tmp_path / 'tfds', raw)
    info = B.builder('pipnet_cofw68', tmp_path / 'tfds').info
    assert (info.metadata['landmark_set'], info.metadata['crop']) == ('300w', 'cofw_gssl')
    got = examples('pipnet_cofw68', 'test', tmp_path / 'tfds')
    assert [ex['image_id'].decode() for ex in got] == ['cofw_test_0001.jpg#0', 'cofw_test_0002.jpg#1']
    for ex, image, (x, y, w, h), p in zip(got, images, boxes, points):
        # preprocess_gssl.process_cofw_68_test: inclusive box grown 1.3, clamped; raw points.
        height, width = image.shape[:2]
        xmin, ymin, xmax, ymax = x - w * (1.3 - 1) / 2, y - h * (1.3 - 1) / 2, x + w - 1, y + h - 1
        xmax, ymax = xmax + w * (1.3 - 1) / 2, ymax + h * (1.3 - 1) / 2
        xmin, ymin, xmax, ymax = max(xmin, 0), max(ymin, 0), min(xmax, width - 1), min(ymax, height - 1)
        np.testing.assert_allclose(ex['landmarks'], (p - [xmin, ymin]) / [xmax - xmin, ymax - ymin],
                                   rtol=0, atol=1e-6)
        crop = cv2.resize(image[int(ymin):int(ymax), int(xmin):int(xmax)], (256, 256))
        np.testing.assert_array_equal(ex['image'], jpeg_round_trip(crop))
    assert got[1]['landmarks'][0, 0] < 0  # a point outside the image is kept as it is


def test_cofw68_missing_files_and_counts(tmp_path):
    import scipy.io
    raw = tmp_path / 'raw'
    raw.mkdir()
    _, boxes, _ = write_cofw68(raw)
    missing = raw / 'cofw68_test_annotations' / '2_points.mat'
    missing.unlink()
    with pytest.raises(A.AnnotationError, match=rf'{missing}: not found; expected the 68 points'):
        B.build('pipnet_cofw68', tmp_path / 'a', raw)
    B.build('pipnet_cofw68', tmp_path / 'b', raw, on_error='skip')
    assert B.builder('pipnet_cofw68', tmp_path / 'b').info.metadata['skipped'] == {'test': 1}
    scipy.io.savemat(raw / 'cofw68_test_bboxes.mat', {'bboxes': boxes[:1]})
    with pytest.raises(A.AnnotationError, match=r'cofw68_test_bboxes.mat: bboxes has shape '
                                                r'\(1, 4\), expected \(2, 4\)'):
        B.build('pipnet_cofw68', tmp_path / 'c', raw)


# --- bad input ---------------------------------------------------------------------------------

@pytest.fixture
def truncated_raw(tmp_path):
    raw = raw_set(tmp_path / 'raw', 4, 2)
    image = raw / 'WFLW_images' / 'synthetic' / 'train_00002.jpg'
    data = image.read_bytes()
    image.write_bytes(data[:len(data) // 2])
    return raw, image


def test_truncated_image_raises_naming_file_and_line(truncated_raw, tmp_path):
    raw, image = truncated_raw
    with pytest.raises(A.AnnotationError) as err:
        B.build('pipnet_synthetic', tmp_path / 'tfds', raw)
    assert str(image) in str(err.value)
    assert 'list_98pt_rect_attr_train.txt:2:' in str(err.value)
    assert not (tmp_path / 'tfds' / 'pipnet_synthetic' / 'default' / '1.0.0').exists()


def test_truncated_image_skipped_and_counted(truncated_raw, tmp_path, caplog):
    raw, image = truncated_raw
    with caplog.at_level(logging.WARNING):
        B.build('pipnet_synthetic', tmp_path / 'tfds', raw, on_error='skip')
    assert 'skipped 1 face' in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ds = B.load('pipnet_synthetic', 'train', tmp_path / 'tfds')  # reported again later
    assert "'train': 1" in caplog.text
    assert len(list(ds)) == 3
    meta = B.builder('pipnet_synthetic', tmp_path / 'tfds').info.metadata
    assert meta['skipped'] == {'train': 1, 'test': 0}
    assert str(image) in meta['skipped_examples']['train'][0]


def test_wrong_point_count_raises_naming_line(tmp_path):
    raw = raw_set(tmp_path / 'raw', 3, 2)
    path = synthetic.annotation_file(raw, 'test')
    lines = path.read_text().splitlines()
    tok = lines[1].split()
    lines[1] = ' '.join(tok[:194] + tok[196:])  # 97 points
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(A.AnnotationError, match=r'list_98pt_rect_attr_test.txt:2: expected 207'):
        B.build('pipnet_synthetic', tmp_path / 'tfds', raw)


def test_custom_txt_and_point_count(tmp_path):
    raw = raw_set(tmp_path / 'raw', 3, 2)
    records = A.read_wflw(synthetic.annotation_file(raw, 'train'), raw / 'WFLW_images')
    line = lambda r, n: ' '.join([r.name] + [repr(float(v)) for v in r.landmarks[:n].ravel()])
    (raw / 'train.txt').write_text('\n'.join(line(r, 98) for r in records) + '\n')
    (raw / 'test.txt').write_text(line(records[0], 98) + '\n' + line(records[1], 68) + '\n')
    opts = dict(images_dir='WFLW_images', landmark_set='wflw', annotation_format='txt')
    with pytest.raises(A.AnnotationError, match=r'test.txt:2: expected an image path and 196'):
        B.build('pipnet_custom', tmp_path / 'tfds', raw, **opts)
    (raw / 'test.txt').write_text(line(records[1], 98) + '\n')
    B.build('pipnet_custom', tmp_path / 'tfds', raw, config_name='mine', **opts)
    train = examples('pipnet_custom/mine', 'train', tmp_path / 'tfds')
    assert len(train) == 3 and train[0]['attributes'].tolist() == [-1] * 6
    no_box = dataclasses.replace(records[0], box=None)  # custom txt lines carry no box here
    _, expected = A.crop_face(None, no_box, 'custom')  # the landmarks' box grown 1.2
    np.testing.assert_allclose(train[0]['landmarks'], expected, rtol=0, atol=1e-6)


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match='unknown options'):
        B.build('pipnet_wflw', tmp_path, tmp_path, image_dir='x')
    with pytest.raises(ValueError, match='num_points=68'):
        B.build('pipnet_custom', tmp_path, tmp_path, landmark_set='wflw', num_points=68)
    with pytest.raises(ValueError, match='unknown data set'):
        B.build('pipnet_helen', tmp_path, tmp_path)
    with pytest.raises(FileNotFoundError, match='no built data set pipnet_300w/default'):
        B.load('pipnet_300w', 'train', tmp_path)
