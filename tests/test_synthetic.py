"""Procedural WFLW-format faces (pipnet_jax.data.synthetic)."""
import json
import os

import cv2
import numpy as np
import pytest

from pipnet_jax.data import synthetic

# WFLW flip permutation, spec 10.1 (hard-coded here so that the test does not trust the module).
WFLW_FLIP = [int(v) for v in (
    "32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 "
    "46 45 44 43 42 50 49 48 47 37 36 35 34 33 41 40 39 38 51 52 53 54 59 58 57 56 55 "
    "72 71 70 69 68 75 74 73 64 63 62 61 60 67 66 65 82 81 80 79 78 77 76 87 86 85 84 83 "
    "92 91 90 89 88 95 94 93 97 96").split()]
SIZE = (192, 224)  # H != W catches swapped axes


def mirror(shape):
    """Horizontal flip of canonical points (x -> -x) re-indexed as the flip augmentation does."""
    return shape[WFLW_FLIP] * [-1.0, 1.0]


def read_lines(root, split):
    return synthetic.annotation_file(root, split).read_text().splitlines()


def parse(line):
    tok = line.split()
    return (np.array(tok[:196], float).reshape(98, 2), np.array(tok[196:200], float),
            [int(v) for v in tok[200:206]], tok[206])


def all_bytes(root):
    """{relative path: bytes} of every file under root."""
    return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
            for d, _, names in os.walk(root) for f in names}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "wflw"
    return synthetic.write_wflw_dataset(root, 12, 5, seed=3, image_size=SIZE, workers=1)


@pytest.fixture(scope="module")
def faces():
    """A sample of generated faces: (image, landmarks, rect, attributes) tuples."""
    rng = np.random.default_rng(11)
    return [synthetic.generate_face(rng, (160, 160)) for _ in range(200)]


def test_canonical_shape_is_flip_symmetric():
    assert sorted(WFLW_FLIP) == list(range(98))
    shape = synthetic.canonical_shape()
    assert shape.shape == (98, 2)
    np.testing.assert_allclose(mirror(shape), shape, atol=1e-6)


def test_posed_face_flips_consistently():
    # Mirroring a posed, expressive face is the same face with yaw, roll and gaze negated.
    kw = dict(pitch=12.0, mouth_open=0.12, smile=0.03, brow_raise=0.02, eye_closure=0.3)
    a = synthetic.face_shape(yaw=35.0, roll=-20.0, gaze=(0.5, 0.3), **kw)
    b = synthetic.face_shape(yaw=-35.0, roll=20.0, gaze=(-0.5, 0.3), **kw)
    np.testing.assert_allclose(mirror(a), b, atol=1e-6)
    assert np.abs(a - synthetic.canonical_shape()).max() > 0.05  # the pose did something


def test_canonical_shape_follows_the_wflw_scheme():
    s = synthetic.canonical_shape()
    x, y = s[:, 0], s[:, 1]
    assert np.all(np.diff(x[0:33]) > 0) and y[16] == y[0:33].max()  # jaw left -> chin -> right
    assert x[60] < x[64] < x[68] < x[72]  # outer-left, inner-left, inner-right, outer-right
    assert y[33:51].max() < y[60:76].min()  # brows above the eyes
    assert np.all(np.diff(y[51:55]) > 0) and np.all(np.diff(x[55:60]) > 0)  # bridge, nostrils
    assert x[76] < x[88] < x[92] < x[82]  # mouth corners outside the inner corners
    assert y[60:76].max() < y[55:60].min() and y[55:60].max() < y[76:96].min()  # eyes, nose, mouth
    assert y[76:96].max() < y[16]  # mouth above the chin
    for pupil, eye in ((96, slice(60, 68)), (97, slice(68, 76))):
        assert s[eye, 0].min() < x[pupil] < s[eye, 0].max()
        assert s[eye, 1].min() < y[pupil] < s[eye, 1].max()
    assert 0.4 < np.linalg.norm(s[60] - s[72]) < 0.6  # inter-ocular, WFLW crop units


def test_annotation_files_have_the_wflw_layout(dataset):
    for split, n in (("train", 12), ("test", 5)):
        lines = read_lines(dataset, split)
        assert len(lines) == n
        inside = []
        for i, line in enumerate(lines, 1):
            assert len(line.split()) == 98 * 2 + 4 + 6 + 1
            lm, rect, flags, path = parse(line)
            assert path == f"synthetic/{split}_{i:05d}.jpg"
            assert set(flags) <= {0, 1}
            img = cv2.imread(str(dataset / "WFLW_images" / path))
            assert img is not None and img.shape == SIZE + (3,)
            inside.append(np.mean((lm >= 0).all(1) & (lm < SIZE[::-1]).all(1)))
            # Detector-style rect: PIPNet's crop (the rect grown 1.2x, spec 11.2) holds the
            # face, and the rect's top is above the brows.
            grow = 0.1 * (rect[2:] - rect[:2])
            in_crop = (lm >= rect[:2] - grow).all(1) & (lm <= rect[2:] + grow).all(1)
            assert in_crop.mean() > 0.95
            assert rect[1] < lm[33:51, 1].min()
        assert np.mean(inside) > 0.95
    info = json.loads((dataset / synthetic.INFO_FILE).read_text())
    assert info == dict(version=synthetic.VERSION, seed=3, num_train=12, num_test=5,
                        image_size=list(SIZE))


