"""Face detection at run time: FaceBoxesV2 (the original's detector; the Flax network is
models/faceboxes.py, its .pth conversion torch_port.py), and a weak OpenCV Haar-cascade
fallback that needs no download. Here: the weights file (locate, verify, download), priors,
decode, NMS and the detectors.

FaceBoxesV2 follows spec 4.4 / 13 / 14: BGR input minus (104, 117, 123), no scaling, full
resolution; SSD priors and decode; score > threshold, top-k, Fast R-CNN NMS (+1 areas,
IoU >= 0.3 suppressed), corners truncated to int.

To avoid a recompile for every image size, images are zero-padded (bottom/right) to a size
bucket; the network masks every feature map back to the region the exact-size network would
have seen (models/faceboxes.py), and anchors of cells that the exact-size grid would not have
are dropped here. The padded run therefore gives the exact-size result (up to float rounding).
"""
import math
import os
import shutil
import urllib.request
from typing import Optional, Sequence

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from pipnet_jax.files import atomic_path
from pipnet_jax.models.faceboxes import DENSIFY, MEAN_BGR, MIN_SIZES, STEPS, FaceBoxesV2
from pipnet_jax.torch_port import (CheckpointMismatchError, faceboxes_from_state_dict,
                                   file_sha256, load_faceboxes_pth)

# Public names; the network (models/faceboxes) and its .pth conversion (torch_port) are
# re-exported, so `from pipnet_jax.detection import FaceBoxesV2, ...` keeps working.
__all__ = ["CheckpointMismatchError", "DENSIFY", "FACEBOXES_BYTES", "FACEBOXES_SHA256",
           "FACEBOXES_URL", "FaceBoxesV2", "FaceDetector", "HaarDetector", "MEAN_BGR",
           "MIN_SIZES", "STEPS", "VARIANCES", "WEIGHTS_ENV", "bucket_size", "decode_boxes",
           "default_weights_path", "faceboxes_from_state_dict", "file_sha256",
           "load_faceboxes_weights", "make_detector", "nms", "prior_boxes", "verify_weights_file"]

FACEBOXES_URL = "https://github.com/jhb86253817/PIPNet/raw/master/FaceBoxesV2/weights/FaceBoxesV2.pth"
FACEBOXES_SHA256 = "aae07fec4b62ac655508c06336662538803407852312ca5009fd93fb487d8cd7"
FACEBOXES_BYTES = 4_153_573
WEIGHTS_ENV = "PIPNET_FACEBOXES_WEIGHTS"
VARIANCES = (0.1, 0.2)


# ----------------------------------------------------------------------------- weights

