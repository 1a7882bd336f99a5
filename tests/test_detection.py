"""FaceBoxesV2 detector: port against a PyTorch reference, priors/NMS conventions, padding
buckets, weights-file checks, and recall on the real WFLW subset."""
import math
import time

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipnet_jax import detection
from pipnet_jax.detection import (FACEBOXES_SHA256, FaceBoxesV2, FaceDetector, HaarDetector,
                                  bucket_size, decode_boxes, default_weights_path,
                                  load_faceboxes_weights, make_detector, nms, prior_boxes)

WEIGHTS = "pipnet_repo_assets/FaceBoxesV2/weights/FaceBoxesV2.pth"


@pytest.fixture(scope="module")
def weights(shared_data):
    return str(shared_data / WEIGHTS)


@pytest.fixture(scope="module")
def detector(weights):
    return FaceDetector(weights)


# ----------------------------------------------------------------------------- torch reference

class TorchBasicConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class TorchInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch1x1 = TorchBasicConv(128, 32, 1)
        self.branch1x1_2 = TorchBasicConv(128, 32, 1)
        self.branch3x3_reduce = TorchBasicConv(128, 24, 1)
        self.branch3x3 = TorchBasicConv(24, 32, 3, padding=1)
        self.branch3x3_reduce_2 = TorchBasicConv(128, 24, 1)
        self.branch3x3_2 = TorchBasicConv(24, 32, 3, padding=1)
        self.branch3x3_3 = TorchBasicConv(32, 32, 3, padding=1)

    def forward(self, x):
        pooled = F.avg_pool2d(x, 3, 1, 1)  # PyTorch default count_include_pad=True
        return torch.cat([self.branch1x1(x), self.branch1x1_2(pooled),
                          self.branch3x3(self.branch3x3_reduce(x)),
                          self.branch3x3_3(self.branch3x3_2(self.branch3x3_reduce_2(x)))], 1)


class TorchFaceBoxesV2(nn.Module):
    """Written from spec 4.4/14 with the checkpoint's key names (NCHW, test phase)."""

    def __init__(self):
        super().__init__()
        chans = (3, 8, 16, 32, 64, 128)
        for i in range(5):
            setattr(self, f"conv{i + 1}", TorchBasicConv(chans[i], chans[i + 1], 3, 2, 1))
        self.inception1, self.inception2, self.inception3 = (TorchInception() for _ in range(3))
        self.conv6_1 = TorchBasicConv(128, 128, 1)
        self.conv6_2 = TorchBasicConv(128, 256, 3, 2, 1)
        self.conv7_1 = TorchBasicConv(256, 128, 1)
        self.conv7_2 = TorchBasicConv(128, 256, 3, 2, 1)
        self.loc = nn.ModuleList([nn.Conv2d(128, 84, 3, padding=1), nn.Conv2d(256, 4, 3, padding=1),
                                  nn.Conv2d(256, 4, 3, padding=1)])
        self.conf = nn.ModuleList([nn.Conv2d(128, 42, 3, padding=1), nn.Conv2d(256, 2, 3, padding=1),
                                   nn.Conv2d(256, 2, 3, padding=1)])

    def forward(self, x):
        for i in range(1, 6):
            x = getattr(self, f"conv{i}")(x)
        x = self.inception3(self.inception2(self.inception1(x)))
        s1 = x
        s2 = self.conv6_2(self.conv6_1(s1))
        s3 = self.conv7_2(self.conv7_1(s2))
        b = x.shape[0]

        def flat(heads):  # NCHW -> NHWC, flattened per level, levels concatenated
            outs = [h(s).permute(0, 2, 3, 1).reshape(b, -1) for h, s in zip(heads, (s1, s2, s3))]
            return torch.cat(outs, 1)

        return flat(self.loc).view(b, -1, 4), F.softmax(flat(self.conf).view(b, -1, 2), dim=-1)


def test_port_matches_torch_reference(shared_data, weights):
    state = torch.load(weights, map_location="cpu", weights_only=True)  # legacy pickle, plain tensors
    assert len(state) == 192 and all(k.startswith("module.") for k in state)
    ref = TorchFaceBoxesV2().eval()
    ref.load_state_dict({k[len("module."):]: v for k, v in state.items()})

    img = cv2.imread(str(shared_data / "pipnet_repo_assets/images/1.jpg"))
    img = cv2.resize(img, (360, 300))  # not a multiple of 32/64/128: exercises the ceil grids
    x = img.astype(np.float32) - np.array(detection.MEAN_BGR, np.float32)
    with torch.no_grad():
        nchw = torch.from_numpy(x.transpose(2, 0, 1)[None].copy())
        loc_t, conf_t = (a.numpy() for a in ref(nchw))
    loc_j, conf_j = FaceBoxesV2().apply(load_faceboxes_weights(weights), x[None])
    assert loc_t.shape == (1, len(prior_boxes(300, 360)), 4) == loc_j.shape
    for got, want in ((loc_j, loc_t), (conf_j, conf_t)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-4 * np.abs(want).max())
    assert conf_t[0, :, 1].max() > 0.9  # a face is there, so the comparison is not vacuous


