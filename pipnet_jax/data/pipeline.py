"""tf.data input pipelines: per-host shard, shuffle, mix, augment, batch (the only tf.data code).

Training (`train_batches`) yields, forever, dicts of numpy arrays for one host:
  image uint8 (B, H, W, 3), landmarks float32 (B, N, 2) in [0, 1] crop coordinates,
  task int32 (B,) ids into files.TASKS, source int32 (B,) index into `sources`.
Images stay uint8: normalisation and target maps are computed on the device.

Determinism: epoch e of host h is shuffled with a seed derived from (seed, e, h) and element i
of that epoch is augmented with a stateless seed derived from (seed, e, h, i). An epoch has a
fixed number of steps (`steps_per_epoch`), so step s lies in epoch s // steps_per_epoch, and a
run started at `start_step` produces exactly the batches an uninterrupted run produces from
that step on: earlier epochs are not replayed, and the skip inside the first epoch happens
before decoding and augmentation, on the compressed records. The thread count does not change
the batches either (ordered parallel map, stateless augmentation).

Sharding: every source is split into `process_count` disjoint, equal parts
(tfds.even_splits(..., drop_remainder=True)); host h reads part h, so all hosts run the same
number of steps. Mixing: without weights the sources are concatenated and shuffled together,
as the original STC (labelled + pseudo-labelled lists); with weights, each batch element is
drawn from source k with probability weight_k (sample_from_datasets), each source reshuffled
whenever it runs out; an epoch then has the same nominal length.

Evaluation (`eval_batches`) is deterministic, in stored order, the last batch padded (valid=False)
so that one batch shape compiles once; every host gets the same number of batches.
"""
import dataclasses
import logging
import math
from typing import Any, Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from pipnet_jax.data import builders
from pipnet_jax.data.augment import augment
from pipnet_jax.files import TASKS
from pipnet_jax.landmarks import get_landmark_set

log = logging.getLogger(__name__)

DEFAULT_SHUFFLE_BUFFER = 16384
# Independent random streams drawn from the one user seed.
_SHUFFLE, _MIX, _AUGMENT = 1, 2, 3


@dataclasses.dataclass(frozen=True)
class Source:
    """One training source: a built data set ('pipnet_wflw', 'pipnet_custom/<config>', ...)
    and split in data_dir, or a tf.data.Dataset of {'image': uint8 (H, W, 3) or JPEG/PNG
    bytes, 'landmarks': float32 (N, 2)} (e.g. pseudo-label shards; finite, same N for all).
    weight: sampling weight (all sources or none); task: curriculum task (files.TASKS)."""
    name_or_dataset: Any
    split: str = 'train'
    data_dir: Any = None
    weight: Optional[float] = None
    task: str = 'std'


def _host(process_index, process_count):
    if process_index is None or process_count is None:
        import jax  # lazy: only to default the host; the pipeline itself runs without JAX
        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f'process_index {process_index} not in [0, {process_count})')
    return int(process_index), int(process_count)


def _count(ds):
    n = int(ds.cardinality())
    if n == tf.data.INFINITE_CARDINALITY:
        raise ValueError('a source dataset must be finite (one pass = one epoch)')
    if n < 0:  # unknown: count once, the epoch length depends on it
        n = int(ds.reduce(np.int64(0), lambda c, _: c + 1))
    return n


def _open(source, process_index, process_count, drop_remainder):
    """(records of this host's part, their count, total count, landmark set name or None).
    TFDS images stay JPEG bytes: shuffling compressed records needs ~10x less memory."""
    if isinstance(source.name_or_dataset, tf.data.Dataset):
        ds = source.name_or_dataset
        total = _count(ds)
        if drop_remainder:
            n = total // process_count
        else:  # as even_splits: the first (total % count) hosts get one more
            n = total // process_count + (process_index < total % process_count)
        ds = ds.enumerate().shard(process_count, process_index).take(n)
        ds = ds.map(lambda i, ex: {**ex, 'image_id': ex.get('image_id', tf.strings.as_string(i))})
        return ds, n, total, None
    b = builders.builder(source.name_or_dataset, source.data_dir)
    part = tfds.even_splits(source.split, n=process_count,
                            drop_remainder=drop_remainder)[process_index]
    ds = b.as_dataset(split=part, shuffle_files=False,
                      decoders={'image': tfds.decode.SkipDecoding()})
    return (ds, b.info.splits[part].num_examples, b.info.splits[source.split].num_examples,
            b.info.metadata.get('landmark_set'))


