"""Raw face-landmark annotations -> FaceRecord, and each dataset's original PIPNet crop.

Parsers (numpy + cv2 only, no TensorFlow; one module per format), each returning `Records`
(a list of FaceRecord, records.py):
  read_wflw, parse_wflw_line, read_wflw_subset_lists   wflw.py    WFLW text lists (spec 11.2)
  read_300w, read_pts                                  w300.py    300W .pts folder tree (11.1)
  read_cofw                                            cofw.py    COFW .mat, images embedded (11.3)
  read_cofw68                                          cofw.py    cofw68-benchmark labels (11.6)
  read_aflw                                            aflw.py    AFLWinfo_release.mat (11.4)
  read_lapa                                            lapa.py    LaPa folder tree (11.5)
  read_celeba_boxes                                    celeba.py  GSSL CelebA boxes (11.6)
  read_custom                                          custom.py  txt lines, .pts, COCO json

Crops (spec 11, defined in pipnet_jax.crops and re-exported here): `crop_box(record, dataset)`
reproduces the original preprocessing's box (and the landmarks it normalises);
`crop_face(image, record, dataset)` cuts and resizes to 256x256.

Errors: `AnnotationError` (a ValueError) whose message starts with where the entry is:
'file:line:' for text files, 'file:k:' (k = 1-based face index in the file) for .mat files,
'file:annotations[k]:' for COCO json. Parsers take on_error='raise' (default) or 'skip';
skipped entries are listed in the returned Records' `skipped` and logged in one warning with
their count. A missing or unreadable annotation file or folder always raises.
Images returned by this package are RGB uint8 (H, W, 3).
"""
from pipnet_jax.crops import (CROP_RULES, AnnotationError, CropBox, crop_box, crop_face, crop_rule,
                              load_image, record_image_size)
from pipnet_jax.data.annotations.aflw import read_aflw
from pipnet_jax.data.annotations.celeba import read_celeba_boxes
from pipnet_jax.data.annotations.cofw import read_cofw, read_cofw68
from pipnet_jax.data.annotations.custom import read_custom
from pipnet_jax.data.annotations.lapa import read_lapa
from pipnet_jax.data.annotations.records import FaceRecord, Records
from pipnet_jax.data.annotations.w300 import SPLITS_300W, read_300w, read_pts
from pipnet_jax.data.annotations.wflw import (WFLW_ATTRIBUTES, WFLW_SUBSET_FILES, parse_wflw_line,
                                              read_wflw, read_wflw_subset_lists, wflw_face_key)
from pipnet_jax.files import IMAGE_EXTENSIONS

__all__ = ['AnnotationError', 'CROP_RULES', 'CropBox', 'FaceRecord', 'IMAGE_EXTENSIONS', 'Records',
           'SPLITS_300W', 'WFLW_ATTRIBUTES', 'WFLW_SUBSET_FILES', 'crop_box', 'crop_face',
           'crop_rule', 'load_image', 'parse_wflw_line', 'read_300w', 'read_aflw',
           'read_celeba_boxes', 'read_cofw', 'read_cofw68', 'read_custom', 'read_lapa',
           'read_pts', 'read_wflw', 'read_wflw_subset_lists', 'record_image_size', 'wflw_face_key']