def test_same_seed_same_bytes_any_workers_and_other_seed_differs(dataset, tmp_path):
    again = synthetic.write_wflw_dataset(tmp_path / "a", 12, 5, seed=3, image_size=SIZE,
                                         workers=2)
    assert all_bytes(again) == all_bytes(dataset)
    other = synthetic.write_wflw_dataset(tmp_path / "b", 12, 5, seed=4, image_size=SIZE,
                                         workers=1)
    a, b = all_bytes(dataset), all_bytes(other)
    ann = os.path.join(synthetic.ANNOTATION_DIR, "list_98pt_rect_attr_train.txt")
    assert a[ann] != b[ann]
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != b[k] for k in jpgs)


def test_skips_a_complete_data_set_and_rewrites_a_changed_one(tmp_path):
    root = tmp_path / "wflw"
    synthetic.write_wflw_dataset(root, 3, 2, seed=1, image_size=(64, 64), workers=1)
    ann = synthetic.annotation_file(root, "test")
    stamp = ann.stat().st_mtime_ns
    synthetic.write_wflw_dataset(root, 3, 2, seed=1, image_size=(64, 64), workers=1)
    assert ann.stat().st_mtime_ns == stamp
    synthetic.write_wflw_dataset(root, 3, 4, seed=1, image_size=(64, 64), workers=1)
    assert len(read_lines(root, "test")) == 4
    assert not [k for k in all_bytes(root) if os.path.basename(k).startswith(".")]  # no temps


def test_a_partial_data_set_is_not_taken_as_complete(tmp_path):
    root = tmp_path / "wflw"
    synthetic.write_wflw_dataset(root, 2, 1, seed=1, image_size=(64, 64), workers=1)
    synthetic.annotation_file(root, "train").unlink()  # as if killed before the last writes
    synthetic.write_wflw_dataset(root, 2, 1, seed=1, image_size=(64, 64), workers=1)
    assert len(read_lines(root, "train")) == 2


def _mean_colour(img, polygon, dilate=0):
    """Mean BGR inside the polygon, or (dilate > 0) in a ring of that width around it."""
    mask = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
    if dilate:
        mask = cv2.dilate(mask, np.ones((2 * dilate + 1,) * 2, np.uint8)) - mask
    return np.array(cv2.mean(img, mask)[:3]) if mask.any() else None


def _contrast(img, lm):
    """(face vs surrounding background, eye vs cheek) colour distances for landmarks lm."""
    hull = cv2.convexHull(lm[0:33].astype(np.float32)).reshape(-1, 2)
    face, ring = _mean_colour(img, hull), _mean_colour(img, hull, dilate=6)
    cheek = 0.5 * (lm[66] + lm[4])
    r = 0.06 * np.linalg.norm(lm[60] - lm[72])
    eye = _mean_colour(img, lm[60:68])
    skin = _mean_colour(img, cheek + r * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]))
    dist = lambda a, b: np.nan if a is None or b is None else np.linalg.norm(a - b)
    return dist(face, ring), dist(eye, skin)


def test_the_image_depends_on_the_landmarks(faces):
    # Colour differences at the true landmarks vs at another face's landmarks.
    true = np.array([_contrast(img, lm) for img, lm, _, a in faces if not a["occlusion"]])
    wrong = np.array([_contrast(faces[i][0], faces[i - 1][1]) for i in range(len(faces))])
    true, wrong = np.nanmean(true, 0), np.nanmean(wrong, 0)
    assert true[0] > 25 and true[0] > 1.5 * wrong[0], (true, wrong)  # face vs background
    assert true[1] > 25 and true[1] > 1.5 * wrong[1], (true, wrong)  # eye vs skin


def test_attribute_flags_are_binary_and_all_occur(faces):
    flags = np.array([[a[name] for name in synthetic.ATTRIBUTES] for *_, a in faces])
    assert set(np.unique(flags)) <= {0, 1}
    rates = flags.mean(0)
    assert np.all(rates > 0.05) and np.all(rates < 0.6), dict(zip(synthetic.ATTRIBUTES, rates))


def test_generate_face_outputs(faces):
    img, lm, rect, attributes = faces[0]
    assert img.dtype == np.uint8 and img.shape == (160, 160, 3)
    assert lm.dtype == np.float64 and lm.shape == (98, 2)
    assert len(rect) == 4 and rect[0] < rect[2] and rect[1] < rect[3]
    assert list(attributes) == list(synthetic.ATTRIBUTES)
    # Not a flat picture: plenty of distinct grey levels.
    assert len(np.unique(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))) > 50


def test_cli_and_preview(tmp_path):
    synthetic.main(["--out", str(tmp_path / "cli"), "--num_train", "2", "--num_test", "1",
                    "--seed", "5", "--image_size", "64", "80", "--workers", "1"])
    assert len(read_lines(tmp_path / "cli", "train")) == 2
    path = synthetic.render_preview(tmp_path / "preview.png", n=5, image_size=(64, 80))
    grid = cv2.imread(str(path))
    assert grid.shape == (2 * 64, 3 * 80, 3)
