"""CelebA as GSSL uses it (spec 11.6): detector boxes, no landmarks."""
import os

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.records import FaceRecord, collect, parse_numbers, text_lines


def read_celeba_boxes(bbox_file, images_dir, *, on_error='raise', check_images=True):
    """GSSL celeba_bboxes.txt (lines 'name xmin ymin xmax ymax') -> Records without landmarks."""
    def build(src, tok, i):
        if len(tok) != 5:
            raise AnnotationError(f'{src}: expected 5 fields (image xmin ymin xmax ymax), '
                                  f'got {len(tok)}')
        box = tuple(parse_numbers(tok[1:], src, 2).tolist())
        return FaceRecord(os.path.join(images_dir, tok[0]), box, np.zeros((0, 2)), source=src,
                          dataset='celeba', name=tok[0], index=i)
    lines = text_lines(bbox_file)
    return collect(((src, tok, i) for i, (src, tok) in enumerate(lines)), build, bbox_file,
                    on_error, check_images)
