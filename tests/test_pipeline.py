"""pipnet_jax.data.pipeline on a tiny synthetic TFDS set: batch format, seeding, resume,
per-host sharding, source mixing, and padded deterministic eval batches."""
import itertools
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import pytest
import tensorflow as tf

import tf_threads  # noqa: F401,E402  (thread limits before the first TF op)

from pipnet_jax.data import augment as A
from pipnet_jax.data import builders, synthetic
from pipnet_jax.data.pipeline import Source, eval_batches, steps_per_epoch, train_batches
from pipnet_jax.files import TASKS

NUM_TRAIN, NUM_TEST = 24, 8
NO_AUGMENT = {f'{op}_prob': 0.0 for op in A.OPS}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp('tfds')
    raw = synthetic.write_wflw_dataset(data_dir / 'raw', NUM_TRAIN, NUM_TEST, seed=5, workers=1)
    builders.build('pipnet_synthetic', data_dir, raw)
    return data_dir


@pytest.fixture(scope='module')
def stored(data_dir):
    """The train split's landmarks in stored order: they identify each face."""
    ds = builders.load('pipnet_synthetic', 'train', data_dir, decode=False)
    return np.stack([ex['landmarks'] for ex in ds.as_numpy_iterator()])


def source(data_dir, **kw):
    return Source('pipnet_synthetic', 'train', data_dir, **kw)


def take(n, data_dir, sources=None, **kw):
    kw = {'seed': 0, 'process_index': 0, 'process_count': 1, **kw}
    return list(itertools.islice(train_batches(sources or [source(data_dir)], 4, **kw), n))


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def face_ids(batches, stored):
    """Index in `stored` of every face in un-augmented batches."""
    lm = np.concatenate([b['landmarks'] for b in batches])
    match = np.all(np.abs(lm[:, None] - stored[None]) < 1e-7, axis=(2, 3))
    assert np.all(match.sum(1) == 1)
    return match.argmax(1)


def test_batch_format(data_dir):
    (batch,) = take(1, data_dir)
    assert batch.keys() == {'image', 'landmarks', 'task', 'source'}
    assert batch['image'].dtype == np.uint8 and batch['image'].shape == (4, 256, 256, 3)
    assert batch['landmarks'].dtype == np.float32 and batch['landmarks'].shape == (4, 98, 2)
    assert batch['task'].dtype == np.int32 and batch['task'].tolist() == [0] * 4
    assert batch['source'].dtype == np.int32 and batch['source'].tolist() == [0] * 4


def test_seeds_and_threads(data_dir):
    a = take(3, data_dir, seed=1, threads=1)
    assert_same(a, take(3, data_dir, seed=1, threads=2))  # same seed, any thread count
    b = take(3, data_dir, seed=2)
    assert not np.array_equal(a[0]['image'], b[0]['image'])
    assert not np.array_equal(a[0]['landmarks'], b[0]['landmarks'])


def test_resume_repeats_the_uninterrupted_run(data_dir):
    assert steps_per_epoch([source(data_dir)], 4, process_count=1) == 6
    full = take(10, data_dir, seed=3)
    assert_same(take(6, data_dir, seed=3, start_step=4), full[4:])  # crosses epoch 0 -> 1
    assert_same(take(2, data_dir, seed=3, start_step=8), full[8:])


def test_epochs_are_permutations(data_dir, stored):
    batches = take(12, data_dir, augment_config=NO_AUGMENT)
    first, second = face_ids(batches[:6], stored), face_ids(batches[6:], stored)
    assert sorted(first) == sorted(second) == list(range(NUM_TRAIN))
    assert first.tolist() != second.tolist()  # reshuffled per epoch