def verify_weights_file(path: str, expected_sha256: str = FACEBOXES_SHA256) -> None:
    """Raises unless `path` is the released FaceBoxesV2.pth (size and sha256)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"FaceBoxesV2 weights file not found: {path}")
    size, digest = os.path.getsize(path), file_sha256(path)
    if digest != expected_sha256:
        raise ValueError(f"{path} is not the FaceBoxesV2 weights file: {size} bytes, sha256 {digest}; "
                         f"expected {FACEBOXES_BYTES} bytes, sha256 {expected_sha256} "
                         f"(the original's FaceBoxesV2/weights/FaceBoxesV2.pth)")


def load_faceboxes_weights(path: str, expected_sha256: Optional[str] = FACEBOXES_SHA256) -> dict:
    """Flax variables {'params', 'batch_stats'} from FaceBoxesV2.pth. The file is checked
    against the released sha256 first (expected_sha256=None skips that, e.g. for retrained
    weights); torch_port reads it (weights_only, no code execution)."""
    if expected_sha256 is not None:
        verify_weights_file(path, expected_sha256)
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"FaceBoxesV2 weights file not found: {path}")
    return load_faceboxes_pth(path)


def default_weights_path(cache_dir: Optional[str] = None, url: str = FACEBOXES_URL) -> str:
    """Path of a verified FaceBoxesV2.pth: $PIPNET_FACEBOXES_WEIGHTS if set, else
    <cache_dir or ~/.cache/pipnet_jax>/FaceBoxesV2.pth, downloading it there once from the
    original repository if absent (atomic write, sha256 checked)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f"${WEIGHTS_ENV} points to a missing file: {env}")
        verify_weights_file(env)
        return env
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "pipnet_jax")
    path = os.path.join(cache_dir, "FaceBoxesV2.pth")
    if os.path.isfile(path):
        verify_weights_file(path)  # a corrupt cached file is reported, not silently replaced
        return path
    try:
        # atomic: readers never see a partial file, and a failed download leaves nothing
        with atomic_path(path, suffix=".part") as tmp:
            with open(tmp, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
                shutil.copyfileobj(r, f, 1 << 20)
            try:
                verify_weights_file(tmp)
            except ValueError as e:
                raise ValueError(f"the file downloaded from {url} is not the expected one: {e}") from e
    except OSError as e:  # URLError, timeouts and socket errors are OSErrors
        raise RuntimeError(
            f"could not download the FaceBoxesV2 weights from {url} ({e}). Pass the file's path "
            f"(FaceDetector(weights_path=...) or ${WEIGHTS_ENV}), or put it at {path}") from e
    return path


# ----------------------------------------------------------------------------- priors / decode

def _anchors(height: int, width: int):
    """Anchors in pixels: (P, 4) (cx, cy, size, size) and the (row, col, step) of each
    anchor's cell, in the original's order (level, row, col, size, sub-grid cy outer)."""
    boxes, cells = [], []
    for sizes, step in zip(MIN_SIZES, STEPS):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cell = []  # one cell's anchors relative to its corner, in order
        for s in sizes:
            offs = DENSIFY.get(s, (0.5,))
            cell += [(ox, oy, s) for oy in offs for ox in offs]
        cell = np.array(cell, np.float64)
        i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        i, j = i.reshape(-1, 1), j.reshape(-1, 1)  # row-major cells, then anchors in a cell
        cx, cy = (j + cell[:, 0]) * step, (i + cell[:, 1]) * step
        s = np.broadcast_to(cell[:, 2], cx.shape)
        boxes.append(np.stack([cx, cy, s, s], -1).reshape(-1, 4))
        k = len(cell)
        cell_ids = [np.repeat(i, k, 1), np.repeat(j, k, 1), np.full((i.size, k), step)]
        cells.append(np.stack(cell_ids, -1).reshape(-1, 3))
    return np.concatenate(boxes), np.concatenate(cells)


def prior_boxes(height: int, width: int) -> np.ndarray:
    """The original's priors (P, 4): (cx, cy, size/W, size/H), normalised by the image size."""
    anchors, _ = _anchors(height, width)
    return (anchors / [width, height, width, height]).astype(np.float32)


def decode_boxes(loc, priors, variances=VARIANCES):
    """SSD decode -> corners (xmin, ymin, xmax, ymax), in the priors' units (normalised or
    pixels: the decode is linear in the scale). Works on numpy or jax arrays."""
    xp = np if isinstance(loc, np.ndarray) else jnp
    c = priors[..., :2] + loc[..., :2] * variances[0] * priors[..., 2:]
    wh = priors[..., 2:] * xp.exp(loc[..., 2:] * variances[1])
    lo = c - wh / 2
    return xp.concatenate([lo, lo + wh], axis=-1)  # xmax = xmin + w, as the original


def nms(dets: np.ndarray, threshold: float) -> np.ndarray:
    """Fast R-CNN greedy NMS on (K, 5) [x1, y1, x2, y2, score]: areas with the +1 pixel
    convention, a box is suppressed when its IoU with a kept one is >= threshold. Indices
    of the kept boxes, best first."""
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) < threshold]
    return np.array(keep, np.int64)


