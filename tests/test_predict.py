"""--mode=predict: folders in batches (equal to one by one), .pts files, persistent face ids in
video, a camera with a fake capture source."""
import csv
import os
import pathlib

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.synthetic import get_config
from pipnet_jax import predict
from pipnet_jax.data.annotations.w300 import read_pts
from pipnet_jax.data.synthetic import generate_face
from pipnet_jax.detection import FaceDetector, bucket_size
from pipnet_jax.inference import Predictor
from pipnet_jax.meanface import read_meanface
from pipnet_jax.models import PIPNet

MEANFACES = pathlib.Path(predict.__file__).parent / "meanfaces"


@pytest.fixture(scope="module")
def network():
    """A random ResNet-18 PIPNet for WFLW's 98 points."""
    model = PIPNet(98, "resnet18")
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    return model, variables, read_meanface(MEANFACES / "wflw.txt")


class ShapeKeyedDetector:
    """A stand-in detector: boxes chosen by the image's size; records its batched calls."""

    def __init__(self, boxes_by_shape):
        self.boxes_by_shape, self.batches = boxes_by_shape, []

    def detect(self, image):
        boxes = self.boxes_by_shape.get(image.shape[:2], [])
        return np.array([[*b, 0.9] for b in boxes], np.float32).reshape(-1, 5)

    def detect_batch(self, images):
        self.batches.append(len(images))
        return [self.detect(im) for im in images]


class OrderSwappingDetector:
    """Two (later three) fixed face boxes, in a different order on every call."""

    def __init__(self, boxes, third_from=None):
        self.boxes, self.third_from, self.calls = boxes, third_from, 0

    def detect(self, image):
        n = 3 if self.third_from is not None and self.calls >= self.third_from else 2
        order = list(range(n))[::-1] if self.calls % 2 else list(range(n))
        self.calls += 1
        return np.array([[*self.boxes[k], 0.9] for k in order], np.float32)


