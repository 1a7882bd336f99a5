"""Crop rules refuse labels that clipping would silently collapse: a landmark far outside the
image, or not a number, names the annotation line (and on_error='skip' skips the face)."""
import numpy as np
import pytest

from pipnet_jax.crops import AnnotationError, crop_box
from pipnet_jax.data.annotations import FaceRecord


def record(landmarks):
    return FaceRecord("img.jpg", (10, 10, 90, 90), np.asarray(landmarks, np.float64),
                      source="list.txt:7", dataset="wflw")


def test_near_points_are_clipped_far_points_are_named():
    near = np.tile([[50.0, 50.0]], (98, 1))
    near[0] = (-20, 50)  # a little outside (faces at the image edge): clipped, as the original
    crop = crop_box(record(near), image_size=(100, 100))
    assert np.isfinite(crop.landmarks).all()
    far = near.copy()
    far[3] = (5000, 5000)
    with pytest.raises(AnnotationError, match=r"list.txt:7: landmark 3 at \(5000, 5000\) lies far "
                                              r"outside the 100x100 image"):
        crop_box(record(far), image_size=(100, 100))
    far[3] = (np.nan, 5)
    with pytest.raises(AnnotationError, match=r"list.txt:7: landmark 3 at \(nan, 5\)"):
        crop_box(record(far), image_size=(100, 100))
