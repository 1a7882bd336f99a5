"""Unlabelled face corpora for STC pseudo-labelling: an ordered list of 256x256 face crops.

Five kinds of source, chosen by `open_corpus(spec)`:

  {'images': DIR}                    every image file under DIR (recursively, sorted by
                                     relative path), already a face crop: resized to 256x256.
                                     A bare path is the same.
  {'images': DIR, 'detect': KIND,    every image file under DIR is a whole picture: the
   'faceboxes_weights': FILE,        detector ('faceboxes' or 'haar', see `detected`) finds its
   'score_threshold': 0.6}           most confident face, cropped as the original demo crops.
  {'boxes': FILE, 'images': DIR}     a box list as GSSL's celeba_bboxes.txt (lines
                                     'name xmin ymin xmax ymax', names relative to DIR),
                                     cropped with the original's CelebA rule (spec 11.6).
  {'tfds': NAME, 'split': 'train',   a built TFDS set (e.g. 'pipnet_synthetic', or with a config
   'data_dir': DIR}                  'pipnet_cofw/cofw_gssl'), in stored order; its landmarks are
                                     ignored.
  {'parts': {NAME: SPEC, ...}}       the corpora of the SPECs one after another, in the mapping's
                                     order (see `concatenate`).

A Corpus has a stable unique string id per item (relative path; box-list name; TFDS image_id;
'<part name>/<id in the part>'),
is split into fixed-size input shards (shard k = items [k * size, (k + 1) * size)), and loads
one item at a time as RGB uint8 (256, 256, 3). An image that cannot be read (or, detected, has
no face) raises CorpusError naming the file (the pseudo-labeller reports it and skips the
item). `description` is a JSON-able dict identifying the corpus (for the pseudo-label
manifest).
"""
import bisect
import collections
import itertools
import math
import os
import pathlib
from typing import NamedTuple

import cv2
import numpy as np
import tensorflow_datasets as tfds

from pipnet_jax.crops import demo_face_crop
from pipnet_jax.data import annotations as A
from pipnet_jax.data import builders
from pipnet_jax.files import IMAGE_EXTENSIONS, IMAGE_SIZE, ImageReadError, read_image
_TFDS_BLOCK = 256  # TFDS items read per pass: sequential reads, bounded memory


class CorpusError(A.AnnotationError):
    """An item that cannot be loaded; the message names the file (and the list line)."""


class Item(NamedTuple):
    index: int  # position in the corpus
    id: str


class Corpus:
    """An ordered unlabelled corpus: ids, shards, and `load(item)` -> uint8 (256, 256, 3)."""

    def __init__(self, ids, loader, description):
        self.ids = list(ids)
        if len(set(self.ids)) != len(self.ids):
            dup = [k for k, n in collections.Counter(self.ids).items() if n > 1][:3]
            raise ValueError(f'corpus {description}: duplicate ids {dup}')
        self._loader = loader
        self.description = dict(description, count=len(self.ids))

    def __len__(self):
        return len(self.ids)

    def __repr__(self):
        return f'Corpus({self.description})'

    def num_shards(self, shard_size):
        return math.ceil(len(self) / _positive(shard_size))

    def shard_items(self, index, shard_size):
        """The Items of input shard `index` (the last shard may be shorter)."""
        n = self.num_shards(shard_size)
        if not 0 <= index < n:
            raise IndexError(f'shard {index} not in [0, {n}) for shard size {shard_size}')
        start = index * shard_size
        stop = min(start + shard_size, len(self))
        return [Item(i, self.ids[i]) for i in range(start, stop)]

    def load(self, item):
        """RGB uint8 (256, 256, 3) of an Item (or index); CorpusError for a bad image."""
        index = item.index if isinstance(item, Item) else int(item)
        try:
            image = self._loader(index)
        except CorpusError:
            raise
        except (A.AnnotationError, cv2.error) as e:  # e.g. a box outside its image
            raise CorpusError(f'{self.ids[index]}: {e}') from None
        if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
        return image


def _positive(shard_size):
    if int(shard_size) != shard_size or shard_size < 1:
        raise ValueError(f'shard_size must be a positive integer, got {shard_size!r}')
    return int(shard_size)


