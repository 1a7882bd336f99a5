"""Procedural faces in the raw WFLW format: the project's embedded default data set.

A face is a parametric 98-point WFLW shape (identity, expression, pose on a cylinder head;
shape.py) drawn with a few anti-aliased cv2 fills over a cluttered background, then degraded
(lighting, occluders, blur, noise; render.py), and written in WFLW's raw layout (writer.py), so
every WFLW code path (parser, crop rule, TFDS builder, evaluation subsets) runs on it unchanged.

Styles (`style`): 'a' is the default domain; 'b' is a deliberately different one for
domain-shift experiments (larger yaw/roll, strong side light at low contrast, a muted, darker
palette with striped backgrounds, more and larger occluders, more and stronger blur). See STYLES.

No TensorFlow or JAX here: worker processes start fast, and the generator runs anywhere.

    python -m pipnet_jax.data.synthetic --out DIR
"""
from pipnet_jax.data.synthetic.render import (ATTRIBUTES, OCCLUDED_POINTS_FOR_FLAG, RECT_MARGINS,
                                              draw_landmarks, generate_face)
from pipnet_jax.data.synthetic.shape import (NUM_LANDMARKS, STYLES, WFLW_FLIP, Style,
                                             canonical_shape, face_shape)
from pipnet_jax.data.synthetic.writer import (ANNOTATION_DIR, IMAGE_SUBDIR, INFO_FILE, SPLITS,
                                              VERSION, annotation_file, annotation_line, main,
                                              render_preview, write_wflw_dataset)

__all__ = ["ANNOTATION_DIR", "ATTRIBUTES", "IMAGE_SUBDIR", "INFO_FILE", "NUM_LANDMARKS",
           "OCCLUDED_POINTS_FOR_FLAG", "RECT_MARGINS", "SPLITS", "STYLES", "Style", "VERSION",
           "WFLW_FLIP", "annotation_file", "annotation_line", "canonical_shape", "draw_landmarks",
           "face_shape", "generate_face", "main", "render_preview", "write_wflw_dataset"]