# ----------------------------------------------------------------------------- conventions

def test_priors_order_and_decode():
    h, w = 100, 130  # grids 4x5, 2x3, 1x2
    p = prior_boxes(h, w)
    assert len(p) == 4 * 5 * 21 + 2 * 3 + 1 * 2
    # First cell: sixteen 32-px anchors on a 4x4 sub-grid, cy outer, cx inner, from the corner.
    sub = np.array([0, 0.25, 0.5, 0.75]) * 32
    np.testing.assert_allclose(p[:16, 0] * w, np.tile(sub, 4), atol=1e-4)
    np.testing.assert_allclose(p[:16, 1] * h, np.repeat(sub, 4), atol=1e-4)
    np.testing.assert_allclose(p[16:20, :2] * [w, h], [[0, 0], [16, 0], [0, 16], [16, 16]], atol=1e-4)
    np.testing.assert_allclose(p[20] * [w, h, w, h], [16, 16, 128, 128], atol=1e-4)
    np.testing.assert_allclose(p[21, 0] * w, 32, atol=1e-4)  # next cell along the row
    np.testing.assert_allclose(p[-1] * [w, h, w, h], [192, 64, 512, 512], atol=1e-4)  # level 3, col 1
    loc = np.array([[1.0, -1.0, 0.5, 0.0]], np.float32)
    prior = np.array([[50.0, 60.0, 32.0, 32.0]], np.float32)
    cx, cy, bw = 50 + 0.1 * 32, 60 - 0.1 * 32, 32 * math.exp(0.1)
    want = [[cx - bw / 2, cy - 16, cx + bw / 2, cy + 16]]
    np.testing.assert_allclose(decode_boxes(loc, prior), want, rtol=1e-6)


def test_nms_plus_one_areas_and_ge_threshold():
    # With +1 areas the overlap is 50 / 150 = 1/3 (without it, 36 / 126); >= suppresses.
    dets = np.array([[0, 0, 9, 9, 0.9], [5, 0, 14, 9, 0.8], [30, 30, 40, 40, 0.95]], np.float32)
    assert nms(dets, 1 / 3).tolist() == [2, 0]
    assert nms(dets, 0.34).tolist() == [2, 0, 1]


def test_bucket_sizes():
    assert [bucket_size(n) for n in (1, 128, 129, 600, 1024, 1025, 1459, 2049)] == \
        [128, 128, 256, 640, 1024, 1280, 1536, 2560]


# ----------------------------------------------------------------------------- padding buckets

def test_padding_buckets_match_exact_size(shared_data, detector, weights):
    exact = FaceDetector(weights, bucket=False)
    big = cv2.imread(str(shared_data / "pipnet_repo_assets/images/1.jpg"))
    images = [cv2.resize(big, (410, 300)),
              big[200:630, 100:550],  # a face cut by the bottom/right border: masking matters
              cv2.imread(str(shared_data / "pipnet_repo_assets/images/2.jpg"))[::2, ::2][:333, :487]]
    # Network outputs: on every anchor of the exact grid the padded run is the exact run.
    for img in images[:2]:
        h, w = img.shape[:2]
        padded = np.pad(img, ((0, bucket_size(h) - h), (0, bucket_size(w) - w), (0, 0)))
        hw = np.array([[h, w]], np.int32)
        pb, ps = detector._forward(detector.variables, padded[None], hw)
        eb, es = exact._forward(exact.variables, img[None], hw)
        ok = np.asarray(ps[0]) >= 0
        assert ok.sum() == es.shape[1]
        np.testing.assert_allclose(np.asarray(pb[0])[ok], np.asarray(eb[0]), atol=1e-3)
        np.testing.assert_allclose(np.asarray(ps[0])[ok], np.asarray(es[0]), atol=1e-4)
    # Detections: single images and one padded batch of mixed sizes, within 1 px.
    batch = detector.detect_batch(images, color="bgr")
    for img, got in zip(images, batch):
        want = exact.detect(img, color="bgr")
        assert len(want) > 0 and got.shape == want.shape, (got, want)
        np.testing.assert_allclose(got[:, :4], want[:, :4], atol=1)
        np.testing.assert_allclose(got[:, 4], want[:, 4], atol=1e-4)
        np.testing.assert_array_equal(detector.detect(img[..., ::-1]), got)  # rgb default


# ----------------------------------------------------------------------------- weights file

