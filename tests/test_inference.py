"""Predictor (crop, batched forward, decode, back-projection), predict mode, video tracking."""
import os

import cv2
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from pipnet_jax.decode import decode_landmarks
from pipnet_jax.errors import UserError
from pipnet_jax.images import normalize_images
from pipnet_jax.inference import Predictor
from pipnet_jax.meanface import neighbor_indices, read_meanface
from pipnet_jax.models import PIPNet
from pipnet_jax.bench.reference_torch import PIPNetTorch, randomize_batchnorm
from pipnet_jax.torch_port import from_torch_state_dict


class FixedBoxes:
    """A stand-in detector: the same boxes for every image."""

    def __init__(self, boxes):
        self.boxes = np.asarray(boxes, np.float64)

    def detect(self, image):
        return self.boxes


@pytest.fixture(scope="module")
def network(shared_data):
    torch.manual_seed(0)
    net = PIPNetTorch(98, "resnet18")
    randomize_batchnorm(net, torch.Generator().manual_seed(1))
    with torch.no_grad():
        net.cls_layer.weight.normal_(0, 0.02)  # distinct cell scores
    model = PIPNet(98, "resnet18")
    meanface = read_meanface(shared_data / "pipnet_repo_assets/data/WFLW/meanface.txt")
    return model, from_torch_state_dict(net.state_dict(), model), meanface


@pytest.fixture(scope="module")
def faces(shared_data):
    """Three real images with their annotated faces' boxes (detector-like: landmark box)."""
    root = shared_data / "wflw_subset"
    by_image = {}
    for line in (root / "annotations/wflw_test_subset_faces.txt").read_text().splitlines():
        tok = line.split()
        lm = np.array(tok[:196], float).reshape(98, 2)
        by_image.setdefault(tok[210], []).append([*lm.min(0), *lm.max(0)])
    names = sorted(by_image, key=lambda n: -len(by_image[n]))[:1] + sorted(by_image)[:2]
    images = [cv2.cvtColor(cv2.imread(str(root / "WFLW_images" / n)), cv2.COLOR_BGR2RGB) for n in names]
    return images, [np.array(by_image[n]) for n in names]


def step_by_step(model, variables, meanface, image, box):
    """Spec 13 written out: demo crop, resize, normalise, forward, decode, back-project."""
    h_img, w_img = image.shape[:2]
    xmin, ymin, xmax, ymax = (int(v) for v in box[:4])
    w, h = xmax - xmin, ymax - ymin
    xmax, ymax = xmin + w - 1, ymin + h - 1
    dx, dy = int(w * (1.2 - 1) / 2), int(h * (1.2 - 1) / 2)  # the original's expression
    xmin, ymin, xmax, ymax = xmin - dx, ymin + dy, xmax + dx, ymax + dy
    xmin, ymin, xmax, ymax = max(xmin, 0), max(ymin, 0), min(xmax, w_img - 1), min(ymax, h_img - 1)
    w, h = xmax - xmin + 1, ymax - ymin + 1
    crop = cv2.resize(image[ymin:ymax, xmin:xmax], (256, 256))
    out = model.apply(variables, normalize_images(crop[None]))
    lm, _ = decode_landmarks(out, neighbor_indices(meanface, 10))
    return np.asarray(lm[0]) * [w, h] + [xmin, ymin]


def test_predictor_equals_step_by_step_and_honours_boxes(network, faces):
    """In float64: with random weights some cells' scores nearly tie, and float32 rounding
    that differs between a batch of 4 and of 1 could flip an argmax (a jump of a cell)."""
    import jax
    model, variables, meanface = network
    with jax.enable_x64(True):
        variables = jax.tree_util.tree_map(
            lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, variables)
        check_predictor(model, variables, meanface, faces)


def test_predictor_backends(network, faces):
    """'auto' is ONNX Runtime on this CPU (the ONNX extra is a dev dependency); its faces equal
    the XLA backend's, batched across images and alone, and it runs any batch unpadded."""
    model, variables, meanface = network
    images, boxes = faces
    xla = Predictor(model, variables, meanface, "wflw", batch_size=4, backend="xla")
    ort = Predictor(model, variables, meanface, "wflw", batch_size=4)
    assert (xla.backend, ort.backend) == ("xla", "onnxruntime")
    expected, got = xla.predict_many(images, boxes), ort.predict_many(images, boxes)
    assert sum(map(len, got)) > 4  # more faces than one batch: a full batch and a partial one
    for faces_x, faces_o in zip(expected, got):
        for x, o in zip(faces_x, faces_o):
            np.testing.assert_allclose(o.landmarks, x.landmarks, atol=1e-3)  # pixels
            np.testing.assert_allclose(o.confidence, x.confidence, rtol=1e-4, atol=1e-5)
    one = ort.predict(images[1], boxes[1])
    np.testing.assert_allclose(one[0].landmarks, got[1][0].landmarks, atol=1e-3)
    with pytest.raises(UserError, match="backend must be one of"):
        Predictor(model, variables, meanface, "wflw", backend="tflite")


