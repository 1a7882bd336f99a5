"""STC data side: corpora (data.corpus), pseudo-label shards and manifest
(data.pseudo_labels), and the shifted synthetic style (data.synthetic style='b')."""
import itertools
import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import cv2
import numpy as np
import pytest
import tensorflow as tf

import tf_threads  # noqa: F401,E402  (thread limits before the first TF op)

from pipnet_jax.data import annotations as A
from pipnet_jax.data import augment, builders, synthetic
from pipnet_jax.data import pseudo_labels as P
from pipnet_jax.data.corpus import CorpusError, open_corpus
from pipnet_jax.data.pipeline import Source, train_batches
from pipnet_jax.files import TASKS

N = 98


def face(i, size=256, style='a'):
    """A smooth, realistic RGB test image (JPEG-friendly)."""
    img = synthetic.generate_face(np.random.default_rng([77, i]), (size, size), style)[0]
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def example(i, task='cls3', ident=None):
    rng = np.random.default_rng(i)
    return {'id': ident or f'img{i}', 'image': face(i),
            'landmarks': rng.uniform(0, 1, (N, 2)).astype(np.float32),
            'confidence': rng.uniform(0, 1, N).astype(np.float32), 'task': task}


def label_all(manifest, ids, bad=(), task='cls3'):
    """Labels every pending shard of `ids` with example(); ids in `bad` are skipped."""
    size = manifest.data['shard_size']
    for k in manifest.pending():
        skipped = []

        def examples():
            for i, ident in enumerate(ids[k * size:(k + 1) * size], k * size):
                if ident in bad:
                    skipped.append({'id': ident, 'reason': 'unreadable'})
                else:
                    yield example(i, task, ident)

        manifest.write(k, examples(), skipped)


def visible_files(directory):
    return sorted(os.listdir(directory))


# --- shards and manifest -----------------------------------------------------------------------