def test_weights_file_checks(tmp_path, weights, monkeypatch):
    bad = tmp_path / "FaceBoxesV2.pth"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match=str(bad)):
        load_faceboxes_weights(str(bad))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_faceboxes_weights(str(tmp_path / "nowhere.pth"))

    monkeypatch.setenv(detection.WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(FileNotFoundError, match=detection.WEIGHTS_ENV):
        default_weights_path()
    monkeypatch.setenv(detection.WEIGHTS_ENV, weights)
    assert default_weights_path() == weights
    monkeypatch.delenv(detection.WEIGHTS_ENV)
    with pytest.raises(ValueError, match="not the FaceBoxesV2"):  # a corrupt cached file
        default_weights_path(cache_dir=str(tmp_path))
    bad.unlink()
    # Offline: a clear error that says to pass the path; nothing partial left behind.
    with pytest.raises(RuntimeError, match="weights_path"):
        default_weights_path(cache_dir=str(tmp_path / "c1"), url="http://127.0.0.1:9/FaceBoxesV2.pth")
    assert list((tmp_path / "c1").iterdir()) == []
    # The download path (a file:// URL stands in for GitHub): written, verified, then reused.
    url = "file://" + weights
    path = default_weights_path(cache_dir=str(tmp_path / "c2"), url=url)
    assert detection.file_sha256(path) == FACEBOXES_SHA256
    assert default_weights_path(cache_dir=str(tmp_path / "c2"), url="http://127.0.0.1:9/x") == path


def test_make_detector_and_haar_interface(detector):
    haar = make_detector("haar")
    assert isinstance(haar, HaarDetector)
    out = haar.detect(np.zeros((120, 160, 3), np.uint8))
    assert out.shape == (0, 5) and out.dtype == np.float32
    assert detector.detect(np.zeros((120, 160, 3), np.uint8)).shape == (0, 5)
    with pytest.raises(ValueError):
        make_detector("yolo")
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((10, 10), np.float32))


# ----------------------------------------------------------------------------- recall on WFLW

def _iou(boxes, box):
    lo = np.maximum(boxes[:, :2], box[:2])
    hi = np.minimum(boxes[:, 2:4], box[2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area(boxes[:, :4]) + area(box) - inter)


def _recall(detections, faces, threshold):
    hits = [len(detections[name]) > 0 and _iou(detections[name], box).max() >= threshold
            for name, box in faces]
    return float(np.mean(hits))


@pytest.mark.slow
def test_recall_on_wflw_subset(shared_data, detector):
    root = shared_data / "wflw_subset"
    faces = []
    for line in (root / "annotations" / "wflw_test_subset_faces.txt").read_text().splitlines():
        tok = line.split()
        lm = np.array(tok[:196], np.float64).reshape(98, 2)
        faces.append((tok[210], np.concatenate([lm.min(0), lm.max(0)])))  # tight landmark box
    names = sorted({name for name, _ in faces})
    images = {n: cv2.imread(str(root / "WFLW_images" / n)) for n in names}
    assert len(faces) == 206 and len(images) == 175

    t0 = time.perf_counter()  # warm-up: one compile per size bucket
    buckets = {(bucket_size(im.shape[0]), bucket_size(im.shape[1])) for im in images.values()}
    for h, w in buckets:
        detector.detect(np.zeros((h, w, 3), np.uint8))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fb = {n: detector.detect(im, color="bgr") for n, im in images.items()}
    fb_ms = (time.perf_counter() - t0) / len(images) * 1000
    # The cascade is ~10x slower at full resolution: every 5th image keeps the test short.
    haar_det, some = HaarDetector(), set(names[::5])
    t0 = time.perf_counter()
    haar = {n: haar_det.detect(images[n], color="bgr") for n in some}
    haar_ms = (time.perf_counter() - t0) / len(haar) * 1000

    r50, r30 = _recall(fb, faces, 0.5), _recall(fb, faces, 0.3)
    few = [(n, box) for n, box in faces if n in some]
    h50, h30 = _recall(haar, few, 0.5), _recall(haar, few, 0.3)
    print(f"\nFaceBoxesV2: recall {r50:.3f} @IoU0.5, {r30:.3f} @IoU0.3; {fb_ms:.1f} ms/image "
          f"({len(buckets)} buckets compiled in {compile_s:.1f} s)")
    print(f"Haar cascade ({len(few)} faces in {len(some)} images): recall {h50:.3f} @IoU0.5, "
          f"{h30:.3f} @IoU0.3 (FaceBoxesV2 on them: {_recall(fb, few, 0.5):.3f}); "
          f"{haar_ms:.1f} ms/image")
    assert r50 >= 0.95 and r30 >= 0.96
    assert all(d.ndim == 2 and d.shape[1] == 5 for d in haar.values())
    assert h50 < _recall(fb, few, 0.5)
