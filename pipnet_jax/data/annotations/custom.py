"""A user's own data set: one face per text line, .pts files beside the images, or COCO
keypoint json (see read_custom)."""
import json
import os

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.records import (FaceRecord, check_points, collect, pair_files,
                                                 parse_numbers, text_lines)
from pipnet_jax.data.annotations.w300 import read_pts


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
        check_points(landmarks, expected[0], source, 'this data set')
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
            values = parse_numbers(tok[1:], src, 2)
            box = tuple(values[2 * n:].tolist()) if count == 2 * n + 4 else None
            return FaceRecord(os.path.join(images_dir, tok[0]), box,
                              check(values[:2 * n].reshape(n, 2), src), source=src, name=tok[0],
                              index=i)
        lines = text_lines(annotation_file)
        return collect(((src, tok, i) for i, (src, tok) in enumerate(lines)), build,
                        annotation_file, on_error, check_images)

    if fmt == 'pts':
        if annotation_file is not None:
            raise ValueError("fmt='pts' reads the .pts files beside the images; "
                             "annotation_file must be None")
        entries = []
        for d, subdirs, _ in os.walk(images_dir):
            subdirs.sort()
            entries += [(d, image, pts) for image, pts in pair_files(d, d, '.pts') if pts]

        def build(i, d, image, pts):
            path = os.path.join(d, pts)
            if image is None:
                raise AnnotationError(f'{path}: image not found (no image file named '
                                      f'{os.path.splitext(pts)[0]}.* next to it)')
            return FaceRecord(os.path.join(d, image), None, check(read_pts(path), path),
                              source=path, name=os.path.relpath(os.path.join(d, image), images_dir),
                              index=i)
        return collect(((i, *e) for i, e in enumerate(entries)), build, images_dir, on_error,
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
            kp = parse_numbers(kp, src).reshape(-1, 3)
            box = ann.get('bbox')
            if box is not None:
                if len(box) != 4:
                    raise AnnotationError(f'{src}: bbox must be [x, y, w, h], got {box!r}')
                x, y, w, h = parse_numbers(box, src).tolist()
                box = (x, y, x + w, y + h)
            size = (image['width'], image['height']) if 'width' in image else None
            return FaceRecord(os.path.join(images_dir, image['file_name']), box,
                              check(kp[:, :2], src), source=src, name=image['file_name'],
                              index=k, image_size=size, visible=kp[:, 2] > 0)
        return collect(enumerate(doc.get('annotations', [])), build, annotation_file, on_error,
                        check_images)

    raise ValueError(f"fmt must be 'txt', 'pts' or 'coco', got {fmt!r}")