def _encoded(image):
    """All sources must share one element type to be mixed: uint8 images become PNG
    (lossless; level 1 is fast and the bytes only live in the shuffle buffer)."""
    if image.dtype == tf.string:
        return image
    return tf.io.encode_png(tf.convert_to_tensor(image, tf.uint8), compression=1)


def _key(seed, *parts):
    """A stateless seed (int64 [2]) from the user seed and a path of ints (maybe tensors)."""
    key = tf.constant([seed, 0], tf.int64)
    for part in parts:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(part, tf.int64),
                                                       alg='philox')
    return key


def _op_seed(key):
    """A scalar int64 seed for tf.data ops (shuffle, sample_from_datasets) from a key."""
    return tf.random.stateless_uniform([], key, minval=None, maxval=None, dtype=tf.int64,
                                       alg='philox')


def _options(threads):
    options = tf.data.Options()
    options.deterministic = True
    if threads:
        # Every op of this pipeline (reading, decoding, augmentation) runs in a pool of
        # `threads` threads, one thread per op: the pipeline uses about `threads` cores.
        options.threading.private_threadpool_size = int(threads)
        options.threading.max_intra_op_parallelism = 1
    return options


def _check_sources(sources):
    sources = list(sources)
    if not sources:
        raise ValueError('no sources')
    weighted = [s.weight is not None for s in sources]
    if any(weighted) and not all(weighted):
        raise ValueError('give a weight for every source or for none')
    unknown = sorted({s.task for s in sources} - set(TASKS))
    if unknown:
        raise ValueError(f'unknown task(s) {unknown}; expected one of {TASKS}')
    weights = [s.weight for s in sources]
    if all(weighted) and (min(weights) < 0 or sum(weights) <= 0):
        raise ValueError(f'weights must be >= 0 with a positive sum, got {weights}')
    return sources


def _num_examples(source, process_count):
    """This host's example count of a source (equal on every host)."""
    if isinstance(source.name_or_dataset, tf.data.Dataset):
        return _count(source.name_or_dataset) // process_count
    b = builders.builder(source.name_or_dataset, source.data_dir)
    return b.info.splits[source.split].num_examples // process_count


def steps_per_epoch(sources, batch_size, process_count=None):
    """Training steps per epoch: the sources' per-host examples together // batch_size
    (the incomplete last batch of an epoch is dropped, as the original's drop_last)."""
    if process_count is None:
        import jax  # lazy: only to default the host count; the pipeline runs without JAX
        process_count = jax.process_count()
    sources = _check_sources(sources)
    return sum(_num_examples(s, process_count) for s in sources) // int(batch_size)