def test_round_trip(tmp_path):
    m = P.Manifest.open(tmp_path, 'teacher-1', {'kind': 'test'}, 3, 5)
    label_all(m, [f'img{i}' for i in range(5)])
    got = list(P.read_shards(tmp_path, decode=True).as_numpy_iterator())
    assert [g['id'].decode() for g in got] == [f'img{i}' for i in range(5)]  # corpus order
    for i, g in enumerate(got):
        want = example(i)
        np.testing.assert_array_equal(g['landmarks'], want['landmarks'])  # exact
        np.testing.assert_array_equal(g['confidence'], want['confidence'])
        assert g['task'] == b'cls3' and g['image_id'] == g['id']
        assert g['image'].dtype == np.uint8 and g['image'].shape == (256, 256, 3)
        # JPEG q95: within its error of the image, and decoded exactly as cv2 decodes it.
        assert np.abs(g['image'].astype(int) - want['image']).mean() < 6
        _, jpeg = cv2.imencode('.jpg', want['image'][..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        np.testing.assert_array_equal(g['image'], cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])
    raw = next(P.read_shards(tmp_path).as_numpy_iterator())['image']
    assert raw[:2] == b'\xff\xd8'  # JPEG bytes unless decode=True
    assert int(P.read_shards(tmp_path).cardinality()) == 5


def test_a_failed_write_leaves_no_file(tmp_path):
    def examples():
        yield example(0)
        yield example(1)
        raise RuntimeError('teacher crashed')

    with pytest.raises(RuntimeError, match='teacher crashed'):
        P.write_shard(tmp_path / 'pseudo-00000-of-00001.tfrecord', examples())
    assert visible_files(tmp_path) == []
    bad = dict(example(2), landmarks=np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match='landmarks'):
        P.write_shard(tmp_path / 'x.tfrecord', [example(0), bad])
    assert visible_files(tmp_path) == []


def test_manifest_resumes_refuses_another_teacher_and_relabels(tmp_path):
    ids = [f'img{i}' for i in range(7)]
    m = P.Manifest.open(tmp_path, 'teacher-1', {'kind': 'test'}, 3, 7)
    assert m.num_shards == 3 and m.pending() == [0, 1, 2]
    m.write(0, (example(i, ident=ids[i]) for i in range(3)))
    m.write(2, [example(6, ident=ids[6])])
    # A rerun (new object, as after a kill) skips the finished shards.
    again = P.Manifest.open(tmp_path, 'teacher-1', {'kind': 'test'}, 3, 7)
    assert again.pending() == [1] and not again.complete
    assert again.shards[2]['file'] == 'pseudo-00002-of-00003.tfrecord'
    with pytest.raises(ValueError, match='unfinished'):
        P.read_shards(tmp_path)
    assert int(P.read_shards(tmp_path, allow_partial=True).cardinality()) == 4
    # Items of an input shard must all be labelled or skipped.
    with pytest.raises(ValueError, match='input shard 1 has 3'):
        again.write(1, [example(3, ident=ids[3])])
    assert not again.shard_path(1).exists()
    # Another teacher, corpus or shard size is refused ...
    for args in (('teacher-2', {'kind': 'test'}, 3, 7), ('teacher-1', {'kind': 'other'}, 3, 7),
                 ('teacher-1', {'kind': 'test'}, 4, 7)):
        with pytest.raises(P.ManifestMismatch, match='relabel=True'):
            P.Manifest.open(tmp_path, *args)
    # ... unless relabelling, which starts over.
    new = P.Manifest.open(tmp_path, 'teacher-2', {'kind': 'test'}, 3, 7, relabel=True)
    assert new.pending() == [0, 1, 2] and visible_files(tmp_path) == [P.MANIFEST]
    assert json.loads((tmp_path / P.MANIFEST).read_text())['teacher'] == 'teacher-2'


def test_summary_totals_and_checks(tmp_path):
    ids = [f'img{i}' for i in range(7)]
    m = P.Manifest.open(tmp_path, 'teacher-1', {'kind': 'test'}, 3, 7)
    label_all(m, ids, bad={'img1', 'img6'})
    s = P.summary(tmp_path)
    assert s == {'teacher': 'teacher-1', 'total': 7, 'count': 5, 'skipped': 2,
                 'shards_done': 3, 'num_shards': 3, 'complete': True}
    assert m.shards[2] == {'index': 2, 'file': 'pseudo-00002-of-00003.tfrecord', 'count': 0,
                           'skipped': [{'id': 'img6', 'reason': 'unreadable'}],
                           'num_points': None, 'tasks': []}
    assert int(P.read_shards(tmp_path).cardinality()) == 5  # the empty shard is fine
    # An id labelled twice is caught.
    m.write(1, [example(3, ident='img0'), example(4, ident='img4'), example(5, ident='img5')])
    with pytest.raises(ValueError, match="'img0' occurs twice"):
        P.summary(tmp_path)


def test_source_carries_the_round_task(tmp_path):
    m = P.Manifest.open(tmp_path, 't', 'c', 4, 4)
    label_all(m, ['a', 'b', 'c', 'd'], task='cls2')
    source = P.as_source(tmp_path, weight=0.5)
    assert source.task == 'cls2' and source.weight == 0.5
    assert P.as_source(tmp_path, 'cls2').task == 'cls2'
    with pytest.raises(ValueError, match="not 'std'"):
        P.as_source(tmp_path, 'std')


# --- corpora -----------------------------------------------------------------------------------

def test_image_folder_corpus(tmp_path):
    root = tmp_path / 'crops'
    (root / 'sub').mkdir(parents=True)
    cv2.imwrite(str(root / 'b.jpg'), face(1, 200))
    cv2.imwrite(str(root / 'sub' / 'a.PNG'), face(2, 256))
    cv2.imwrite(str(root / 'a.png'), face(3, 96))
    (root / 'c.jpg').write_bytes(b'not an image')
    data = (root / 'b.jpg').read_bytes()
    (root / 'd.jpg').write_bytes(data[:len(data) // 2])  # truncated
    (root / 'notes.txt').write_text('ignored')
    corpus = open_corpus(root)
    assert corpus.ids == ['a.png', 'b.jpg', 'c.jpg', 'd.jpg', 'sub/a.PNG']
    assert corpus.description['kind'] == 'images' and corpus.description['count'] == 5
    assert corpus.num_shards(2) == 3
    assert [it.id for it in corpus.shard_items(2, 2)] == ['sub/a.PNG']
    with pytest.raises(IndexError):
        corpus.shard_items(3, 2)
    for it in corpus.shard_items(0, 2) + corpus.shard_items(2, 2):
        if it.id == 'c.jpg':
            continue
        img = corpus.load(it)
        assert img.dtype == np.uint8 and img.shape == (256, 256, 3)
    bgr = cv2.imread(str(root / 'sub' / 'a.PNG'))
    np.testing.assert_array_equal(corpus.load(4), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    for bad in (2, 3):
        with pytest.raises(CorpusError, match=f'{corpus.ids[bad]}: .*{root / corpus.ids[bad]}'):
            corpus.load(bad)
    assert open_corpus(images=str(root)).ids == corpus.ids
    with pytest.raises(ValueError, match='not understood'):
        open_corpus({'images': root, 'split': 'train'})


def test_box_list_corpus(tmp_path):
    images = tmp_path / 'img_celeba'
    images.mkdir()
    big = [np.concatenate([face(i, 240), face(i + 10, 240)], 1) for i in range(2)]
    for i, img in enumerate(big):
        cv2.imwrite(str(images / f'{i:06d}.png'), img)  # lossless: exact comparison
    (tmp_path / 'boxes.txt').write_text(
        '000000.png 30 40 200 230\n000001.png 250 10 470 220\n000001.png 0 0 100 100\n'
        'missing.jpg 10 10 50 50\n000000.png 900 900 950 950\n')
    corpus = open_corpus({'boxes': tmp_path / 'boxes.txt', 'images': images})
    assert corpus.ids == ['000000.png#0', '000001.png#0', '000001.png#1', 'missing.jpg',
                          '000000.png#1']
    boxes = [(30, 40, 200, 230), (250, 10, 470, 220), (0, 0, 100, 100)]
    for it, box in zip(corpus.shard_items(0, 3), boxes):
        record = A.FaceRecord(str(images / it.id.split('#')[0]), box, np.zeros((0, 2)))
        want, _ = A.crop_face(cv2.cvtColor(cv2.imread(record.image_path), cv2.COLOR_BGR2RGB),
                              record, 'celeba_gssl')
        np.testing.assert_array_equal(corpus.load(it), want)
    with pytest.raises(CorpusError, match=r'boxes.txt:4: .*missing\.jpg'):
        corpus.load(3)
    with pytest.raises(CorpusError, match=r'boxes.txt:5: .*empty'):  # box outside the image
        corpus.load(4)


@pytest.fixture(scope='module')
def synthetic_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp('tfds')
    builders.prepare_synthetic(data_dir, 6, 2, seed=3, workers=1)
    return data_dir


def test_tfds_corpus(synthetic_dir):
    corpus = open_corpus(tfds='pipnet_synthetic', split='train', data_dir=synthetic_dir)
    stored = list(builders.load('pipnet_synthetic', 'train', synthetic_dir).as_numpy_iterator())
    assert corpus.ids == [ex['image_id'].decode() for ex in stored]
    assert len(corpus) == 6 and corpus.num_shards(4) == 2
    for it in corpus.shard_items(1, 4):
        np.testing.assert_array_equal(corpus.load(it), stored[it.index]['image'])
    part = open_corpus(tfds='pipnet_synthetic', split='train[2:5]', data_dir=synthetic_dir)
    assert part.ids == corpus.ids[2:5]
    np.testing.assert_array_equal(part.load(1), stored[3]['image'])


def test_pseudo_labels_as_a_pipeline_source(synthetic_dir, tmp_path):
    """Corpus -> labelled shards -> Source: batches mix both sources with their task ids."""
    corpus = open_corpus(tfds='pipnet_synthetic', split='train', data_dir=synthetic_dir)
    m = P.Manifest.open(tmp_path, 'teacher', corpus.description, 4, len(corpus))
    for k in m.pending():
        m.write(k, ({'id': it.id, 'image': corpus.load(it),
                     'landmarks': np.full((N, 2), 0.5, np.float32),
                     'confidence': np.ones(N, np.float32), 'task': 'cls3'}
                    for it in corpus.shard_items(k, 4)))
    assert P.summary(tmp_path)['count'] == 6
    labelled = Source('pipnet_synthetic', 'train', synthetic_dir)
    batches = list(itertools.islice(train_batches(
        [labelled, P.as_source(tmp_path)], 4, seed=0, process_index=0, process_count=1,
        augment_config={f'{op}_prob': 0.0 for op in augment.OPS}), 3))
    source = np.concatenate([b['source'] for b in batches])
    task = np.concatenate([b['task'] for b in batches])
    assert set(source) == {0, 1}
    np.testing.assert_array_equal(task, np.where(source == 1, TASKS.index('cls3'),
                                                  TASKS.index('std')))
    landmarks = np.concatenate([b['landmarks'] for b in batches])
    np.testing.assert_array_equal(landmarks[source == 1], 0.5)


# --- synthetic style 'b' -----------------------------------------------------------------------

def test_style_a_is_unchanged():
    # Values from the generator before styles existed: the rect is drawn after the whole
    # rendering, so any change in style a's random draws would move it.
    want = [[67.102, 61.837, 130.203, 124.09], [41.326, 71.969, 96.664, 126.993],
            [68.592, 36.414, 120.169, 95.15]]
    for i, rect in enumerate(want):
        got = synthetic.generate_face(np.random.default_rng([2024, i]), (128, 128))
        np.testing.assert_allclose(got[2], rect, atol=2e-3)
        same = synthetic.generate_face(np.random.default_rng([2024, i]), (128, 128), 'a')
        np.testing.assert_array_equal(got[0], same[0])


def test_style_b_is_another_domain(tmp_path):
    stats = {}
    for style in 'ab':
        roll, contrast, occluded = [], [], []
        for i in range(40):
            img, lm, _, attributes = synthetic.generate_face(np.random.default_rng([5, i]),
                                                             (128, 128), style)
            d = lm[72] - lm[60]  # eye line
            roll.append(abs(np.degrees(np.arctan2(d[1], d[0]))))
            contrast.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).std())
            occluded.append(attributes['occlusion'])
        stats[style] = np.mean(roll), np.mean(contrast), np.mean(occluded)
    (roll_a, contrast_a, occ_a), (roll_b, contrast_b, occ_b) = stats['a'], stats['b']
    assert roll_b > 1.8 * roll_a, stats
    assert contrast_b < 0.85 * contrast_a, stats
    assert occ_b > occ_a, stats
    with pytest.raises(ValueError, match='unknown synthetic style'):
        synthetic.generate_face(np.random.default_rng(0), (64, 64), 'z')
    # The style is part of a data set's identity.
    root = tmp_path / 'raw'
    synthetic.write_wflw_dataset(root, 2, 1, seed=1, image_size=(64, 64), workers=1)
    assert 'style' not in json.loads((root / synthetic.INFO_FILE).read_text())
    a = (root / 'WFLW_images/synthetic/train_00001.jpg').read_bytes()
    synthetic.write_wflw_dataset(root, 2, 1, seed=1, image_size=(64, 64), workers=1, style='b')
    assert json.loads((root / synthetic.INFO_FILE).read_text())['style'] == 'b'
    assert (root / 'WFLW_images/synthetic/train_00001.jpg').read_bytes() != a


def test_styles_c_and_d_shift_appearance_only():
    """The same random stream gives the same shape (pose, identity, expression) in 'a', 'c' and
    'd'; only the pixels differ: lower contrast, more occluders, 'd' also more blur."""
    stats = {}
    for style in 'acd':
        shapes, contrast, occluded, blurred = [], [], [], []
        for i in range(40):
            img, lm, _, attributes = synthetic.generate_face(np.random.default_rng([5, i]),
                                                             (128, 128), style)
            shapes.append(lm)
            contrast.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).std())
            occluded.append(attributes['occlusion'])
            blurred.append(attributes['blur'])
        stats[style] = np.stack(shapes), np.mean(contrast), np.mean(occluded), np.mean(blurred)
    for style in 'cd':
        np.testing.assert_array_equal(stats[style][0], stats['a'][0])
        assert stats[style][1] < 0.85 * stats['a'][1] and stats[style][2] > stats['a'][2]
    assert stats['d'][3] > stats['c'][3] > stats['a'][3]
