"""pipnet_jax.data.builders: TFDS builds of the synthetic set and of the real WFLW subset, and
what happens on bad input (truncated image, wrong point count)."""
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
from test_annotations import recover_rect

WFLW_SPLITS = {'train', 'test'} | {f'test_{a}' for a in A.WFLW_ATTRIBUTES}


def examples(name, split, data_dir):
    return list(B.load(name, split, data_dir).as_numpy_iterator())


def raw_set(root, num_train, num_test, seed=0):
    return synthetic.write_wflw_dataset(root, num_train, num_test, seed=seed, workers=1)


def jpeg_round_trip(rgb):
    """What the builder stores for a crop, decoded as cv2 (= the original's PIL) would."""
    ok, buf = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


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
def wflw_build(shared_data, tmp_path_factory):
    """WFLW-format annotation files for the 206 shared test faces (rect recovered from the
    recorded crop box), images read from the shared folder in place."""
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
