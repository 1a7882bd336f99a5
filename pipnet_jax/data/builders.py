"""TFDS builders: raw landmark data sets -> 256x256 JPEG crops + normalised landmarks (spec 11).

Builders: one class, `PipnetBuilder`, subclassed per data set only for its name; what each
data set is (reader, crop rule, splits, options) comes from its entry in datasets.py. The
options of a build (paths, on_error, crop rule, custom landmark set) travel in its
`PipnetConfig`:

  pipnet_wflw       train, test, test_{pose,expression,illumination,makeup,occlusion,blur}
  pipnet_300w       train, common, challenge, full
  pipnet_cofw       train, test
  pipnet_wflw68     test: WFLW test faces, GSSL crop, converted to the 300W 68 points (spec 11.6)
  pipnet_cofw68     test: COFW test images, cofw68-benchmark boxes (GSSL crop) and 68 points
  pipnet_aflw       train, test
  pipnet_lapa       train, val, test
  pipnet_custom     the splits named in the config (default train, test)
  pipnet_synthetic  train, test, from the WFLW-format folder of data.synthetic

Every example: image (256, 256, 3) JPEG (cv2, quality 95: the original's crop files), landmarks
float32 (N, 2) normalised to the crop, attributes int8 (6,) = flags in ATTRIBUTE_NAMES order
(WFLW's six; -1 where the source has no such label), image_id = '<image name>#<face index>'
(the image's path relative to its data set root, and the face's 0-based position in the
source's own order, as annotations.FaceRecord.index; COFW embeds its images and names them
cofw_{split}_NNNN.jpg). Examples are stored in source order.

Offline only: built from `manual_dir` with `build(name, data_dir, manual_dir, **options)`,
read with `load(name, split, data_dir)`; nothing is downloaded and GCS is never tried. The
classes are not registered with TFDS (importing this module twice must not fail), so read
through `load`/`builder`, which open the built directory itself.

Bad input: an annotation entry the parser rejects, or an image that is missing, undecodable
or truncated, raises AnnotationError naming the image file and the annotation line;
with options on_error='skip' the face is left out, and the count per split (with the first
messages) is logged and stored in the data set's metadata (`builder(...).info.metadata
['skipped']`), which `load` reports again. A point count that differs from the landmark set
always raises: it means the configuration does not fit the data.

    python -m pipnet_jax.data.builders --name pipnet_wflw --data_dir DIR --manual_dir WFLW_ROOT
    python -m pipnet_jax.data.builders --name pipnet_synthetic --data_dir DIR --synthetic 512,128
"""
import argparse
import dataclasses
import logging
import os
import pathlib
import re
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from pipnet_jax.data import annotations as A
from pipnet_jax.data import synthetic
from pipnet_jax.data.datasets import (ATTRIBUTE_NAMES, BUILDER_NAMES, DATASETS, dataset_key,
                                      landmark_facts, read_records, resolve_options)
from pipnet_jax.errors import EXPECTED_ERRORS
from pipnet_jax.files import IMAGE_SIZE, JPEG_QUALITY, encode_jpeg, jpeg_ends_cleanly
from pipnet_jax.landmarks import get_landmark_set

log = logging.getLogger(__name__)

DATASET_VERSION = '1.0.0'
DEFAULT_CONFIG = 'default'
MAX_SKIP_MESSAGES = 20  # kept in the metadata per split; the count is always exact


def _hide_gpus():
    """TF must never take an accelerator from JAX; only possible before TF's runtime starts."""
    try:
        tf.config.set_visible_devices([], 'GPU')
    except RuntimeError:
        pass


_hide_gpus()


class _NoCustomConfigNotice(logging.Filter):
    # Every build passes its own config (see PipnetBuilder), so TFDS's warning that a
    # "custom data configuration" is used would appear on every build and means nothing here.
    def filter(self, record):
        return not str(record.msg).startswith('Using custom data configuration')


logging.getLogger('absl').addFilter(_NoCustomConfigNotice())


@dataclasses.dataclass(eq=False)
class PipnetConfig(tfds.core.BuilderConfig):
    """A builder configuration: `options` are the data set's options (see DATASETS) that
    differ from the defaults; the config name separates builds with different options."""
    options: dict = dataclasses.field(default_factory=dict)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


# --- reading images ----------------------------------------------------------------------------

