"""Pseudo-label shards for STC: TFRecord files of teacher-labelled crops, and their manifest.

One output directory holds one labelling pass (one teacher over one corpus):

  manifest.json                     teacher id, corpus description, shard size, item count,
                                    and one entry per finished shard (index, file, count,
                                    skipped items with the reason, landmark count, tasks)
  pseudo-00003-of-00040.tfrecord    output shard k = pseudo-labels of input shard k

Every shard file is written under a temporary name and renamed when complete, then the
manifest is rewritten (also atomically): a killed run leaves at worst an unlisted shard file,
which the rerun writes again. `Manifest.open` on a directory labelled by another teacher (or
from another corpus or shard size) refuses unless relabel=True, which deletes the old shards.
One process writes a directory's manifest (in multi-host runs: host 0, or one directory per
host).

Record features: id (bytes), image (JPEG, quality 95), landmarks (float, N * 2, (x, y) in the
crop's [0, 1] frame), confidence (float, N), task (bytes, a files.TASKS name).

    m = Manifest.open(out_dir, teacher_id, corpus.description, shard_size, len(corpus))
    for k in m.pending():
        skipped = []
        m.write(k, examples_of_shard(k, skipped), skipped)  # generator fills `skipped`
    source = as_source(out_dir)  # a pipeline.Source with the round's task
"""
import json
import pathlib

import numpy as np
import tensorflow as tf

from pipnet_jax.data import builders
from pipnet_jax.data.pipeline import Source
from pipnet_jax.files import TASKS, atomic_path, encode_jpeg, write_json_atomic

MANIFEST = 'manifest.json'
FORMAT = 1
_TMP_FILES = '.*.tmp'  # files being written (files.atomic_path), left over if a run was killed


class ManifestMismatch(ValueError):
    """The directory holds pseudo-labels from another teacher, corpus or shard size."""


def _shard_name(index, num_shards):
    return f'pseudo-{index:05d}-of-{num_shards:05d}.tfrecord'


def _feature(kind, values):
    if kind == 'bytes':
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _serialize(ex, where):
    """One example dict -> (serialized tf.train.Example, N, task); checks the fields."""
    image = np.asarray(ex['image'])
    landmarks = np.asarray(ex['landmarks'], np.float32)
    confidence = np.asarray(ex['confidence'], np.float32)
    ident, task = str(ex['id']), str(ex['task'])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'{where} ({ident}): image must be uint8 (H, W, 3), got '
                         f'{image.dtype} {image.shape}')
    n = len(landmarks)
    if landmarks.shape != (n, 2) or confidence.shape != (n,):
        raise ValueError(f'{where} ({ident}): landmarks (N, 2) and confidence (N,) expected, '
                         f'got {landmarks.shape} and {confidence.shape}')
    if task not in TASKS:
        raise ValueError(f'{where} ({ident}): unknown task {task!r}; expected one of {TASKS}')
    if not ident:
        raise ValueError(f'{where}: empty id')
    jpeg = encode_jpeg(image, f'{where} ({ident})')
    features = {'id': _feature('bytes', [ident.encode()]),
                'image': _feature('bytes', [jpeg]),
                'landmarks': _feature('float', landmarks.reshape(-1)),
                'confidence': _feature('float', confidence),
                'task': _feature('bytes', [task.encode()])}
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(), n, task


def write_shard(path, examples):
    """Writes examples (dicts: id, image uint8 (256, 256, 3), landmarks float32 (N, 2),
    confidence float32 (N,), task) to the TFRecord file `path`, atomically: under a temporary
    name, renamed when all are written; on any error nothing appears at `path`.
    Returns {'count', 'num_points' (None if empty), 'tasks' (sorted), 'ids'}."""
    path = pathlib.Path(path)
    ids, points, tasks = [], set(), set()
    with atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for ex in examples:
            record, n, task = _serialize(ex, path.name)
            points.add(n)
            if len(points) > 1:
                raise ValueError(f'{path.name}: examples disagree on the landmark count '
                                 f'{sorted(points)}')
            writer.write(record)
            ids.append(str(ex['id']))
            tasks.add(task)
    return {'count': len(ids), 'num_points': points.pop() if points else None,
            'tasks': sorted(tasks), 'ids': ids}