def check_predictor(model, variables, meanface, faces):
    predictor = Predictor(model, variables, meanface, "wflw", batch_size=4, backend="xla")
    images, boxes = faces
    results = predictor.predict_many(images, boxes)  # crops of 3 images batched together
    assert [len(r) for r in results] == [len(b) for b in boxes] and len(boxes[0]) > 1
    for image, image_boxes, faces_ in zip(images, boxes, results):
        for box, face in zip(image_boxes, faces_):
            np.testing.assert_array_equal(face.box, box)  # the user's box, not a detection
            expected = step_by_step(model, variables, meanface, image, box)
            np.testing.assert_allclose(face.landmarks, expected, atol=1e-4)
            assert face.confidence.shape == (98,)
    one = predictor.predict(images[1], boxes[1])  # a single image alone gives the same
    np.testing.assert_allclose(one[0].landmarks, results[1][0].landmarks, atol=1e-4)


def test_bad_inputs(network, faces):
    model, variables, meanface = network
    predictor = Predictor(model, variables, meanface, "wflw")
    image = faces[0][0]
    with pytest.raises(ValueError, match=r"RGB uint8 image \(H, W, 3\), got uint8 \(.*\)"):
        predictor.predict(image[..., 0], [[10, 10, 100, 100]])
    with pytest.raises(ValueError, match=r"boxes\[0\]: expected \(K, 4\)"):
        predictor.predict(image, [[10, 10, 100]])
    with pytest.raises(ValueError, match="empty crop"):
        predictor.predict(image, [[10, 10, 11, 11]])
    with pytest.raises(ValueError, match="mean face has shape"):
        Predictor(model, variables, meanface[:68], "wflw")


def test_predict_mode_folder_and_errors(network, faces, tmp_path, monkeypatch):
    from configs.synthetic import get_config
    from pipnet_jax import predict

    model, variables, meanface = network
    predictor = Predictor(model, variables, meanface, "wflw", detector=FixedBoxes(faces[1][1][:1]))
    monkeypatch.setattr(predict, "make_predictor", lambda config, workdir: predictor)
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.cvtColor(faces[0][1], cv2.COLOR_RGB2BGR))
    (folder / "b.jpg").write_bytes(b"not a jpeg")
    config = get_config()
    config.predict.input, config.predict.output, config.predict.to_68 = str(folder), str(tmp_path / "out"), True
    result = predict.run_predict(config, str(tmp_path))
    assert len(result["failures"]) == 1 and "b.jpg: cannot read" in result["failures"][0]
    ok = [r for r in result["records"] if "faces" in r]
    assert len(ok) == 1 and np.shape(ok[0]["faces"][0]["landmarks"]) == (68, 2)
    assert os.path.getsize(tmp_path / "out" / "a_jpg.jpg") > 0  # named with its extension: unique
    lines = (tmp_path / "out" / "landmarks.csv").read_text().splitlines()
    assert len(lines) == 1 + 68
    config.predict.input = str(folder / "b.jpg")  # the only input cannot be read: a failed run
    with pytest.raises(predict.InputError, match="no input could be read"):
        predict.run_predict(config, str(tmp_path))
    (tmp_path / "empty").mkdir()
    config.predict.input = str(tmp_path / "empty")
    with pytest.raises(predict.InputError, match="no images"):
        predict.run_predict(config, str(tmp_path))
    config.predict.input = str(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        predict.run_predict(config, str(tmp_path))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    config.predict.input = str(tmp_path / "broken.mp4")
    with pytest.raises(predict.InputError, match="broken.mp4: cannot open the video"):
        predict.run_predict(config, str(tmp_path))


def test_video_frames_and_smoothing(network, tmp_path, monkeypatch):
    """A static synthetic face with per-frame noise: same frame count out, less jitter smoothed."""
    from configs.synthetic import get_config
    from pipnet_jax import predict
    from pipnet_jax.data.synthetic import generate_face

    model, variables, meanface = network
    face, landmarks, rect, _ = generate_face(np.random.default_rng(3), (256, 256))
    path = str(tmp_path / "static.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (256, 256))
    rng = np.random.default_rng(0)
    for _ in range(20):
        noisy = np.clip(face.astype(np.int16) + rng.integers(-12, 13, face.shape), 0, 255).astype(np.uint8)
        writer.write(noisy)
    writer.release()
    box = [*landmarks.min(0), *landmarks.max(0)]
    jitter = {}
    for smooth in (False, True):
        predictor = Predictor(model, variables, meanface, "wflw", batch_size=1, detector=FixedBoxes([box]))
        monkeypatch.setattr(predict, "make_predictor", lambda config, workdir: predictor)
        config = get_config()
        config.predict.input, config.predict.output = path, str(tmp_path / f"out_{smooth}")
        config.predict.smooth, config.predict.redetect_every = smooth, 1000
        result = predict.run_predict(config, str(tmp_path))
        frames = [np.array(r["faces"][0]["landmarks"]) for r in result["records"]]
        assert len(frames) == 20
        cap = cv2.VideoCapture(str(tmp_path / f"out_{smooth}" / "static_landmarks.avi"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
        jitter[smooth] = np.mean(np.linalg.norm(np.diff(np.stack(frames), axis=0), axis=-1))
    assert jitter[True] < 0.6 * jitter[False], jitter