def bucket_size(n: int) -> int:
    """Padded side length: multiples of 128 up to 1024 (128 is the coarsest stride, so a
    padded side is whole cells at every level), then multiples of 256 up to 2048, 512 up to 4096, ... -- at most 8
    compiled sizes per side up to 1024, 4 per octave beyond, and <= 25% extra pixels per
    side above 512."""
    g = 128 * 2 ** max(0, math.ceil(math.log2(max(n, 1) / 1024)))
    return -(-n // g) * g


def _as_bgr(image, color: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if color not in ("rgb", "bgr"):
        raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
    return image[..., ::-1] if color == "rgb" else image


# ----------------------------------------------------------------------------- detectors

class FaceDetector:
    """FaceBoxesV2 face detector with the original demo's post-processing.

    detect(image) -> float32 (K, 5) [xmin, ymin, xmax, ymax, score], pixels of the full-
    resolution image (corners truncated to int), best first. bucket=True pads images to
    bucket_size() sides so a new image size rarely recompiles; the result is the same as
    the exact-size run (bucket=False, one compile per size)."""

    def __init__(self, weights_path: Optional[str] = None, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 5000, keep_top_k: int = 750,
                 bucket: bool = True, max_batch: int = 8):
        self.weights_path = weights_path or default_weights_path()
        self.variables = load_faceboxes_weights(self.weights_path)
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold
        self.top_k, self.keep_top_k, self.bucket = top_k, keep_top_k, bucket
        self.max_batch = max_batch  # detect_batch: images per network call (a power of 2)
        self.model = FaceBoxesV2()
        self._forward = jax.jit(self._forward_impl)

    def _forward_impl(self, variables, images, valid_hw):
        """uint8 BGR (B, Hp, Wp, 3) -> pixel boxes (B, P, 4), scores (B, P); anchors outside
        each image's exact-size grid get score -1."""
        x = images.astype(jnp.float32) - jnp.asarray(MEAN_BGR, jnp.float32)
        loc, conf = self.model.apply(variables, x, valid_hw)
        anchors, cells = _anchors(images.shape[1], images.shape[2])  # static shapes: constants
        boxes = decode_boxes(loc, jnp.asarray(anchors, jnp.float32))
        row, col, step = (jnp.asarray(cells[:, k]) for k in range(3))
        ok = ((row < -(-valid_hw[:, :1] // step)) & (col < -(-valid_hw[:, 1:] // step)))
        return boxes, jnp.where(ok, conf[..., 1], -1.0)

    def _postprocess(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        inds = np.flatnonzero(scores > self.score_threshold)
        inds = inds[np.argsort(-scores[inds], kind="stable")[: self.top_k]]
        dets = np.concatenate([boxes[inds], scores[inds, None]], 1).astype(np.float32)
        dets = dets[nms(dets, self.nms_threshold)][: self.keep_top_k]
        dets[:, :4] = np.trunc(dets[:, :4])  # the original's int() on each corner
        return dets

    def detect_batch(self, images: Sequence[np.ndarray], color: str = "rgb") -> list[np.ndarray]:
        """Detections for each image (sizes may differ), as detect() gives them one by one.
        Images of one padded size (bucket_size() sides; the exact size with bucket=False) run
        together, in batches of max_batch, ..., 4, 2, 1 images: no image is padded beyond its
        own size (a small image padded to a big one's size would cost the big one's time), no
        batch slot is empty, and the compiled shapes stay few (a handful per padded size)."""
        bgr = [_as_bgr(im, color) for im in images]
        groups: dict = {}
        for k, im in enumerate(bgr):
            h, w = im.shape[:2]
            key = (bucket_size(h), bucket_size(w)) if self.bucket else (h, w)
            groups.setdefault(key, []).append(k)
        results: list = [None] * len(bgr)
        for (h, w), members in groups.items():
            while members:
                n = min(self.max_batch, 1 << (len(members).bit_length() - 1))  # largest 2^k <= left
                part, members = members[:n], members[n:]
                batch = np.zeros((n, h, w, 3), np.uint8)
                valid = np.zeros((n, 2), np.int32)
                for slot, k in enumerate(part):
                    batch[slot, : bgr[k].shape[0], : bgr[k].shape[1]] = bgr[k]
                    valid[slot] = bgr[k].shape[:2]
                boxes, scores = jax.device_get(self._forward(self.variables, batch, valid))
                for slot, k in enumerate(part):
                    results[k] = self._postprocess(boxes[slot], scores[slot])
        return results

    def detect(self, image: np.ndarray, color: str = "rgb") -> np.ndarray:
        return self.detect_batch([image], color)[0]


class HaarDetector:
    """WEAK zero-download fallback: OpenCV's frontal-face Haar cascade
    (haarcascade_frontalface_default.xml). Misses profile, tilted, occluded, blurred and
    small faces: about 48.5% recall on the hard WFLW test faces versus 96.6% for
    FaceBoxesV2. Use FaceDetector when its weights can be had.

    detect() has FaceDetector's interface; the cascade gives no confidence, so score is 1."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 3):
        path = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"could not load OpenCV's Haar cascade {path}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors

    def detect(self, image: np.ndarray, color: str = "rgb") -> np.ndarray:
        gray = cv2.cvtColor(np.ascontiguousarray(_as_bgr(image, color)), cv2.COLOR_BGR2GRAY)
        faces = self.cascade.detectMultiScale(gray, scaleFactor=self.scale_factor,
                                              minNeighbors=self.min_neighbors)
        faces = np.asarray(faces, np.float32).reshape(-1, 4)
        return np.concatenate([faces[:, :2], faces[:, :2] + faces[:, 2:],
                               np.ones((len(faces), 1), np.float32)], 1)

    def detect_batch(self, images: Sequence[np.ndarray], color: str = "rgb") -> list[np.ndarray]:
        return [self.detect(im, color) for im in images]


def make_detector(kind: str = "faceboxes", **kwargs):
    """'faceboxes' (FaceDetector, the original's detector) or 'haar' (HaarDetector, weak)."""
    if kind == "faceboxes":
        return FaceDetector(**kwargs)
    if kind == "haar":
        return HaarDetector(**kwargs)
    raise ValueError(f"unknown detector kind {kind!r}: use 'faceboxes' or 'haar'")