def _read(record):
    """RGB uint8 of a record's image file (a truncated JPEG counts as unreadable)."""
    try:
        return read_image(record.image_path, record.source, strict_check=builders.jpeg_is_complete)
    except ImageReadError as e:
        raise CorpusError(str(e)) from None


def _image_ids(root):
    """Relative paths of every image under root (IMAGE_EXTENSIONS, any case), sorted."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'corpus image folder {root} does not exist')
    ids = sorted(p.relative_to(root).as_posix() for p in root.rglob('*')
                 if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not ids:
        raise ValueError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) under {root}')
    return ids


def _read_file(root, ident):
    path = str(pathlib.Path(root) / ident)
    return _read(A.FaceRecord(path, None, np.zeros((0, 2)), source=ident))


def image_folder(root):
    """Every image under root (IMAGE_EXTENSIONS, any case), sorted by relative path."""
    ids = _image_ids(root)
    return Corpus(ids, lambda i: _read_file(root, ids[i]),
                  {'kind': 'images', 'images': os.path.abspath(root)})


# ----------------------------------------------------------------------------- detected faces

DEMO_BOX_SCALE = 1.2  # spec 13: the demo grows the detector box by 1.2 (top moved down)


def best_face(detections):
    """The most confident (K, 5) detection; ties (Haar scores every face 1) go to the larger
    box, then to the detector's order."""
    d = np.asarray(detections, np.float64).reshape(-1, 5)
    area = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    return d[np.lexsort((-area, -d[:, 4]))[0]]


def detected(root, detect, detector):
    """Every image under root (as image_folder) is a whole picture: its item is the most
    confident face `detect(image RGB) -> (K, 5)` finds, with the demo's crop
    (demo_face_crop). An image without a face raises CorpusError '<id>: no face found
    (<detector>)', so the pseudo-labeller skips it with that reason. `detector` (a JSON-able
    dict: kind and settings) goes into the description, so pseudo-labels made with another
    detector are refused. The caller (stc.corpus_spec) makes `detect`, e.g. lazily."""
    ids = _image_ids(root)
    shown = ', '.join(f'{k}={v}' for k, v in detector.items() if k not in ('kind', 'weights_sha256'))

    def load(i):
        image = _read_file(root, ids[i])
        detections = detect(image)
        if not len(detections):
            raise CorpusError(f'{ids[i]}: no face found ({detector["kind"]} detector, {shown})')
        try:
            crop, _ = demo_face_crop(image, best_face(detections), IMAGE_SIZE, DEMO_BOX_SCALE)
        except ValueError as e:  # a degenerate box at the image edge: skip, as no face
            raise CorpusError(f'{ids[i]}: {e}') from None
        return crop

    return Corpus(ids, load, {'kind': 'detected', 'images': os.path.abspath(root),
                              'detector': dict(detector), 'crop': 'demo',
                              'box_scale': DEMO_BOX_SCALE})


def box_list(boxes, images):
    """A 'name xmin ymin xmax ymax' list (GSSL celeba_bboxes.txt), CelebA GSSL crops."""
    records = A.read_celeba_boxes(boxes, images, check_images=False)
    if not records:
        raise ValueError(f'no boxes in {boxes}')
    total = collections.Counter(r.name for r in records)
    seen = collections.Counter()
    ids = []
    for r in records:  # an image listed twice: name#k for its k-th (0-based) box
        ids.append(r.name if total[r.name] == 1 else f'{r.name}#{seen[r.name]}')
        seen[r.name] += 1

    def load(i):
        record = records[i]
        crop, _ = A.crop_face(_read(record), record, 'celeba_gssl', IMAGE_SIZE)
        return crop

    return Corpus(ids, load, {'kind': 'boxes', 'boxes': os.path.abspath(boxes),
                              'images': os.path.abspath(images), 'crop': 'celeba_gssl'})