def jpeg_is_complete(data):
    """Whether JPEG bytes hold the whole image. A JPEG cut short lacks its end-of-image
    marker; cv2 decodes such a file anyway (grey bottom rows, one warning on stderr), so
    readers check. Files with bytes after the marker are legal: TF's strict decoder judges
    whatever does not end with it (the `strict_check` of files.read_image)."""
    if jpeg_ends_cleanly(data):
        return True
    try:
        tf.io.decode_jpeg(data, channels=3, try_recover_truncated=False)
        return True
    except tf.errors.InvalidArgumentError:
        return False


def read_image(record):
    """The record's image RGB uint8 as annotations.load_image (cv2), a JPEG file checked to
    be complete with TF's strict decoder -> AnnotationError naming the annotation line and
    the file."""
    return A.load_image(record, strict_check=jpeg_is_complete)


def decode_image(encoded):
    """JPEG or PNG bytes (tf.string scalar) -> uint8 (H, W, 3). JPEG uses the accurate integer
    DCT: it reproduces cv2/PIL (the original's readers) bit for bit, where TF's default
    (fast DCT, as tfds' own Image decoding uses) is off by up to 5 levels."""
    is_jpeg = tf.strings.substr(encoded, 0, 2) == b'\xff\xd8'
    image = tf.cond(is_jpeg,
                    lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method='INTEGER_ACCURATE'),
                    lambda: tf.io.decode_png(encoded, channels=3))
    return tf.ensure_shape(image, [None, None, 3])


# --- the builder -------------------------------------------------------------------------------

class PipnetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the per-data-set builders; DATASET picks the reader (a key of DATASETS)."""
    DATASET = None
    VERSION = tfds.core.Version(DATASET_VERSION)
    RELEASE_NOTES = {DATASET_VERSION: 'Crops as the original PIPNet preprocessing (spec 11).'}
    # No class-level configs: every build passes its own PipnetConfig (TFDS forbids reusing
    # a class config's name for another instance, and the options vary per build).
    BUILDER_CONFIGS = []

    @property
    def _options(self):
        return resolve_options(self.DATASET, self.builder_config.options)

    def _info(self):
        opts = self._options
        landmark_set, n = landmark_facts(self.DATASET, opts)
        crop = opts['crop'] or DATASETS[self.DATASET].crop
        raw = DATASETS[self.DATASET].raw_landmarks
        converted = (f' The raw {raw} labels are converted after normalisation (as the '
                     f'original does).' if raw else '')
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                f'{self.DATASET} faces cropped with the original PIPNet rule {crop!r} and resized '
                f'to {IMAGE_SIZE}x{IMAGE_SIZE} (JPEG quality {JPEG_QUALITY}); landmarks '
                f'({n}, 2) (x, y) normalised to the crop. attributes: int8 flags '
                f'{list(ATTRIBUTE_NAMES)}, -1 = not labelled. image_id: '
                f'"<image name>#<face index in the source>". Faces skipped for bad input '
                f'(on_error="skip") are counted in metadata["skipped"].{converted}'),
            features=tfds.features.FeaturesDict({
                'image': tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                             encoding_format='jpeg'),
                'landmarks': tfds.features.Tensor(shape=(n, 2), dtype=np.float32),
                'attributes': tfds.features.Tensor(shape=(len(ATTRIBUTE_NAMES),),
                                                   dtype=np.int8),
                'image_id': tfds.features.Text(),
            }),
            # Source order is kept: eval outputs line up with the annotation files.
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(
                dataset=self.DATASET, landmark_set=landmark_set, num_points=n, crop=crop,
                raw_landmark_set=raw,
                attribute_names=list(ATTRIBUTE_NAMES), options=_jsonable(opts),
                skipped={}, skipped_examples={}),
        )

    def _split_generators(self, dl_manager):
        manual_dir = pathlib.Path(dl_manager.manual_dir)
        opts = self._options
        records = read_records(self.DATASET, manual_dir, opts)
        if self.DATASET == 'synthetic' and (manual_dir / synthetic.INFO_FILE).is_file():
            # Lets prepare_synthetic tell a stale build from a current one.
            self.info.metadata['raw_info'] = (manual_dir / synthetic.INFO_FILE).read_text()
        for split, recs in records.items():
            if not recs:
                raise ValueError(f'pipnet_{self.DATASET}: split {split!r} has no faces '
                                 f'({len(recs.skipped)} skipped) in {manual_dir}')
        return {split: self._generate_examples(split, recs) for split, recs in records.items()}

    def _generate_examples(self, split, records):
        opts = self._options
        meta = self.info.metadata
        convert = DATASETS[self.DATASET].convert
        raw = meta['raw_landmark_set']  # the point count is checked before any conversion
        n = get_landmark_set(raw).num_points if raw else meta['num_points']
        what = raw or meta['landmark_set'] or 'num_points'
        crop_rule = meta['crop']
        skipped = list(records.skipped)
        cached = (None, None)  # (path, image): faces of one image are usually consecutive
        for record in records:
            if len(record.landmarks) != n:
                raise A.AnnotationError(
                    f'{record.source}: expected {n} points ({what}), got '
                    f'{len(record.landmarks)}: wrong landmark set for this data?')
            try:
                if record.image is None and cached[0] == record.image_path:
                    image = cached[1]
                else:
                    image = read_image(record)
                    cached = (record.image_path, image)
                crop, landmarks = A.crop_face(image, record, crop_rule, IMAGE_SIZE,
                                              scale=opts.get('crop_scale'))
                if convert is not None:
                    landmarks = convert(landmarks)
            except A.AnnotationError as e:
                if opts['on_error'] == 'raise':
                    raise
                skipped.append(str(e))
                continue
            jpeg = encode_jpeg(crop, f'{record.source}: the crop')
            attributes = [record.attributes.get(a, -1) for a in ATTRIBUTE_NAMES]
            image_id = f'{record.name}#{record.index}'
            yield image_id, {
                'image': jpeg,
                'landmarks': landmarks.astype(np.float32),
                'attributes': np.asarray(attributes, np.int8),
                'image_id': image_id,
            }
        # Stored with the data set (written after all splits are generated).
        self.info.metadata['skipped'][split] = len(skipped)
        self.info.metadata['skipped_examples'][split] = skipped[:MAX_SKIP_MESSAGES]
        if skipped:
            log.warning('pipnet_%s %s: skipped %d face(s) (on_error="skip"); first: %s',
                        self.DATASET, split, len(skipped), skipped[0])


def _builder_class(key):
    return type(f'Pipnet_{key}', (PipnetBuilder,),
                {'name': f'pipnet_{key}', 'DATASET': key,
                 'MANUAL_DOWNLOAD_INSTRUCTIONS': DATASETS[key].instructions,
                 '__module__': __name__}, skip_registration=True)


BUILDERS = {f'pipnet_{key}': _builder_class(key) for key in DATASETS}


# --- public API --------------------------------------------------------------------------------

def _split_name(name):
    """'pipnet_x[/config]' -> (builder name, config name)."""
    builder_name, _, config = str(name).partition('/')
    return f'pipnet_{dataset_key(builder_name)}', config or DEFAULT_CONFIG


def build(name, data_dir, manual_dir, *, overwrite=False, **options):
    """Builds data set `name` ('pipnet_wflw', ..., see BUILDERS) from the raw files in
    manual_dir into data_dir (offline; an existing build is reused unless overwrite=True).

    options: the data set's options (DATASETS[...].options, plus on_error='raise'|'skip' and
    crop=<annotations crop rule>); config_name='...' (default 'default') keeps builds with
    different options apart: load them as 'pipnet_custom/<config_name>'.
    Returns the builder; builder.info.metadata['skipped'] counts skipped faces per split.
    """
    key = dataset_key(name)
    config_name = options.pop('config_name', DEFAULT_CONFIG)
    landmark_facts(key, resolve_options(key, options))  # fail before TFDS starts
    config = PipnetConfig(name=config_name, version=DATASET_VERSION, options=_jsonable(options))
    builder = BUILDERS[f'pipnet_{key}'](data_dir=os.fspath(data_dir), config=config)
    mode = (tfds.download.GenerateMode.FORCE_REDOWNLOAD if overwrite
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=os.fspath(manual_dir), try_download_gcs=False, download_mode=mode))
    except AssertionError as e:  # TFDS asserts on a missing manual_dir: say it as one line
        if 'Manual directory' not in str(e):
            raise
        raise FileNotFoundError(f'{name}: the raw folder (manual_dir) {manual_dir} does not exist or is '
                                f'empty; it must hold: {DATASETS[key].raw_layout or DATASETS[key].instructions}') from None
    _report(builder)
    return builder


def _report(builder):
    """One summary line per build or load; a warning whenever faces were skipped."""
    skipped = dict(builder.info.metadata.get('skipped') or {})
    counts = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
    if any(skipped.values()):
        log.warning('%s/%s in %s: %s examples, %s faces skipped for bad input (see '
                    'info.metadata["skipped_examples"])', builder.name,
                    builder.builder_config.name if builder.builder_config else '',
                    builder.data_dir, counts, skipped)
    else:
        log.info('%s in %s: %s examples', builder.name, builder.data_dir, counts)


def builder(name, data_dir):
    """The built data set 'pipnet_x[/config]' in data_dir (newest version), read-only: its
    info (splits, metadata) and as_dataset. Needs no raw files and no builder code."""
    builder_name, config = _split_name(name)
    config_dir = pathlib.Path(data_dir) / builder_name / config
    # Only finished builds: TFDS writes into 'incomplete.*' beside them and renames at the end.
    versions = sorted((d for d in config_dir.glob('*') if re.fullmatch(r'\d+\.\d+\.\d+', d.name)
                       and (d / 'dataset_info.json').is_file()),
                      key=lambda d: tfds.core.Version(d.name))
    if not versions:
        how = '' if config == DEFAULT_CONFIG else f', config_name={config!r}'
        raise FileNotFoundError(f'no built data set {builder_name}/{config} in {data_dir}: run '
                                f'pipnet_jax.data.builders.build({builder_name!r}, data_dir, '
                                f'manual_dir{how})')
    return tfds.builder_from_directory(versions[-1])


def load(name, split, data_dir, *, decode=True, read_config=None):
    """tf.data.Dataset of one split (any TFDS split string, e.g. 'train[:10%]') of a built
    data set, in stored (source) order: {'image': uint8 (256, 256, 3) (JPEG bytes when
    decode=False), 'landmarks': float32 (N, 2), 'attributes': int8 (6,), 'image_id': str}."""
    b = builder(name, data_dir)
    _report(b)
    ds = b.as_dataset(split=split, shuffle_files=False, read_config=read_config,
                      decoders={'image': tfds.decode.SkipDecoding()})
    if decode:
        ds = ds.map(lambda ex: {**ex, 'image': decode_image(ex['image'])},
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds


def prepare_synthetic(data_dir, num_train=512, num_test=128, seed=0, *, workers=None,
                      style='a'):
    """Writes the synthetic raw set under data_dir/raw (synthetic.write_wflw_dataset) and
    builds 'pipnet_synthetic' from it; both steps are skipped when already done with these
    parameters, and a build from other parameters (style included) is replaced. Returns the
    builder. style: a key of synthetic.STYLES ('b': a shifted domain)."""
    raw = pathlib.Path(data_dir) / 'raw'
    synthetic.write_wflw_dataset(raw, num_train, num_test, seed, workers=workers, style=style)
    current = (raw / synthetic.INFO_FILE).read_text()
    try:
        stale = builder('pipnet_synthetic', data_dir).info.metadata.get('raw_info') != current
    except FileNotFoundError:
        stale = False
    return build('pipnet_synthetic', data_dir, raw, overwrite=stale)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Build a PIPNet TFDS data set offline.')
    parser.add_argument('--name', required=True, choices=BUILDER_NAMES)
    parser.add_argument('--data_dir', required=True)
    parser.add_argument('--manual_dir', help='raw files (not needed with --synthetic)')
    parser.add_argument('--synthetic', metavar='TRAIN,TEST',
                        help='pipnet_synthetic only: write this many faces under data_dir/raw')
    parser.add_argument('--on_error', choices=('raise', 'skip'), default='raise')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        if args.synthetic:
            num_train, num_test = (int(v) for v in args.synthetic.split(','))
            b = prepare_synthetic(args.data_dir, num_train, num_test)
        else:
            b = build(args.name, args.data_dir, args.manual_dir, on_error=args.on_error)
    except EXPECTED_ERRORS as e:  # a bad raw file or folder: its one line, no traceback
        sys.exit(f'error: {e}')
    for split, info in b.info.splits.items():
        print(f'{b.name} {split}: {info.num_examples} examples')


if __name__ == '__main__':
    main()
