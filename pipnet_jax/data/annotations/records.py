"""The annotation record types and what every format's parser shares: collecting entries
(on_error='raise' or 'skip'), reading numbers and text lines, pairing images with label files.
Errors are AnnotationError (pipnet_jax.crops) naming where the entry is ('file:line: ...')."""
import dataclasses
import logging
import math
import os
from typing import Optional

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.files import is_image_file

# One logger for the whole annotations package (its warnings name the skipped entries).
log = logging.getLogger('pipnet_jax.data.annotations')


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


def collect(entries, build, what, on_error='raise', check_images=False):
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


def text_lines(path):
    """(source 'path:line', tokens) for each non-blank line of a text file."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    return [(f'{path}:{i}', line.split()) for i, line in enumerate(lines, 1) if line.split()]


def parse_numbers(values, source, first_field=1):
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


def check_points(landmarks, expected, source, dataset):
    if len(landmarks) != expected:
        raise AnnotationError(f'{source}: expected {expected} points for {dataset}, '
                              f'got {len(landmarks)}')


def pair_files(image_dir, ann_dir, ann_ext):
    """[(image_name or None, annotation_name or None)] paired by file stem, in the sorted
    order of the image names (as the original's sorted(os.listdir))."""
    for d in (image_dir, ann_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f'folder not found: {d}')
    images, anns = {}, {}
    for f in os.listdir(image_dir):
        stem, ext = os.path.splitext(f)
        if is_image_file(f):
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