def synthetic_folder(folder, sizes_faces, seed=0):
    """Images of distinct sizes; n faces each (side by side). Returns {shape: boxes}."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    boxes_by_shape = {}
    for k, ((h, w), n) in enumerate(sizes_faces):
        image = np.full((h, w, 3), 90, np.uint8)
        boxes = []
        for j in range(n):
            face, landmarks, _, _ = generate_face(rng, (160, 160))
            x0 = 10 + j * 170
            image[20:180, x0:x0 + 160] = face
            boxes.append([x0 + landmarks[:, 0].min(), 20 + landmarks[:, 1].min(),
                          x0 + landmarks[:, 0].max(), 20 + landmarks[:, 1].max()])
        cv2.imwrite(str(folder / f"img{k}.png"), image)
        boxes_by_shape[(h, w)] = boxes
    return boxes_by_shape


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_in_batches_equals_one_by_one(network, tmp_path):
    model, variables, meanface = network
    sizes_faces = [((200, 200), 1), ((210, 360), 2), ((200, 240), 0), ((230, 380), 2),
                   ((220, 200), 1)]
    boxes = synthetic_folder(tmp_path / "in", sizes_faces)
    paths = predict.list_images(str(tmp_path / "in"))
    (tmp_path / "in" / "zz_broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    paths.insert(2, str(tmp_path / "in" / "zz_broken.jpg"))
    detector = ShapeKeyedDetector(boxes)
    predictor = Predictor(model, variables, meanface, "wflw", batch_size=4, detector=detector)
    one = list(predict.image_faces(predictor, paths, batch_size=1))
    assert detector.batches == [1] * 5  # the unreadable file is not sent
    detector.batches.clear()
    batched = list(predict.image_faces(predictor, paths, batch_size=4))
    assert detector.batches == [3, 2]   # chunks of 4 files: 3 + 1 unreadable, then 2
    assert [p for p, _, _ in batched] == paths
    assert batched[2][1] is None and "zz_broken.jpg: cannot read" in batched[2][2]
    counts = []
    for (_, image, faces_one), (_, _, faces_batched) in zip(one, batched):
        if image is None:
            continue
        counts.append(len(faces_batched))
        assert len(faces_one) == len(faces_batched)
        for a, b in zip(faces_one, faces_batched):
            np.testing.assert_allclose(b.landmarks, a.landmarks, atol=1e-4)
            np.testing.assert_allclose(b.confidence, a.confidence, atol=1e-6)
            np.testing.assert_array_equal(b.box, a.box)
    assert counts == [1, 2, 0, 2, 1]


def test_predict_mode_pts_ids_and_summary(network, tmp_path, monkeypatch, capsys):
    model, variables, meanface = network
    boxes = synthetic_folder(tmp_path / "in", [((200, 200), 1), ((210, 360), 2), ((200, 240), 0)])
    predictor = Predictor(model, variables, meanface, "wflw", batch_size=4,
                          detector=ShapeKeyedDetector(boxes))
    monkeypatch.setattr(predict, "make_predictor", lambda config, workdir: predictor)
    config = get_config()
    config.predict.input, config.predict.output = str(tmp_path / "in"), str(tmp_path / "out")
    config.predict.pts, config.predict.to_68, config.predict.batch_size = True, True, 3
    result = predict.run_predict(config, str(tmp_path))
    out = tmp_path / "out"
    assert sorted(f for f in os.listdir(out) if f.endswith(".pts")) == \
        ["img0_png.pts", "img1_png_0.pts", "img1_png_1.pts"]  # one face: <name>.pts; several: <name>_<k>.pts
    lines = (out / "img0_png.pts").read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points: 68", "{"]
    assert lines[-1] == "}" and len(lines) == 3 + 68 + 1
    records = {os.path.basename(r["source"]): r for r in result["records"]}
    for name, face in (("img0_png.pts", records["img0.png"]["faces"][0]),
                       ("img1_png_1.pts", records["img1.png"]["faces"][1])):
        np.testing.assert_allclose(read_pts(str(out / name)), face["landmarks"], atol=1e-3)
    rows = read_csv(out / "landmarks.csv")
    assert len(rows) == 3 * 68
    assert {r["face"] for r in rows if r["source"].endswith("img1.png")} == {"0", "1"}
    assert [f["id"] for f in records["img1.png"]["faces"]] == [0, 1]
    assert records["img2.png"]["faces"] == []
    assert "3 images, 3 faces in" in capsys.readouterr().out


def face_video(path, frames=8, seed=1):
    """Three synthetic faces side by side, static, light noise per frame; their boxes."""
    rng = np.random.default_rng(seed)
    tiles, boxes = [], []
    for k in range(3):
        face, landmarks, _, _ = generate_face(rng, (192, 192))
        tiles.append(face)
        boxes.append([192 * k + landmarks[:, 0].min(), landmarks[:, 1].min(),
                       192 * k + landmarks[:, 0].max(), landmarks[:, 1].max()])
    still = np.concatenate(tiles, 1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, still.shape[1::-1])
    for _ in range(frames):
        writer.write(np.clip(still + rng.integers(-4, 5, still.shape), 0, 255).astype(np.uint8))
    writer.release()
    return boxes


def test_video_face_ids_persist_when_the_detector_order_swaps(network, tmp_path, monkeypatch):
    model, variables, meanface = network
    boxes = face_video(tmp_path / "three.avi", frames=8)
    detector = OrderSwappingDetector(boxes, third_from=5)
    predictor = Predictor(model, variables, meanface, "wflw", batch_size=4, detector=detector)
    monkeypatch.setattr(predict, "make_predictor", lambda config, workdir: predictor)
    config = get_config()
    config.predict.input, config.predict.output = str(tmp_path / "three.avi"), str(tmp_path / "out")
    config.predict.redetect_every = 1  # detect on every frame: the order swaps every frame
    result = predict.run_predict(config, str(tmp_path))
    assert detector.calls == 8 and len(result["records"]) == 8
    for record in result["records"]:
        by_id = {face["id"]: face["box"] for face in record["faces"]}
        assert sorted(by_id) == ([0, 1, 2] if record["frame"] >= 5 else [0, 1])
        for face_id, box in by_id.items():  # id k is always the face of tile k
            np.testing.assert_allclose(box, boxes[face_id], atol=1)
    rows = read_csv(tmp_path / "out" / "landmarks.csv")
    assert len(rows) == (5 * 2 + 3 * 3) * 98
    for row in rows:  # the csv's face column is the id: face k's points lie on tile k
        assert int(float(row["x"]) // 192) == int(row["face"])


class FakeCapture:
    """A camera that never ends: the same frame, forever."""

    def __init__(self, frame, opened=True):
        self.frame, self.opened, self.reads, self.released = frame, opened, 0, False

    def isOpened(self):
        return self.opened

    def get(self, prop):
        return 0.0  # cameras often report no fps and no frame count

    def read(self):
        self.reads += 1
        return True, self.frame.copy()

    def release(self):
        self.released = True


def test_camera_with_a_fake_capture_stops_after_max_frames(network, tmp_path, monkeypatch):
    model, variables, meanface = network
    face, landmarks, _, _ = generate_face(np.random.default_rng(5), (192, 192))
    box = [*landmarks.min(0), *landmarks.max(0)]
    predictor = Predictor(model, variables, meanface, "wflw", batch_size=1,
                          detector=ShapeKeyedDetector({(192, 192): [box]}))
    monkeypatch.setattr(predict, "make_predictor", lambda config, workdir: predictor)
    opened = []

    def open_capture(source):
        opened.append(source)
        opened.append(FakeCapture(face, opened=source == 0))
        return opened[-1]

    monkeypatch.setattr(predict, "open_capture", open_capture)
    monkeypatch.chdir(tmp_path)  # no file named "0" here: "0" is the camera
    config = get_config()
    config.predict.input, config.predict.output = "0", str(tmp_path / "out")
    config.predict.max_frames = 4
    result = predict.run_predict(config, str(tmp_path))
    assert opened[0] == 0 and opened[1].reads == 4 and opened[1].released
    assert [r["frame"] for r in result["records"]] == [0, 1, 2, 3]
    assert {r["source"] for r in result["records"]} == {"camera:0"}
    assert all([f["id"] for f in r["faces"]] == [0] for r in result["records"])
    cap = cv2.VideoCapture(str(tmp_path / "out" / "camera0_landmarks.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    config.predict.input = "3"
    with pytest.raises(predict.InputError, match="camera 3: cannot open it"):
        predict.run_predict(config, str(tmp_path))


def test_camera_index(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert predict.camera_index("0") == 0 and predict.camera_index(" 12 ") == 12
    assert predict.camera_index("clip.mp4") is None and predict.camera_index("-1") is None
    (tmp_path / "0").mkdir()
    assert predict.camera_index("0") is None  # a folder named 0 is a folder


@pytest.mark.slow
def test_real_detector_batched_folder_equals_one_by_one(network, shared_data):
    """FaceBoxesV2 on real WFLW images of two size buckets: the batched run (one detector call
    per bucket, the crops of all faces together) gives the one-by-one boxes and landmarks."""
    weights = shared_data / "pipnet_repo_assets/FaceBoxesV2/weights/FaceBoxesV2.pth"
    root = shared_data / "wflw_subset" / "WFLW_images"
    by_bucket = {}
    for path in sorted(root.glob("*/*.jpg")):
        h, w = cv2.imread(str(path)).shape[:2]
        by_bucket.setdefault((bucket_size(h), bucket_size(w)), []).append(str(path))
    paths = by_bucket[(768, 1024)][:2] + by_bucket[(640, 1024)][:1]
    model, variables, meanface = network
    predictor = Predictor(model, variables, meanface, "wflw", batch_size=4,
                          detector=FaceDetector(str(weights)))
    one = list(predict.image_faces(predictor, paths, batch_size=1))
    batched = list(predict.image_faces(predictor, paths, batch_size=3))
    assert sum(len(f) for _, _, f in one) >= 3
    for (_, _, faces_one), (_, _, faces_batched) in zip(one, batched):
        assert len(faces_one) == len(faces_batched)
        for a, b in zip(faces_one, faces_batched):
            np.testing.assert_array_equal(b.box, a.box)
            np.testing.assert_allclose(b.landmarks, a.landmarks, atol=1e-4)


def test_outputs_never_replace_inputs(tmp_path):
    """The input folder as output is refused; face.jpg and face.png get two overlays."""
    import cv2
    import pytest
    from pipnet_jax import predict
    folder = tmp_path / "photos"
    folder.mkdir()
    for ext in ("jpg", "png"):
        cv2.imwrite(str(folder / f"face.{ext}"), np.full((40, 40, 3), 100, np.uint8))
    paths = predict.list_images(str(folder))
    with pytest.raises(predict.InputError, match="is the input folder"):
        predict.check_output(str(folder), str(folder))
    with pytest.raises(predict.InputError, match="is the input folder"):
        predict.check_output(str(folder), str(folder / "face.jpg"))
    assert sorted(predict.output_name(p) for p in paths) == ["face_jpg", "face_png"]