def train_batches(sources, batch_size, *, seed, start_step=0, augment_config=None,
                  flip_permutation=None, process_index=None, process_count=None,
                  shuffle_buffer=DEFAULT_SHUFFLE_BUFFER, threads=None):
    """Infinite iterator of this host's training batches (see the module docstring).

    sources: a list of Source (a single Source is accepted); batch_size: per host.
    augment_config: augment.default_augment_config() when None (a dict with some `*_prob`
    at 0 turns those ops off). flip_permutation: default from the first built source's
    landmark set. process_index/process_count: default jax.process_index()/process_count().
    shuffle_buffer: records held for shuffling; >= the examples per host gives the
    original's exact uniform shuffle (records stay JPEG, ~15-40 KB each, not 192 KB).
    threads: cores for this pipeline (private thread pool); None lets tf.data decide.
    """
    if isinstance(sources, Source):
        sources = [sources]
    sources = _check_sources(sources)
    host, count = _host(process_index, process_count)
    batch_size, seed = int(batch_size), int(seed)
    opened = [_open(s, host, count, drop_remainder=True) for s in sources]
    shapes = {tuple(ds.element_spec['landmarks'].shape) for ds, _, _, _ in opened}
    if len(shapes) > 1:
        raise ValueError(f'sources disagree on the landmarks shape: {sorted(shapes)}')
    sizes = [n for _, n, _, _ in opened]
    steps = sum(sizes) // batch_size
    if steps == 0:
        raise ValueError(f'{sum(sizes)} examples per host make no batch of {batch_size}')
    if flip_permutation is None:
        names = [name for _, _, _, name in opened if name]
        if names:
            flip_permutation = get_landmark_set(names[0]).flip_permutation

    def records(k, ds):
        task = np.int32(TASKS.index(sources[k].task))
        return ds.map(lambda ex: {'image': _encoded(ex['image']),
                                  'landmarks': tf.cast(ex['landmarks'], tf.float32),
                                  'task': task, 'source': np.int32(k)})

    bases = [records(k, ds) for k, (ds, _, _, _) in enumerate(opened)]
    weights = [s.weight for s in sources]

    def epoch(e):
        """The records of epoch e (a tensor), shuffled/mixed, with (e, index) attached."""
        if weights[0] is None:
            ds = bases[0]
            for other in bases[1:]:
                ds = ds.concatenate(other)
            ds = ds.shuffle(max(1, min(shuffle_buffer, sum(sizes))),
                            seed=_op_seed(_key(seed, _SHUFFLE, e, host)))
        else:
            parts = [b.shuffle(max(1, min(shuffle_buffer, n)),
                               seed=_op_seed(_key(seed, _SHUFFLE, e, host, k))).repeat()
                     for k, (b, n) in enumerate(zip(bases, sizes))]
            ds = tf.data.Dataset.sample_from_datasets(
                parts, weights, seed=_op_seed(_key(seed, _MIX, e, host)))
        return ds.take(steps * batch_size).enumerate().map(lambda i, ex: (e, i, ex))

    first_epoch, offset = divmod(int(start_step), steps)
    ds = epoch(tf.constant(first_epoch, tf.int64)).skip(offset * batch_size)
    ds = ds.concatenate(tf.data.Dataset.range(first_epoch + 1, 2 ** 62).flat_map(epoch))

    def prepare(e, i, ex):
        image = builders.decode_image(ex['image'])
        image, landmarks = augment(image, ex['landmarks'], _key(seed, _AUGMENT, e, host, i),
                                   augment_config, flip_permutation)
        return {'image': image, 'landmarks': landmarks, 'task': ex['task'],
                'source': ex['source']}

    ds = ds.map(prepare, num_parallel_calls=threads or tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(2)
    return ds.with_options(_options(threads)).as_numpy_iterator()


def eval_batches(name_or_dataset, split, data_dir, batch_size, process_index=None,
                 process_count=None, *, threads=None):
    """Finite, deterministic iterator of this host's eval batches, in stored order:
    {'image': uint8 (B, 256, 256, 3), 'landmarks': float32 (B, N, 2), 'valid': bool (B,),
    'image_id': str (B,)}. Hosts get disjoint parts covering the split; padding (valid=False,
    zeros, image_id '') fills the last batch and gives every host the same batch count."""
    host, count = _host(process_index, process_count)
    batch_size = int(batch_size)
    source = Source(name_or_dataset, split, data_dir)
    ds, n, total, _ = _open(source, host, count, drop_remainder=False)
    num_batches = math.ceil(math.ceil(total / count) / batch_size)
    size = builders.IMAGE_SIZE

    def prepare(ex):
        image = ex['image']
        image = builders.decode_image(image) if image.dtype == tf.string else image
        return {'image': tf.ensure_shape(tf.cast(image, tf.uint8), [size, size, 3]),
                'landmarks': tf.cast(ex['landmarks'], tf.float32),
                'valid': tf.constant(True), 'image_id': ex['image_id']}

    ds = ds.map(prepare, num_parallel_calls=threads or tf.data.AUTOTUNE, deterministic=True)
    spec = ds.element_spec
    padding = {k: tf.zeros(v.shape, v.dtype) for k, v in spec.items()}
    ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat(num_batches * batch_size - n))
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(2).with_options(_options(threads))
    return _with_str_ids(ds.as_numpy_iterator())


def _with_str_ids(batches):
    for batch in batches:
        batch['image_id'] = np.array([s.decode() for s in batch['image_id']])
        yield batch