def tfds_set(name, split='train', data_dir=None):
    """A built TFDS set's images in stored order; ids = image_id (else '<split>:<index>')."""
    b = (builders.builder(name, data_dir) if str(name).startswith('pipnet_')
         else tfds.builder(name, data_dir=data_dir, try_gcs=False))

    def read(part):
        return b.as_dataset(split=part, shuffle_files=False,
                            decoders={'image': tfds.decode.SkipDecoding()})

    if 'image_id' in b.info.features:
        ids = [v.decode() for v in read(split).map(lambda ex: ex['image_id'])
               .as_numpy_iterator()]
    else:
        ids = [f'{split}:{i}' for i in range(b.info.splits[split].num_examples)]
    block = {}  # start -> JPEG/PNG bytes of items [start, start + _TFDS_BLOCK)

    def load(i):
        start = i - i % _TFDS_BLOCK
        if start not in block:
            block.clear()
            stop = min(start + _TFDS_BLOCK, len(ids))
            if '[' in split:  # already a slice: read through it
                ds = read(split).skip(start).take(stop - start)
            else:  # TFDS skips to the block through its file index
                ds = read(f'{split}[{start}:{stop}]')
            block[start] = [ex['image'] for ex in ds.as_numpy_iterator()]
        data = block[start][i - start]
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CorpusError(f'{name}/{split} in {data_dir}: item {i} ({ids[i]}): '
                              f'cannot decode its image')
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    return Corpus(ids, load, {'kind': 'tfds', 'tfds': str(name), 'split': split,
                              'data_dir': os.path.abspath(data_dir) if data_dir else None})


def concatenate(parts):
    """The corpora of `parts` ({name: Corpus}) one after another, in the mapping's order.
    Ids are '<name>/<id in the part>' (unique across parts that share ids, e.g. file names);
    the description lists every part's description with its name, so a pseudo-label manifest
    of other parts, or of the same parts in another order, is refused."""
    parts = dict(parts)
    if not parts:
        raise ValueError('a corpus of parts needs at least one part')
    bad = [name for name in parts if not isinstance(name, str) or not name or '/' in name]
    if bad:
        raise ValueError(f'corpus part names must be non-empty strings without "/": {bad}')
    corpora = list(parts.values())
    starts = list(itertools.accumulate((len(c) for c in corpora), initial=0))

    def load(i):
        k = bisect.bisect_right(starts, i) - 1  # the last part starting at or before i
        return corpora[k].load(i - starts[k])

    ids = [f'{name}/{ident}' for name, c in parts.items() for ident in c.ids]
    return Corpus(ids, load, {'kind': 'parts', 'parts': [{'name': name, **c.description}
                                                          for name, c in parts.items()]})


def open_corpus(spec=None, **kwargs):
    """A Corpus from a spec: a folder path, or a mapping (dict, ConfigDict) / keywords with
    'images' (folder), 'boxes' + 'images' (box list), 'tfds' [+ 'split', 'data_dir'], or
    'parts' ({name: spec}: their corpora concatenated in order). Detected faces need a
    detector: stc.corpus_spec.open_corpus adds that kind."""
    if isinstance(spec, (str, os.PathLike)):
        spec = {'images': spec}
    spec = {**dict(spec or {}), **kwargs}
    spec = {k: v for k, v in spec.items() if v not in (None, '')}
    keys = set(spec)
    if 'tfds' in keys and keys <= {'tfds', 'split', 'data_dir'}:
        return tfds_set(spec['tfds'], spec.get('split', 'train'), spec.get('data_dir'))
    if keys == {'boxes', 'images'}:
        return box_list(spec['boxes'], spec['images'])
    if keys == {'images'}:
        return image_folder(spec['images'])
    if keys == {'parts'}:
        return concatenate({name: open_corpus(part) for name, part in dict(spec['parts']).items()})
    raise ValueError(f"corpus spec {spec} not understood: give {{'images': DIR}}, "
                     f"{{'images': DIR, 'detect': 'faceboxes' or 'haar', 'faceboxes_weights': "
                     f"FILE, 'score_threshold': 0.6}} (STC), {{'boxes': FILE, 'images': DIR}}, "
                     f"{{'tfds': NAME, 'split': SPLIT, 'data_dir': DIR}} or "
                     f"{{'parts': {{NAME: SPEC, ...}}}}")
