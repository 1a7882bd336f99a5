"""One table of the data sets: what each raw set is and how its files are read.

Per data set (a `Dataset`, looked up with `get(name)`, name 'wflw' or 'pipnet_wflw'): its
landmark set, default crop rule (pipnet_jax.crops.CROP_RULES), splits, build options with their
defaults (paths relative to the raw folder, manual_dir), the raw folder's layout (for errors
that say what is missing), the instructions TFDS shows, a conversion of the labels (WFLW-68),
and the reader: raw folder + options -> {split: annotations.Records}. The TFDS builders
(builders.py) and the experiment wiring (experiment_data.py) read everything from here.
"""
import dataclasses
import functools
import pathlib
from typing import Callable, Optional

from pipnet_jax.data import annotations as A
from pipnet_jax.landmarks import get_landmark_set, wflw98_to_68

# attributes: int8 flags in this order (WFLW's six; -1 where the source has no such label)
ATTRIBUTE_NAMES = A.WFLW_ATTRIBUTES
COMMON_OPTIONS = {'on_error': 'raise', 'crop': None}  # accepted by every data set


@dataclasses.dataclass(frozen=True)
class Dataset:
    landmark_set: Optional[str]  # pipnet_jax.landmarks name; None for custom (from options)
    crop: str                    # default crop rule (crops.CROP_RULES)
    splits: Optional[tuple]      # None for custom (from options)
    options: dict                # accepted options -> defaults (paths relative to manual_dir)
    instructions: str
    read: Callable               # (manual_dir Path, resolved options) -> {split: Records}
    raw_layout: Optional[str] = None  # what the raw folder holds (None: generated, synthetic)
    raw_landmarks: Optional[str] = None  # landmark set of the raw labels when they are converted
    convert: Optional[Callable] = None   # normalised raw labels (K, 2) -> stored labels (N, 2)


# --- readers: raw folder -> {split: Records} ---------------------------------------------------

def _path(manual_dir, value):
    return manual_dir / value  # an absolute value replaces manual_dir


def _read_wflw(manual_dir, opts, splits=('train', 'test'), subsets=False):
    on_error = opts['on_error']
    images_dir = _path(manual_dir, opts['images_dir'])
    ann_dir = _path(manual_dir, opts['annotation_dir'])
    out = {s: A.read_wflw(ann_dir / f'list_98pt_rect_attr_{s}.txt', images_dir, on_error=on_error)
           for s in splits}
    if subsets:
        # Subsets by matching each test face to the official lists (spec 11.2).
        lists = A.read_wflw_subset_lists(_path(manual_dir, opts['subset_dir']), on_error=on_error)
        for attr, keys in lists.items():
            out[f'test_{attr}'] = A.Records(
                [r for r in out['test'] if A.wflw_face_key(r.name, r.landmarks) in keys])
    return out


def _read_300w(manual_dir, opts):
    return {s: A.read_300w(manual_dir, s, on_error=opts['on_error']) for s in A.SPLITS_300W}


def _read_cofw(manual_dir, opts):
    return {s: A.read_cofw(_path(manual_dir, opts[f'{s}_file']), on_error=opts['on_error'])
            for s in ('train', 'test')}


def _read_cofw68(manual_dir, opts):
    return {'test': A.read_cofw68(_path(manual_dir, opts['test_file']),
                                  _path(manual_dir, opts['bbox_file']),
                                  _path(manual_dir, opts['points_dir']), on_error=opts['on_error'])}


def _read_aflw(manual_dir, opts):
    mat_file = _path(manual_dir, opts['mat_file'])
    images_dir = _path(manual_dir, opts['images_dir'])
    return {s: A.read_aflw(mat_file, images_dir, s, num_train=opts['num_train'],
                           on_error=opts['on_error'])
            for s in ('train', 'test')}


def _read_lapa(manual_dir, opts):
    return {s: A.read_lapa(manual_dir, s, on_error=opts['on_error'])
            for s in ('train', 'val', 'test')}


def _read_custom(manual_dir, opts):
    # The landmark count is enforced per line by the parser (file:line errors).
    _, n = landmark_facts('custom', opts)
    images_dir = _path(manual_dir, opts['images_dir'])
    out = {}
    for split, where in opts['splits'].items():
        where = _path(manual_dir, where)
        if opts['annotation_format'] == 'pts' or where.is_dir():
            out[split] = A.read_custom(where, None, n, 'pts', on_error=opts['on_error'])
        else:
            out[split] = A.read_custom(images_dir, where, n, opts['annotation_format'],
                                       on_error=opts['on_error'])
    return out


# --- the table ---------------------------------------------------------------------------------

_WFLW_FILES = {'images_dir': 'WFLW_images',
               'annotation_dir': 'WFLW_annotations/list_98pt_rect_attr_train_test'}
