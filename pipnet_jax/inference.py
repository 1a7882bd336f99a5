"""Predictor: faces in whole images -> landmarks in image pixels (spec 12, 13).

detector (or user boxes) -> the demo's crop (box widened 1.2x, top moved down) -> 256x256
resize -> batched forward + decode -> back to image pixels. No TensorFlow.

The forward + decode runs on one of two backends (`BACKENDS`): 'xla' (jax.jit, fixed-size
padded batches, so each batch size compiles once) or 'onnxruntime' (the end-to-end ONNX graph
of export_onnx, converted in memory; any batch, no padding). 'auto', the default, takes ONNX
Runtime when JAX runs on the CPU and the ONNX extra is installed (the fastest faithful CPU path:
the README's inference benchmark; landmarks equal XLA's within 1e-6), else XLA."""
import dataclasses
from typing import Callable, Optional, Sequence

import jax
import numpy as np

from pipnet_jax import export_onnx, parallel
from pipnet_jax.config_checks import PREDICT_BACKENDS
from pipnet_jax.crops import demo_face_crop
from pipnet_jax.decode import decoder
from pipnet_jax.detection import make_detector
from pipnet_jax.errors import UserError
from pipnet_jax.images import normalize_images
from pipnet_jax.landmarks import get_landmark_set
from pipnet_jax.meanface import neighbor_indices
from pipnet_jax.models import PIPNet
from pipnet_jax.workdir import LoadedModel, load_model, load_torch_model


@dataclasses.dataclass
class Face:
    box: np.ndarray          # (4,) the face box it came from: xmin, ymin, xmax, ymax (pixels)
    crop: np.ndarray         # (4,) the crop the network saw: xmin, ymin, xmax, ymax (exclusive)
    landmarks: np.ndarray    # (N, 2) image pixels
    confidence: np.ndarray   # (N,) the winning raw score per landmark (not a probability)
    score: float = 1.0       # detector score (1.0 for user boxes)


def make_predict_fn(model, neighbors, input_size: int = 256) -> Callable:
    """jitted (variables, images uint8 NHWC) -> (landmarks (B,N,2) in [0,1], confidence)."""
    decode = decoder(neighbors, model.net_stride, input_size)

    @jax.jit
    def predict(variables, images):
        return decode(model.apply(variables, normalize_images(images, input_size), train=False))

    return predict


def make_sharded_predict(model, variables, neighbors, input_size: int):
    """predict(images) on this process's local devices: the batch is split over them."""
    mesh = parallel.make_mesh(jax.local_devices())
    fn = make_predict_fn(model, neighbors, input_size)
    variables = jax.device_put(jax.device_get(variables), parallel.replicated(mesh))
    sharding = parallel.batch_sharding(mesh)

    def predict(images):
        if len(images) % mesh.devices.size:
            raise ValueError(f"pseudo-label batch {len(images)} must be a multiple of the "
                             f"{mesh.devices.size} local devices")
        return jax.device_get(fn(variables, jax.device_put(images, sharding)))

    return predict


def predict_in_batches(predict: Callable, images, batch_size: int, num_landmarks: int, pad: bool = True):
    """predict(uint8 (batch_size, S, S, 3)) -> (landmarks, confidence) over any number of
    images, in batches of batch_size (pad: the last one zero-padded, one shape, one compile;
    a backend without compiles takes the last batch as it is)."""
    images = np.asarray(images)
    out_lm, out_conf = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        pad = batch_size - len(chunk) if pad else 0
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
        lm, conf = jax.device_get(predict(chunk))
        out_lm.append(np.asarray(lm)[:batch_size - pad])
        out_conf.append(np.asarray(conf)[:batch_size - pad])
    if not out_lm:
        return np.zeros((0, num_landmarks, 2), np.float32), np.zeros((0, num_landmarks), np.float32)
    return np.concatenate(out_lm), np.concatenate(out_conf)


def _check_image(image, where="image"):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{where}: expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    return image


BACKENDS = PREDICT_BACKENDS


def resolve_backend(backend: str) -> str:
    """'auto' -> 'onnxruntime' on a CPU with the ONNX extra installed, else 'xla'."""
    if backend not in BACKENDS:
        raise UserError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        cpu = jax.default_backend() == "cpu"
        return "onnxruntime" if cpu and export_onnx.runtime_available() else "xla"
    if backend == "onnxruntime" and not export_onnx.runtime_available():
        raise UserError("backend 'onnxruntime' needs the ONNX extra: "
                        "pip install --no-deps -r requirements-onnx.txt")
    return backend