def test_hosts_get_disjoint_parts(data_dir, stored):
    parts = [face_ids(take(3, data_dir, augment_config=NO_AUGMENT, process_index=h,
                           process_count=2), stored) for h in (0, 1)]
    assert set(parts[0]).isdisjoint(parts[1])
    assert sorted(np.concatenate(parts)) == list(range(NUM_TRAIN))
    assert steps_per_epoch([source(data_dir)], 4, process_count=2) == 3
    ids = [[i for b in eval_batches('pipnet_synthetic', 'train', data_dir, 5, h, 2)
            for i, v in zip(b['image_id'], b['valid']) if v] for h in (0, 1)]
    assert set(ids[0]).isdisjoint(ids[1]) and len(ids[0]) == len(ids[1]) == 12
    assert len(set(ids[0]) | set(ids[1])) == NUM_TRAIN


def test_weighted_mixing(data_dir):
    sources = [source(data_dir, weight=0.75), source(data_dir, weight=0.25, task='cls3')]
    n_batches = 50
    batches = take(n_batches, data_dir, sources, augment_config=NO_AUGMENT)
    src = np.concatenate([b['source'] for b in batches])
    task = np.concatenate([b['task'] for b in batches])
    np.testing.assert_array_equal(task, np.where(src == 1, TASKS.index('cls3'), 0))
    n = len(src)
    sigma = np.sqrt(n * 0.75 * 0.25)
    assert abs((src == 0).sum() - 0.75 * n) < 4 * sigma, (src == 0).sum()


def test_plain_concatenation(data_dir, stored):
    """No weights: one epoch = every record of every source once (the original STC)."""
    sources = [source(data_dir), source(data_dir, task='cls2')]
    assert steps_per_epoch(sources, 4, process_count=1) == 12
    batches = take(12, data_dir, sources, augment_config=NO_AUGMENT)
    src = np.concatenate([b['source'] for b in batches])
    ids = face_ids(batches, stored)
    for k in (0, 1):
        assert sorted(ids[src == k]) == list(range(NUM_TRAIN))


def test_dataset_source(data_dir, stored):
    """A tf.data source (e.g. pseudo-label shards) of uint8 images mixes with a built one."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 256, 256, 3), dtype=np.uint8)
    landmarks = rng.uniform(0, 1, (8, 98, 2)).astype(np.float32)
    pseudo = tf.data.Dataset.from_tensor_slices({'image': images, 'landmarks': landmarks})
    sources = [source(data_dir), Source(pseudo, task='cls3')]
    batches = take(8, data_dir, sources, augment_config=NO_AUGMENT)
    image = np.concatenate([b['image'] for b in batches])
    lm = np.concatenate([b['landmarks'] for b in batches])
    src = np.concatenate([b['source'] for b in batches])
    assert (src == 1).sum() == 8
    for k in np.flatnonzero(src == 1):  # uint8 images come back exactly (lossless PNG)
        (j,) = np.flatnonzero(np.all(landmarks == lm[k], axis=(1, 2)))
        np.testing.assert_array_equal(image[k], images[j])


def test_eval_batches_padded_and_deterministic(data_dir):
    runs = [list(eval_batches('pipnet_synthetic', 'test', data_dir, 3, 0, 1)) for _ in range(2)]
    assert_same(*runs)
    batches = runs[0]
    assert [b['valid'].tolist() for b in batches] == [[True] * 3, [True] * 3, [True, True, False]]
    b = batches[-1]
    assert b['image'].shape == (3, 256, 256, 3) and b['image'].dtype == np.uint8
    assert b['landmarks'].shape == (3, 98, 2) and b['landmarks'].dtype == np.float32
    assert b['image_id'][2] == '' and not b['image'][2].any()
    ids = [i for b in batches for i in b['image_id'][b['valid']]]
    assert ids == [f'synthetic/test_{k + 1:05d}.jpg#{k}' for k in range(NUM_TEST)]  # stored order
    stored = list(builders.load('pipnet_synthetic', 'test', data_dir).as_numpy_iterator())
    np.testing.assert_array_equal(batches[0]['image'][1], stored[1]['image'])
    # Two hosts: 4 faces each, 2 batches of 3 each; same batch count on every host.
    per_host = [list(eval_batches('pipnet_synthetic', 'test', data_dir, 3, h, 2)) for h in (0, 1)]
    assert [len(p) for p in per_host] == [2, 2]
    assert [sum(b['valid'].sum() for b in p) for p in per_host] == [4, 4]