DATASETS = {
    'wflw': Dataset(
        'wflw', 'wflw',
        ('train', 'test') + tuple(f'test_{a}' for a in ATTRIBUTE_NAMES),
        {**_WFLW_FILES, 'subset_dir': 'WFLW_annotations/list_98pt_test'},
        'manual_dir holds WFLW_images/ and WFLW_annotations/ (list_98pt_rect_attr_train_test/, '
        'list_98pt_test/) as unpacked from the official WFLW archives.',
        functools.partial(_read_wflw, subsets=True),
        raw_layout='WFLW_images/ and WFLW_annotations/'),
    'wflw68': Dataset(
        '300w', 'wflw_gssl', ('test',), dict(_WFLW_FILES),
        'manual_dir holds WFLW_images/ and WFLW_annotations/list_98pt_rect_attr_train_test/ as '
        'unpacked from the official WFLW archives (only the test list is read).',
        functools.partial(_read_wflw, splits=('test',)),
        raw_layout='WFLW_images/ and WFLW_annotations/ (the WFLW test faces, converted to 68 '
                   'points)',
        # On the normalised labels, as the original's convert_wflw: the eye weights sum to
        # 0.999, so converting pixel coordinates and normalising afterwards would give other
        # labels.
        raw_landmarks='wflw', convert=wflw98_to_68),
    'synthetic': Dataset(
        'wflw', 'wflw', ('train', 'test'), dict(_WFLW_FILES),
        'manual_dir is a folder written by pipnet_jax.data.synthetic.write_wflw_dataset '
        '(see prepare_synthetic).',
        _read_wflw),
    '300w': Dataset(
        '300w', '300w', tuple(A.SPLITS_300W), {},
        'manual_dir is the 300W root with afw/, helen/{trainset,testset}/, '
        'lfpw/{trainset,testset}/ and ibug/ (images with their .pts files).',
        _read_300w, raw_layout='afw/ helen/ lfpw/ ibug/ with .pts'),
    'cofw': Dataset(
        'cofw', 'cofw', ('train', 'test'),
        {'train_file': 'COFW_train_color.mat', 'test_file': 'COFW_test_color.mat'},
        'manual_dir holds COFW_train_color.mat and COFW_test_color.mat.',
        _read_cofw, raw_layout='COFW_train_color.mat and COFW_test_color.mat'),
    'cofw68': Dataset(
        '300w', 'cofw_gssl', ('test',),
        {'test_file': 'COFW_test_color.mat', 'bbox_file': 'cofw68_test_bboxes.mat',
         'points_dir': 'cofw68_test_annotations'},
        'manual_dir holds COFW_test_color.mat (the COFW release), cofw68_test_bboxes.mat and '
        'cofw68_test_annotations/{1..507}_points.mat (github.com/golnazghiasi/cofw68-benchmark, '
        'COFW68_Data/cofw68_test_bboxes.mat and COFW68_Data/test_annotations/).',
        _read_cofw68,
        raw_layout='COFW_test_color.mat, cofw68_test_bboxes.mat and cofw68_test_annotations/'),
    'aflw': Dataset(
        'aflw', 'aflw', ('train', 'test'),
        {'mat_file': 'AFLWinfo_release.mat', 'images_dir': 'flickr', 'num_train': 20000},
        'manual_dir holds AFLWinfo_release.mat and flickr/ (the AFLW images).',
        _read_aflw, raw_layout='AFLWinfo_release.mat and images'),
    'lapa': Dataset(
        'lapa', 'lapa', ('train', 'val', 'test'), {},
        'manual_dir is the LaPa root with {train,val,test}/{images,landmarks}/.',
        _read_lapa, raw_layout='train/ val/ test/ with images/ and landmarks/'),
    'custom': Dataset(
        None, 'custom', None,
        {'splits': {'train': 'train.txt', 'test': 'test.txt'}, 'annotation_format': None,
         'images_dir': '.', 'num_points': None, 'landmark_set': None, 'crop_scale': None},
        'manual_dir holds the images and, per split, an annotation file (txt or COCO json) '
        'or a folder of images with .pts files; see annotations.read_custom.',
        _read_custom, raw_layout='images and annotations'),
}
BUILDER_NAMES = tuple(f'pipnet_{d}' for d in DATASETS)
# What each raw data set folder must contain, for the error when it is missing.
RAW_LAYOUT = {key: d.raw_layout for key, d in DATASETS.items() if d.raw_layout}


# --- lookups -----------------------------------------------------------------------------------

def dataset_key(name):
    """'pipnet_wflw' or 'wflw' -> 'wflw'; an unknown name raises ValueError."""
    key = str(name).removeprefix('pipnet_')
    if key not in DATASETS:
        raise ValueError(f'unknown data set {name!r}; known: {BUILDER_NAMES}')
    return key


def get(name) -> Dataset:
    """The table entry of data set `name` ('wflw' or 'pipnet_wflw')."""
    return DATASETS[dataset_key(name)]


def resolve_options(key, options):
    """Defaults + given options; a misspelt option raises instead of being ignored."""
    allowed = {**COMMON_OPTIONS, **DATASETS[key].options}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f'pipnet_{key}: unknown options {unknown}; known: {sorted(allowed)}')
    opts = {**allowed, **options}
    if opts['on_error'] not in ('raise', 'skip'):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {opts['on_error']!r}")
    return opts


def landmark_facts(key, opts):
    """(landmark set name or None, number of points) for a data set and its options."""
    name = DATASETS[key].landmark_set or opts['landmark_set']
    if name is not None:
        n = get_landmark_set(name).num_points
        if opts.get('num_points') not in (None, n):
            raise ValueError(f"pipnet_{key}: num_points={opts['num_points']} but landmark set "
                             f"{name!r} has {n} points")
        return get_landmark_set(name).name, n
    if not opts['num_points']:
        raise ValueError(f'pipnet_{key}: give num_points or landmark_set (the point count is '
                         f'part of the stored features)')
    return None, int(opts['num_points'])


def read_records(key, manual_dir, opts):
    """{split: Records} of data set `key` from its raw folder, with resolved options."""
    return DATASETS[key].read(pathlib.Path(manual_dir), opts)
