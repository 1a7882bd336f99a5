"""COFW (spec 11.3: the .mat files with the images embedded) and COFW-68 (spec 11.6: the
cofw68-benchmark's boxes and 68 points for the COFW test images)."""
import dataclasses
import os

import numpy as np

from pipnet_jax.crops import AnnotationError
from pipnet_jax.data.annotations.matlab import load_mat
from pipnet_jax.data.annotations.records import FaceRecord, Records, collect, parse_numbers
from pipnet_jax.landmarks import get_landmark_set


def read_cofw(mat_file, *, on_error='raise'):
    """COFW_{train,test}_color.mat (MATLAB v7.3: IsTr/IsT images, bboxesTr/bboxesT x y w h,
    phisTr/phisT 29 x, 29 y, 29 occlusion flags) -> Records with the decoded RGB image."""
    mat = load_mat(mat_file)
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
        values = parse_numbers(np.concatenate([phis[i, :2 * n], boxes[i]]), src)
        x, y, w, h = values[2 * n:]
        return FaceRecord(
            mat_file, (x, y, x + w, y + h), np.stack([values[:n], values[n:2 * n]], 1),
            source=src, dataset='cofw', name=f'cofw_{split}_{i + 1:04d}.jpg', index=i,
            image_size=(image.shape[1], image.shape[0]), image=np.ascontiguousarray(image),
            visible=phis[i, 2 * n:] == 0)
    return collect(((i,) for i in range(len(images))), build, mat_file, on_error)


def read_cofw68(mat_file, bbox_file, points_dir, *, on_error='raise'):
    """COFW-68 (the cofw68-benchmark, spec 11.6): the images of COFW_test_color.mat with the
    benchmark's boxes (bbox_file: `bboxes`, one x y w h row per image) and 68 points
    (points_dir/{k}_points.mat: `Points` 68 x 2, pixels, k = 1-based image index); both are
    released as MATLAB v5 files (scipy), unlike the v7.3 COFW file. Records as read_cofw's
    with that box and those landmarks, source 'bbox_file:k', dataset 'cofw68' (crop rule
    cofw_gssl: the box grown 1.3; the landmarks are neither truncated nor clipped)."""
    faces = read_cofw(mat_file, on_error=on_error)
    num_images = len(faces) + len(faces.skipped)
    mat = load_mat(bbox_file)
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
        points = load_mat(path)
        if 'Points' not in points:
            raise AnnotationError(f'{path}: expected a variable Points ({n} x 2); found '
                                  f'{sorted(v for v in points if v[0] != "_")}')
        landmarks = np.asarray(points['Points'])
        if landmarks.shape != (n, 2):
            raise AnnotationError(f'{path}: Points has shape {landmarks.shape}, expected ({n}, 2)')
        landmarks = parse_numbers(landmarks.ravel(), path).reshape(n, 2)
        src = f'{bbox_file}:{k}'
        x, y, w, h = parse_numbers(boxes[face.index], src)
        occluded = np.asarray(points.get('Occ', [])).reshape(-1)
        return dataclasses.replace(face, box=(x, y, x + w, y + h), landmarks=landmarks,
                                   source=src, dataset='cofw68',
                                   visible=occluded == 0 if len(occluded) == n else None)
    records = collect(((f,) for f in faces), build, points_dir, on_error)
    return Records(records, faces.skipped + records.skipped)