class Manifest:
    """The record of one labelling pass in `directory` (see the module docstring)."""

    def __init__(self, directory, data):
        self.directory = pathlib.Path(directory)
        self.data = data

    @property
    def path(self):
        return self.directory / MANIFEST

    @classmethod
    def load(cls, directory):
        path = pathlib.Path(directory) / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f'no pseudo-label manifest {path}') from None
        except ValueError as e:
            raise ValueError(f'{path}: not a valid manifest ({e})') from None
        if data.get('format') != FORMAT:
            raise ValueError(f'{path}: manifest format {data.get("format")}, expected {FORMAT}')
        return cls(directory, data)

    @classmethod
    def open(cls, directory, teacher, corpus_desc, shard_size, total, relabel=False):
        """The manifest of `directory` for this pass, created if absent. An existing one from
        another teacher/corpus/shard size/total raises ManifestMismatch, unless relabel=True:
        then its shards are deleted and the pass starts over (with the same header,
        relabel changes nothing: the pass resumes). Leftover temp files are deleted."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        shard_size, total = int(shard_size), int(total)
        if shard_size < 1 or total < 0:
            raise ValueError(f'need shard_size >= 1 and total >= 0, got {shard_size}, {total}')
        # Normalised through JSON, so that a description compares equal to its reloaded self.
        header = json.loads(json.dumps({
            'format': FORMAT, 'teacher': teacher, 'corpus': corpus_desc,
            'shard_size': shard_size, 'total': total,
            'num_shards': -(-total // shard_size)}))
        for tmp in directory.glob(_TMP_FILES):
            tmp.unlink(missing_ok=True)
        if (directory / MANIFEST).exists():
            old = cls.load(directory)
            diff = [k for k in header if old.data.get(k) != header[k]]
            if not diff:
                return old
            if not relabel:
                lines = '; '.join(f'{k}: has {old.data.get(k)!r}, this run {header[k]!r}'
                                  for k in diff)
                raise ManifestMismatch(
                    f'{directory} holds pseudo-labels of another pass ({lines}). Use another '
                    f'directory, or relabel=True to delete them and label again.')
        if relabel:  # the manifest first: a crash midway leaves a fresh start, not a lie
            (directory / MANIFEST).unlink(missing_ok=True)
            for f in directory.glob('pseudo-*-of-*.tfrecord'):
                f.unlink()
        manifest = cls(directory, {**header, 'shards': []})
        write_json_atomic(manifest.path, manifest.data)
        return manifest

    @property
    def num_shards(self):
        return self.data['num_shards']

    @property
    def shards(self):
        """{index: entry} of the finished shards."""
        return {e['index']: e for e in self.data['shards']}

    def is_done(self, index):
        return index in self.shards

    def pending(self):
        """Indices of the input shards still to label, in order."""
        done = self.shards
        return [k for k in range(self.num_shards) if k not in done]

    @property
    def complete(self):
        return len(self.data['shards']) == self.num_shards

    def shard_size_of(self, index):
        """Number of corpus items in input shard `index`."""
        start = index * self.data['shard_size']
        return max(0, min(self.data['shard_size'], self.data['total'] - start))

    def shard_path(self, index):
        return self.directory / _shard_name(index, self.num_shards)

    def write(self, index, examples, skipped=()):
        """Writes output shard `index` from `examples` (see write_shard) and records it with
        `skipped` ([{'id', 'reason'}], read after the examples are exhausted, so a generator
        may fill it). The written and skipped items must add up to the input shard."""
        if not 0 <= index < self.num_shards:
            raise IndexError(f'shard {index} not in [0, {self.num_shards})')
        path = self.shard_path(index)
        stats = write_shard(path, examples)
        skipped = [{'id': str(s['id']), 'reason': str(s['reason'])} for s in skipped]
        expected = self.shard_size_of(index)
        if stats['count'] + len(skipped) != expected:
            path.unlink()
            raise ValueError(f'{path.name}: {stats["count"]} labelled + {len(skipped)} skipped '
                             f'items, but input shard {index} has {expected}')
        entry = {'index': index, 'file': path.name, 'count': stats['count'],
                 'skipped': skipped, 'num_points': stats['num_points'], 'tasks': stats['tasks']}
        self.data['shards'] = sorted([e for e in self.data['shards'] if e['index'] != index]
                                     + [entry], key=lambda e: e['index'])
        write_json_atomic(self.path, self.data)
        return entry


def _finished(directory, allow_partial):
    manifest = Manifest.load(directory)
    if not (manifest.complete or allow_partial):
        raise ValueError(f'{directory}: pseudo-labelling unfinished ({len(manifest.shards)} of '
                         f'{manifest.num_shards} shards); rerun it, or allow_partial=True')
    return manifest, list(manifest.shards.values())


def read_shards(directory, *, decode=False, allow_partial=False):
    """tf.data.Dataset of the finished shards' examples, in corpus order: {'id', 'image_id'
    (= id, as the pipeline names it), 'image' (JPEG bytes; uint8 (256, 256, 3) if decode),
    'landmarks' float32 (N, 2), 'confidence' float32 (N,), 'task' string}; its cardinality
    is known. Raises if the pass is unfinished (unless allow_partial)."""
    _, entries = _finished(directory, allow_partial)
    points = {e['num_points'] for e in entries if e['count']}
    if len(points) != 1:
        raise ValueError(f'{directory}: cannot read: landmark counts in the shards are '
                         f'{sorted(points) or "none (no labelled item)"}')
    n = points.pop()
    spec = {'id': tf.io.FixedLenFeature([], tf.string),
            'image': tf.io.FixedLenFeature([], tf.string),
            'landmarks': tf.io.FixedLenFeature([n * 2], tf.float32),
            'confidence': tf.io.FixedLenFeature([n], tf.float32),
            'task': tf.io.FixedLenFeature([], tf.string)}

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        image = builders.decode_image(ex['image']) if decode else ex['image']
        return {'id': ex['id'], 'image_id': ex['id'], 'image': image,
                'landmarks': tf.reshape(ex['landmarks'], [n, 2]),
                'confidence': ex['confidence'], 'task': ex['task']}

    files = [str(pathlib.Path(directory) / e['file']) for e in entries if e['count']]
    ds = tf.data.TFRecordDataset(files).map(parse, tf.data.AUTOTUNE, deterministic=True)
    return ds.apply(tf.data.experimental.assert_cardinality(sum(e['count'] for e in entries)))


def as_source(directory, task=None, weight=None, *, allow_partial=False):
    """A pipeline.Source over the shards, tagged with the pass's task: the one task recorded
    in the shards (task=None), else `task`, which must then agree with the recorded one."""
    _, entries = _finished(directory, allow_partial)
    recorded = sorted({t for e in entries for t in e['tasks']})
    if task is None:
        if len(recorded) != 1:
            raise ValueError(f'{directory}: shards carry tasks {recorded}: give task=')
        task = recorded[0]
    elif recorded not in ([], [task]):
        raise ValueError(f'{directory}: shards were labelled for task(s) {recorded}, not '
                         f'{task!r}')
    return Source(read_shards(directory, allow_partial=allow_partial), weight=weight, task=task)


def summary(directory):
    """Totals of a labelling pass: {'teacher', 'total', 'count', 'skipped', 'shards_done',
    'num_shards', 'complete'}. Reads every shard's ids and raises ValueError if an id occurs
    twice (labelled or skipped), a file's record count differs from the manifest, or a
    complete pass does not account for every corpus item (count + skipped != total)."""
    manifest = Manifest.load(directory)
    entries = list(manifest.shards.values())
    seen, problems = set(), []
    for e in entries:
        path = pathlib.Path(directory) / e['file']
        ids = [] if not e['count'] else [
            v.decode() for v in tf.data.TFRecordDataset(str(path)).map(
                lambda r: tf.io.parse_single_example(
                    r, {'id': tf.io.FixedLenFeature([], tf.string)})['id']).as_numpy_iterator()]
        if len(ids) != e['count']:
            problems.append(f'{e["file"]} holds {len(ids)} records, the manifest says '
                            f'{e["count"]}')
        for ident in ids + [s['id'] for s in e['skipped']]:
            if ident in seen:
                problems.append(f'id {ident!r} occurs twice (again in {e["file"]})')
            seen.add(ident)
    out = {'teacher': manifest.data['teacher'], 'total': manifest.data['total'],
           'count': sum(e['count'] for e in entries),
           'skipped': sum(len(e['skipped']) for e in entries),
           'shards_done': len(entries), 'num_shards': manifest.num_shards,
           'complete': manifest.complete}
    if out['complete'] and out['count'] + out['skipped'] != out['total']:
        problems.append(f'{out["count"]} labelled + {out["skipped"]} skipped != '
                        f'{out["total"]} corpus items')
    if problems:
        raise ValueError(f'{directory}: inconsistent pseudo-labels: ' + '; '.join(problems[:10]))
    return out