class Predictor:
    """Landmarks for every face of RGB uint8 images. Holds the compiled network; `backend`
    (module docstring) says which runs it."""

    def __init__(self, model: PIPNet, variables, meanface, landmarks: str, input_size: int = 256,
                 batch_size: int = 8, detector=None, box_scale: float = 1.2, backend: str = "auto"):
        self.model, self.input_size, self.batch_size = model, input_size, batch_size
        self.landmark_set = get_landmark_set(landmarks)
        if np.shape(meanface) != (model.num_landmarks, 2):
            raise ValueError(f"mean face has shape {np.shape(meanface)}; the model predicts "
                             f"{model.num_landmarks} landmarks")
        self.neighbors = neighbor_indices(np.asarray(meanface), model.num_neighbors)
        self.backend = resolve_backend(backend)
        if self.backend == "onnxruntime":
            self._predict = export_onnx.runtime_predict(model, jax.device_get(variables), self.neighbors,
                                                        input_size)
        else:
            fn, variables = make_predict_fn(model, self.neighbors, input_size), jax.device_put(variables)
            self._predict = lambda batch: fn(variables, batch)
        self._detector, self.box_scale = detector, box_scale

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, **kwargs) -> "Predictor":
        return cls(loaded.model, loaded.variables, loaded.meanface, loaded.landmarks,
                   input_size=loaded.input_size, **kwargs)

    @classmethod
    def from_workdir(cls, workdir: str, **kwargs) -> "Predictor":
        """A training workdir: its config.json, meanface.txt and latest checkpoint."""
        return cls.from_loaded(load_model(workdir), **kwargs)

    @classmethod
    def from_torch_checkpoint(cls, path: str, dataset: str = "wflw", backbone: str = "resnet18",
                              meanface=None, num_neighbors: int = 10, net_stride: int = 32,
                              **kwargs) -> "Predictor":
        """A PyTorch PIPNet .pth (e.g. a released epoch59.pth; recognised by sha256, which then
        fixes dataset and backbone). The mean face defaults to the original's for `dataset`."""
        return cls.from_loaded(load_torch_model(path, dataset, backbone, meanface, num_neighbors,
                                                net_stride), **kwargs)

    @property
    def detector(self):
        if self._detector is None:
            self._detector = make_detector("faceboxes")
        return self._detector

    def detect_many(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The detector's (K, 5) boxes for each RGB image: one batched call when the detector
        has detect_batch (FaceBoxesV2: same results as one by one), else image by image."""
        detect_batch = getattr(self.detector, "detect_batch", None)
        if detect_batch is not None:
            return list(detect_batch(images))
        return [self.detector.detect(im) for im in images]

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, S, S, 3) uint8 crops -> landmarks (K, N, 2) in [0, 1] and confidence (K, N),
        in padded batches of self.batch_size."""
        return predict_in_batches(self._predict, crops, self.batch_size, self.model.num_landmarks,
                                  pad=self.backend == "xla")

    def crop(self, image: np.ndarray, box) -> tuple[np.ndarray, tuple]:
        """The network input for one face box and the crop geometry (crops.demo_face_crop)."""
        return demo_face_crop(image, box, self.input_size, self.box_scale)

    def predict(self, image, boxes=None) -> list[Face]:
        """Every face of one RGB uint8 image; boxes (K, 4[+score]) in pixels skip detection."""
        return self.predict_many([image], None if boxes is None else [boxes])[0]

    def predict_many(self, images: Sequence, boxes: Optional[Sequence] = None) -> list[list[Face]]:
        """Faces of many images: one batched detection (detect_many) unless boxes are given,
        then their crops batched together; the same faces as predict() image by image."""
        images = [_check_image(im, f"images[{i}]") for i, im in enumerate(images)]
        if boxes is None:
            boxes = self.detect_many(images)
        elif len(boxes) != len(images):
            raise ValueError(f"got {len(boxes)} box lists for {len(images)} images")
        crops, geometry = [], []
        for i, (image, image_boxes) in enumerate(zip(images, boxes)):
            image_boxes = np.asarray(image_boxes, np.float64).reshape(-1, np.shape(image_boxes)[-1] if len(image_boxes) else 4)
            if image_boxes.shape[1] not in (4, 5):
                raise ValueError(f"boxes[{i}]: expected (K, 4) or (K, 5) [xmin, ymin, xmax, ymax(, score)], "
                                 f"got {image_boxes.shape}")
            bad = ~np.isfinite(image_boxes).all(axis=1)
            if bad.any():
                k = int(np.argmax(bad))
                raise ValueError(f"boxes[{i}][{k}] = {image_boxes[k].tolist()}: a face box must be finite "
                                 f"numbers [xmin, ymin, xmax, ymax(, score)]")
            for box in image_boxes:
                patch, geo = self.crop(image, box)
                crops.append(patch)
                geometry.append((i, box, geo))
        lm, conf = self.predict_crops(np.stack(crops) if crops else np.zeros((0, self.input_size, self.input_size, 3), np.uint8))
        results: list[list[Face]] = [[] for _ in images]
        for (i, box, (xmin, ymin, xmax, ymax, w, h)), p, c in zip(geometry, lm, conf):
            pixels = p * np.array([w, h]) + np.array([xmin, ymin])
            results[i].append(Face(box=np.asarray(box[:4]), crop=np.array([xmin, ymin, xmax, ymax]),
                                   landmarks=pixels, confidence=c,
                                   score=float(box[4]) if len(box) > 4 else 1.0))
        return results
